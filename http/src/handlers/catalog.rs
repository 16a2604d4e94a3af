//! `/api/v1/products`: the catalog.

use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::identity::parse_id;
use crate::dto::catalog::*;
use crate::dto::{PageQuery, Paged};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::extract::{Caller, Json, Query};
use crate::product_cache::Rendered;
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

/// One product, with a strong `ETag`; a matching `If-None-Match` answers 304 without a body.
/// Answered from this node's cache of rendered products when it can be.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalog",
    params(("id" = String, Path), ("If-None-Match" = Option<String>, Header, description = "an ETag of an earlier answer")),
    responses(
        (status = 200, body = ProductView, headers(("ETag" = String, description = "the tag of this version of the product"))),
        (status = 304, description = "the product is unchanged since the tag given", headers(("ETag" = String))),
        (status = 404, body = ErrorBody)))]
pub async fn get_product(
    st: Data,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "product")?;
    let product = st
        .products
        .get_or_load(id, || async {
            let view = view(st.catalog.get(id).await?);
            let json = serde_json::to_vec(&view).map_err(|e| ApiError::internal(&e))?;
            Ok::<_, ApiError>(Rendered::new(json))
        })
        .await?;
    // Stock moves with every order: a client may keep the copy, but asks again before using it.
    let revalidate = (header::CACHE_CONTROL, "no-cache");
    let etag = (header::ETAG, product.etag.clone());
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| product.matches(v));
    if unchanged {
        return Ok(HttpResponse::NotModified()
            .insert_header(etag)
            .insert_header(revalidate)
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .insert_header(etag)
        .insert_header(revalidate)
        .body(product.json.clone()))
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
