//! The `products` row (categories live in `product_categories`, see `repo::products`).

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::schema::products;

/// A product as stored, live or soft-deleted.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = products)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ProductRow {
    /// Application-generated id.
    pub id: i64,
    /// The user who sells it.
    pub merchant_id: i64,
    /// Display name.
    pub name: String,
    /// Lower-cased `name + "\n" + description`, what search matches against.
    pub search_text: String,
    /// Free text (may be empty).
    pub description: String,
    /// Price in minor units, never negative.
    pub price_cents: i64,
    /// Quantity available to buy, never negative.
    pub stock: i64,
    /// An `http(s)://` picture, if any.
    pub image_url: Option<String>,
    /// Creation time (UTC).
    pub created_at: PrimitiveDateTime,
    /// Last change (UTC).
    pub updated_at: PrimitiveDateTime,
    /// Set once the product has left the catalog.
    pub deleted_at: Option<PrimitiveDateTime>,
    /// Bumped on every change.
    pub version: i64,
}

/// What creating a product writes; `search_text` is derived by `repo::products::insert`.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = products)]
pub struct NewProduct {
    /// Application-generated id.
    pub id: i64,
    /// The user who sells it.
    pub merchant_id: i64,
    /// Display name.
    pub name: String,
    /// Free text (may be empty).
    pub description: String,
    /// Price in minor units.
    pub price_cents: i64,
    /// Quantity available to buy.
    pub stock: i64,
    /// An `http(s)://` picture, if any.
    pub image_url: Option<String>,
    /// Creation time.
    pub created_at: PrimitiveDateTime,
    /// Same as `created_at` at first.
    pub updated_at: PrimitiveDateTime,
}

/// The text search matches against: the lower-cased name and description, one line apart.
/// Lower-casing happens here, in Rust, so search is case-insensitive alike on both backends.
pub fn search_text(name: &str, description: &str) -> String {
    format!("{name}\n{description}").to_lowercase()
}
