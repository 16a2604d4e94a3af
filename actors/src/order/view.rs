//! What an order and its payment sessions answer: views, not rows. A view holds what a caller
//! may see (no `version`, typed ids and statuses), is plain serialisable data, and is what the
//! HTTP layer renders, so a reply does not depend on how the row is stored.

use time::PrimitiveDateTime;

use mall_db::domain::{
    CancelReason, OrderId, OrderStatus, PaymentId, PaymentStatus, ProductId, UserId,
};
use mall_db::models::{OrderItemRow, PaymentRow};
use mall_db::repo::Page;
use mall_db::repo::orders::OrderWithItems;

/// One line of an order, as it was bought.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineView {
    /// The product.
    pub product: ProductId,
    /// Its name then.
    pub name: String,
    /// Its price then.
    pub unit_price_cents: i64,
    /// How many.
    pub quantity: i32,
    /// `unit_price_cents * quantity`.
    pub line_total_cents: i64,
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderView {
    /// Its id.
    pub id: OrderId,
    /// The buyer.
    pub user: UserId,
    /// Where it stands.
    pub status: OrderStatus,
    /// Its lines, in the buyer's order.
    pub lines: Vec<LineView>,
    /// The sum of the lines.
    pub total_cents: i64,
    /// The shipping address (JSON).
    pub address: String,
    /// The buyer's note.
    pub note: Option<String>,
    /// Placed at.
    pub created_at: PrimitiveDateTime,
    /// Last changed at.
    pub updated_at: PrimitiveDateTime,
    /// Unpaid past this, it is cancelled.
    pub expires_at: PrimitiveDateTime,
    /// Paid at.
    pub paid_at: Option<PrimitiveDateTime>,
    /// Cancelled at.
    pub cancelled_at: Option<PrimitiveDateTime>,
    /// Why it was cancelled.
    pub cancel_reason: Option<CancelReason>,
}

/// A payment session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PaymentView {
    /// Its id.
    pub id: PaymentId,
    /// The order it pays.
    pub order: OrderId,
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
    /// Opened at.
    pub created_at: PrimitiveDateTime,
    /// Still pending past this, it expires.
    pub expires_at: PrimitiveDateTime,
    /// Charged at.
    pub succeeded_at: Option<PrimitiveDateTime>,
    /// Cancelled at.
    pub cancelled_at: Option<PrimitiveDateTime>,
}

impl From<&OrderItemRow> for LineView {
    fn from(i: &OrderItemRow) -> Self {
        LineView {
            product: ProductId(i.product_id),
            name: i.name.clone(),
            unit_price_cents: i.unit_price_cents,
            quantity: i.quantity,
            line_total_cents: i.line_total_cents,
        }
    }
}

impl From<&OrderWithItems> for OrderView {
    fn from((o, items): &OrderWithItems) -> Self {
        OrderView {
            id: OrderId(o.id),
            user: UserId(o.user_id),
            status: o.status,
            lines: items.iter().map(LineView::from).collect(),
            total_cents: o.total_cents,
            address: o.address.clone(),
            note: o.note.clone(),
            created_at: o.created_at,
            updated_at: o.updated_at,
            expires_at: o.expires_at,
            paid_at: o.paid_at,
            cancelled_at: o.cancelled_at,
            cancel_reason: o.cancel_reason,
        }
    }
}

impl From<&PaymentRow> for PaymentView {
    fn from(p: &PaymentRow) -> Self {
        PaymentView {
            id: PaymentId(p.id),
            order: OrderId(p.order_id),
            amount_cents: p.amount_cents,
            status: p.status,
            card_last4: p.card_last4.clone(),
            last_error: p.last_error.clone(),
            attempts: p.attempts,
            created_at: p.created_at,
            expires_at: p.expires_at,
            succeeded_at: p.succeeded_at,
            cancelled_at: p.cancelled_at,
        }
    }
}

/// A page of rows as a page of views.
pub fn page_of<R, V: for<'a> From<&'a R>>(page: Page<R>) -> Page<V> {
    Page {
        items: page.items.iter().map(V::from).collect(),
        total: page.total,
    }
}
