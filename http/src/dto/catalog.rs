//! Bodies and query strings of the catalog routes (`/api/v1/products`).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use mall_db::models::ProductRow;

use super::{present, stored_time};
use crate::services::catalog::{ProductDraft, ProductPatch, Search};

/// A product as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProductView {
    /// Id (a string).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Free text (may be empty).
    pub description: String,
    /// Price in minor units.
    pub price_cents: i64,
    /// Quantity available to buy.
    pub stock: i64,
    /// Categories, sorted.
    pub categories: Vec<String>,
    /// An `http(s)://` picture, or null.
    pub image_url: Option<String>,
    /// The seller's user id (a string).
    pub merchant_id: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl ProductView {
    /// The view of a stored product and its categories.
    pub fn of(p: &ProductRow, categories: Vec<String>) -> Self {
        ProductView {
            id: p.id.to_string(),
            name: p.name.clone(),
            description: p.description.clone(),
            price_cents: p.price_cents,
            stock: p.stock,
            categories,
            image_url: p.image_url.clone(),
            merchant_id: p.merchant_id.to_string(),
            created_at: stored_time(p.created_at),
            updated_at: stored_time(p.updated_at),
        }
    }
}

/// `POST /products`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    /// 1..=200 characters, not only spaces.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// At most 5000 characters (default empty).
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// Integer minor units, 0..=100000000000.
    #[schema(minimum = 0, maximum = 100_000_000_000_i64)]
    pub price_cents: i64,
    /// Integer, 0..=1000000000.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: i64,
    /// At most 20, each 1..=64 characters once trimmed; duplicates are dropped.
    #[schema(max_items = 20)]
    pub categories: Option<Vec<String>>,
    /// `http://` or `https://`, at most 2048 characters.
    #[schema(max_length = 2048, pattern = r"^[hH][tT][tT][pP][sS]?://\S+$")]
    pub image_url: Option<String>,
}

/// `PATCH /products/{id}`: only the fields given change. `image_url: null` removes the picture;
/// `null` for any other field is refused (400).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProductRequest {
    /// 1..=200 characters, not only spaces.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    pub name: Option<Option<String>>,
    /// At most 5000 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, max_length = 5000)]
    pub description: Option<Option<String>>,
    /// Integer minor units, 0..=100000000000.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = i64, minimum = 0, maximum = 100_000_000_000_i64)]
    pub price_cents: Option<Option<i64>>,
    /// Integer, 0..=1000000000.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = i64, minimum = 0, maximum = 1_000_000_000)]
    pub stock: Option<Option<i64>>,
    /// The complete new list (same rules as on creation).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<String>, max_items = 20)]
    pub categories: Option<Option<Vec<String>>>,
    /// A new picture, or `null` to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = r"^[hH][tT][tT][pP][sS]?://\S+$")]
    pub image_url: Option<Option<String>>,
}

/// `POST /products/batch`
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1..=100 product ids (strings).
    #[schema(min_items = 1, max_items = 100)]
    pub ids: Vec<String>,
}

/// What `POST /products/batch` answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchResponse {
    /// The products found, in the order asked (each once).
    pub items: Vec<ProductView>,
    /// The ids asked for, as given, that name no product in the catalog.
    pub missing: Vec<String>,
}

/// `GET /products` filters (paging is separate: `page`, `page_size`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductSearch {
    /// Part of the name or description, any case (at most 200 characters).
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// A category, exactly.
    pub category: Option<String>,
    /// `newest` (default), `price_asc` or `price_desc`.
    #[param(pattern = "^(newest|price_asc|price_desc)$")]
    pub sort: Option<String>,
}

impl From<CreateProductRequest> for ProductDraft {
    fn from(r: CreateProductRequest) -> Self {
        ProductDraft {
            name: r.name,
            description: r.description,
            price_cents: r.price_cents,
            stock: r.stock,
            categories: r.categories,
            image_url: r.image_url,
        }
    }
}

impl From<UpdateProductRequest> for ProductPatch {
    fn from(r: UpdateProductRequest) -> Self {
        ProductPatch {
            name: r.name,
            description: r.description,
            price_cents: r.price_cents,
            stock: r.stock,
            categories: r.categories,
            image_url: r.image_url,
        }
    }
}

impl From<ProductSearch> for Search {
    fn from(r: ProductSearch) -> Self {
        Search {
            q: r.q,
            category: r.category,
            sort: r.sort,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(body: serde_json::Value) -> Result<UpdateProductRequest, serde_json::Error> {
        serde_json::from_value(body)
    }

    #[test]
    fn patch_tells_absent_from_null() {
        let p = patch(json!({})).unwrap();
        assert_eq!(p.name, None);
        assert_eq!(p.image_url, None);
        let p = patch(json!({"image_url": null, "name": null})).unwrap();
        assert_eq!(p.image_url, Some(None));
        assert_eq!(p.name, Some(None));
        let p = patch(json!({"image_url": "https://x.example/a.png", "stock": 3})).unwrap();
        assert_eq!(p.image_url, Some(Some("https://x.example/a.png".into())));
        assert_eq!(p.stock, Some(Some(3)));
    }

    #[test]
    fn bodies_refuse_unknown_fields_and_wrong_types() {
        assert!(patch(json!({"merchant_id": "1"})).is_err());
        assert!(patch(json!({"price_cents": 1.5})).is_err());
        assert!(patch(json!({"price_cents": "100"})).is_err());
        let create = |v| serde_json::from_value::<CreateProductRequest>(v);
        assert!(create(json!({"name": "n", "price_cents": 1, "stock": 1})).is_ok());
        assert!(create(json!({"name": "n", "price_cents": 9.99, "stock": 1})).is_err());
        assert!(
            create(json!({"name": "n", "price_cents": 1, "stock": 1, "merchant_id": "7"})).is_err()
        );
        assert!(create(json!({"name": "n", "price_cents": 1})).is_err());
        assert!(serde_json::from_value::<BatchRequest>(json!({"ids": [1]})).is_err());
    }
}
