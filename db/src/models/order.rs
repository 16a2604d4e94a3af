//! The `orders`, `order_items` and `payments` rows.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::domain::{CancelReason, OrderStatus, PaymentStatus};
use crate::schema::{order_items, orders, payments};

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = orders)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
// None is NULL, not DEFAULT: SQLite takes multi-row inserts only without DEFAULT.
#[diesel(treat_none_as_default_value = false)]
pub struct OrderRow {
    /// Application-generated id.
    pub id: i64,
    /// The buyer.
    pub user_id: i64,
    /// Where it stands.
    pub status: OrderStatus,
    /// Sum of the lines.
    pub total_cents: i64,
    /// The shipping address, a JSON object.
    pub address: String,
    /// The buyer's note.
    pub note: Option<String>,
    /// Creation time.
    pub created_at: PrimitiveDateTime,
    /// Last change.
    pub updated_at: PrimitiveDateTime,
    /// Unpaid past this, it is cancelled (`expired`).
    pub expires_at: PrimitiveDateTime,
    /// When it was paid.
    pub paid_at: Option<PrimitiveDateTime>,
    /// When it was cancelled.
    pub cancelled_at: Option<PrimitiveDateTime>,
    /// Why it was cancelled.
    pub cancel_reason: Option<CancelReason>,
    /// Bumped by every change.
    pub version: i64,
}

/// One line of an order: a copy of the product as it was bought.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = order_items)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
// None is NULL, not DEFAULT: SQLite takes multi-row inserts only without DEFAULT.
#[diesel(treat_none_as_default_value = false)]
pub struct OrderItemRow {
    /// The order.
    pub order_id: i64,
    /// Its place in the order.
    pub position: i32,
    /// The product.
    pub product_id: i64,
    /// Its name then.
    pub name: String,
    /// Its price then.
    pub unit_price_cents: i64,
    /// How many.
    pub quantity: i32,
    /// `unit_price_cents * quantity`.
    pub line_total_cents: i64,
}

/// A payment session as stored (never a card number: only its last four digits).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = payments)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
// None is NULL, not DEFAULT: SQLite takes multi-row inserts only without DEFAULT.
#[diesel(treat_none_as_default_value = false)]
pub struct PaymentRow {
    /// Application-generated id.
    pub id: i64,
    /// The order it pays.
    pub order_id: i64,
    /// The order's buyer.
    pub user_id: i64,
    /// The order's total when opened.
    pub amount_cents: i64,
    /// Where it stands.
    pub status: PaymentStatus,
    /// Last four digits of the last card tried.
    pub card_last4: Option<String>,
    /// `card_declined` after a decline.
    pub last_error: Option<String>,
    /// Charges tried.
    pub attempts: i32,
    /// When it was opened.
    pub created_at: PrimitiveDateTime,
    /// Last change.
    pub updated_at: PrimitiveDateTime,
    /// Still pending past this, it expires.
    pub expires_at: PrimitiveDateTime,
    /// When the charge succeeded.
    pub succeeded_at: Option<PrimitiveDateTime>,
    /// When it was cancelled.
    pub cancelled_at: Option<PrimitiveDateTime>,
    /// Bumped by every change.
    pub version: i64,
}
