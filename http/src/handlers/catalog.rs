//! `/api/v1/products`: the catalog.

use actix_web::{HttpResponse, web};

use crate::auth::identity::parse_id;
use crate::dto::catalog::*;
use crate::dto::{PageQuery, Paged};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::extract::{Caller, Json, Query};
use crate::services::catalog::Product;
use crate::state::AppState;

type Data = web::Data<AppState>;

fn view((row, categories): Product) -> ProductView {
    ProductView::of(&row, categories)
}

/// Search and list the catalog (deleted products never appear).
#[utoipa::path(get, path = "/api/v1/products", tag = "catalog", params(ProductSearch, PageQuery),
    responses((status = 200, body = inline(crate::dto::Paged<ProductView>)), (status = 400, body = ErrorBody)))]
pub async fn list_products(
    st: Data,
    search: Query<ProductSearch>,
    page: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, size) = page.into_inner().resolve()?;
    let found = st
        .catalog
        .list(&search.into_inner().into(), page, size)
        .await?;
    Ok(HttpResponse::Ok().json(Paged::of(found, page, size, view)))
}

/// Create a product; the caller is its merchant.
#[utoipa::path(post, path = "/api/v1/products", tag = "catalog", request_body = CreateProductRequest,
    responses((status = 201, body = ProductView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_product(
    st: Data,
    caller: Caller,
    body: Json<CreateProductRequest>,
) -> Result<HttpResponse, ApiError> {
    let product = st
        .catalog
        .create(caller.id, body.into_inner().into())
        .await?;
    Ok(HttpResponse::Created().json(view(product)))
}

/// Several products at once, in the order asked; unknown ones are listed as missing.
#[utoipa::path(post, path = "/api/v1/products/batch", tag = "catalog", request_body = BatchRequest,
    responses((status = 200, body = BatchResponse), (status = 400, body = ErrorBody)))]
pub async fn batch_products(st: Data, body: Json<BatchRequest>) -> Result<HttpResponse, ApiError> {
    let batch = st.catalog.batch(&body.into_inner().ids).await?;
    Ok(HttpResponse::Ok().json(BatchResponse {
        items: batch.found.into_iter().map(view).collect(),
        missing: batch.missing,
    }))
}

/// One product.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, body = ProductView), (status = 404, body = ErrorBody)))]
pub async fn get_product(st: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "product")?;
    let Some(cache) = &st.product_cache else {
        return Ok(HttpResponse::Ok().json(view(st.catalog.get(id).await?)));
    };
    // The cache holds the rendered view: a hit skips the database and the rendering.
    let json = match cache.get(id).await {
        Some(hit) => hit,
        None => {
            let view = view(st.catalog.get(id).await?);
            let json = serde_json::to_string(&view).map_err(|e| ApiError::internal(&e))?;
            cache.put(id, &json).await;
            json
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(json))
}

/// Change some of a product's fields (its merchant or an admin).
#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "catalog", params(("id" = String, Path)), request_body = UpdateProductRequest,
    responses((status = 200, body = ProductView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn update_product(
    st: Data,
    caller: Caller,
    id: web::Path<String>,
    body: Json<UpdateProductRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "product")?;
    let product = st
        .catalog
        .update(caller.principal(), id, body.into_inner().into())
        .await?;
    Ok(HttpResponse::Ok().json(view(product)))
}

/// Take a product out of the catalog (its merchant or an admin).
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_product(
    st: Data,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "product")?;
    st.catalog.delete(caller.principal(), id).await?;
    Ok(HttpResponse::NoContent().finish())
}
