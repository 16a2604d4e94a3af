//! Bodies of the order, payment and checkout routes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use mall_actors::order::{OrderView, PaymentView};

use super::{present, stored_time};
use crate::error::ApiError;

/// A shipping address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Recipient.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Phone number.
    #[schema(min_length = 1, max_length = 200)]
    pub phone: String,
    /// Street and number.
    #[schema(min_length = 1, max_length = 200)]
    pub line1: String,
    /// More of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub line2: Option<String>,
    /// City.
    #[schema(min_length = 1, max_length = 200)]
    pub city: String,
    /// Postal code.
    #[schema(min_length = 1, max_length = 200)]
    pub postal_code: String,
    /// Country.
    #[schema(min_length = 1, max_length = 200)]
    pub country: String,
}

impl Address {
    /// Every field present is 1..=200 characters and not only spaces (line2 may be absent).
    pub fn check(&self, prefix: &str) -> Result<(), ApiError> {
        let mut problems = Vec::new();
        let fields = [
            ("name", Some(&self.name)),
            ("phone", Some(&self.phone)),
            ("line1", Some(&self.line1)),
            ("line2", self.line2.as_ref()),
            ("city", Some(&self.city)),
            ("postal_code", Some(&self.postal_code)),
            ("country", Some(&self.country)),
        ];
        for (field, value) in fields {
            if value.is_some_and(|v| v.trim().is_empty() || v.chars().count() > 200) {
                problems.push((
                    format!("{prefix}.{field}"),
                    "must be 1 to 200 characters".to_owned(),
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                problems.iter().map(|(f, p)| (f.as_str(), p.clone())),
            ))
        }
    }
}

/// Most characters in an order note.
pub const MAX_NOTE: usize = 500;

/// Checks an optional note.
pub fn check_note(note: Option<&str>) -> Result<(), ApiError> {
    match note {
        Some(n) if n.chars().count() > MAX_NOTE => Err(ApiError::invalid_field(
            "note",
            format!("at most {MAX_NOTE} characters"),
        )),
        _ => Ok(()),
    }
}

/// One line to buy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineRequest {
    /// The product's id.
    #[schema(pattern = r"^[0-9]{1,19}$")]
    pub product_id: String,
    /// 1..=999.
    #[schema(minimum = 1, maximum = 999)]
    pub quantity: i64,
}

/// `POST /orders`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    /// 1..=100 lines, each product once.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<OrderLineRequest>,
    /// Where to ship.
    pub address: Address,
    /// A note (≤ 500 characters).
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

/// `PATCH /orders/{id}`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrderRequest {
    /// A new address.
    pub address: Option<Address>,
    /// A new note (≤ 500 characters); `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub note: Option<Option<String>>,
}

/// `GET /orders` filter.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct OrderFilter {
    /// `pending_payment`, `paid` or `cancelled`.
    #[param(pattern = "^(pending_payment|paid|cancelled)$")]
    pub status: Option<String>,
}

/// A card (never stored: only its last four digits are kept).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardRequest {
    /// 13..=19 digits.
    #[schema(pattern = "^[0-9]{13,19}$")]
    pub number: String,
    /// 1..=12.
    #[schema(minimum = 1, maximum = 12)]
    pub exp_month: i64,
    /// e.g. 2030.
    pub exp_year: i64,
    /// 3..=4 digits.
    #[schema(pattern = "^[0-9]{3,4}$")]
    pub cvc: String,
}

impl From<CardRequest> for mall_actors::payment::Card {
    fn from(c: CardRequest) -> Self {
        mall_actors::payment::Card {
            number: c.number,
            exp_month: c.exp_month,
            exp_year: c.exp_year,
            cvc: c.cvc,
        }
    }
}

/// `POST /payments`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenPaymentRequest {
    /// The order to pay.
    #[schema(pattern = r"^[0-9]{1,19}$")]
    pub order_id: String,
}

/// `POST /checkout`
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// Where to ship.
    pub address: Address,
    /// A note (≤ 500 characters).
    #[schema(max_length = 500)]
    pub note: Option<String>,
    /// Charge this card at once.
    pub card: Option<CardRequest>,
}

/// One line of an order (a copy of the product as bought).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderItemDto {
    /// The product.
    pub product_id: String,
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
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderDto {
    /// Id.
    pub id: String,
    /// The buyer.
    pub user_id: String,
    /// `pending_payment`, `paid` or `cancelled`.
    pub status: String,
    /// Lines.
    pub items: Vec<OrderItemDto>,
    /// Sum of the lines.
    pub total_cents: i64,
    /// Shipping address.
    pub address: serde_json::Value,
    /// Note.
    pub note: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Unpaid past this, it is cancelled.
    pub expires_at: String,
    /// When paid.
    pub paid_at: Option<String>,
    /// When cancelled.
    pub cancelled_at: Option<String>,
    /// `user`, `expired`, `account_closed` or `admin`.
    pub cancel_reason: Option<String>,
}

impl From<&OrderView> for OrderDto {
    fn from(o: &OrderView) -> Self {
        OrderDto {
            id: o.id.to_string(),
            user_id: o.user.to_string(),
            status: o.status.to_string(),
            items: o
                .lines
                .iter()
                .map(|i| OrderItemDto {
                    product_id: i.product.to_string(),
                    name: i.name.clone(),
                    unit_price_cents: i.unit_price_cents,
                    quantity: i.quantity,
                    line_total_cents: i.line_total_cents,
                })
                .collect(),
            total_cents: o.total_cents,
            address: serde_json::from_str(&o.address).unwrap_or(serde_json::Value::Null),
            note: o.note.clone(),
            created_at: stored_time(o.created_at),
            updated_at: stored_time(o.updated_at),
            expires_at: stored_time(o.expires_at),
            paid_at: o.paid_at.map(stored_time),
            cancelled_at: o.cancelled_at.map(stored_time),
            cancel_reason: o.cancel_reason.map(|r| r.to_string()),
        }
    }
}

/// A payment session.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentDto {
    /// Id.
    pub id: String,
    /// The order it pays.
    pub order_id: String,
    /// The order's total.
    pub amount_cents: i64,
    /// `pending`, `succeeded`, `cancelled` or `expired`.
    pub status: String,
    /// Last four digits of the last card tried.
    pub card_last4: Option<String>,
    /// `card_declined` after a decline.
    pub last_error: Option<String>,
    /// Charges tried.
    pub attempts: i32,
    /// RFC 3339.
    pub created_at: String,
    /// Pending past this, it expires.
    pub expires_at: String,
    /// When the charge succeeded.
    pub succeeded_at: Option<String>,
    /// When cancelled.
    pub cancelled_at: Option<String>,
}

impl From<&PaymentView> for PaymentDto {
    fn from(p: &PaymentView) -> Self {
        PaymentDto {
            id: p.id.to_string(),
            order_id: p.order.to_string(),
            amount_cents: p.amount_cents,
            status: p.status.to_string(),
            card_last4: p.card_last4.clone(),
            last_error: p.last_error.clone(),
            attempts: p.attempts,
            created_at: stored_time(p.created_at),
            expires_at: stored_time(p.expires_at),
            succeeded_at: p.succeeded_at.map(stored_time),
            cancelled_at: p.cancelled_at.map(stored_time),
        }
    }
}

/// `POST /checkout` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutResponse {
    /// The new order.
    pub order: OrderDto,
    /// Its payment session.
    pub payment: PaymentDto,
}
