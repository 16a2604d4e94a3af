//! Bodies of the cart routes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use mall_actors::cart::CartView;

use super::stored_time;

/// `POST /cart/items`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItemRequest {
    /// The product's id (a string).
    #[schema(pattern = r"^[0-9]{1,19}$")]
    pub product_id: String,
    /// 1..=999; adds up with the line's current quantity (at most 999 in all).
    #[schema(minimum = 1, maximum = 999)]
    pub quantity: i64,
}

/// `PUT /cart/items/{product_id}`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuantityRequest {
    /// 0..=999; 0 removes the line.
    #[schema(minimum = 0, maximum = 999)]
    pub quantity: i64,
}

/// One cart line, priced now.
#[derive(Debug, Serialize, ToSchema)]
pub struct CartItemDto {
    /// The product's id.
    pub product_id: String,
    /// Its current name.
    pub name: String,
    /// Its current price.
    pub unit_price_cents: i64,
    /// How many.
    pub quantity: i32,
    /// `unit_price_cents * quantity`.
    pub line_total_cents: i64,
    /// False once the product is deleted.
    pub available: bool,
}

/// The cart.
#[derive(Debug, Serialize, ToSchema)]
pub struct CartDto {
    /// Lines in the order they were first added.
    pub items: Vec<CartItemDto>,
    /// The sum of the available lines.
    pub total_cents: i64,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<CartView> for CartDto {
    fn from(v: CartView) -> Self {
        CartDto {
            items: v
                .items
                .into_iter()
                .map(|i| CartItemDto {
                    product_id: i.product_id.to_string(),
                    name: i.name,
                    unit_price_cents: i.unit_price_cents,
                    quantity: i.quantity,
                    line_total_cents: i.line_total_cents,
                    available: i.available,
                })
                .collect(),
            total_cents: v.total_cents,
            updated_at: stored_time(v.updated_at),
        }
    }
}
