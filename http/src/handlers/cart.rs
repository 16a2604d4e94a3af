//! `/api/v1/cart` and `/api/v1/cart/items`: each request becomes a message to the caller's cart actor.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::identity::parse_id;
use crate::dto::NoBody;
use crate::dto::cart::*;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::extract::{Caller, Json, optional_json};
use crate::state::AppState;

type Data = web::Data<AppState>;

fn ok(view: mall_actors::cart::CartView) -> HttpResponse {
    HttpResponse::Ok().json(CartDto::from(view))
}

/// Create the caller's cart if it has none.
#[utoipa::path(post, path = "/api/v1/cart", tag = "cart", request_body(content = Option<NoBody>, description = "empty, or {}"),
    responses((status = 200, body = CartDto), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    st: Data,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let _: NoBody = optional_json(&req, &body)?;
    Ok(ok(st.carts.create(caller.id).await?))
}

/// The caller's cart.
#[utoipa::path(get, path = "/api/v1/cart", tag = "cart",
    responses((status = 200, body = CartDto), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(st: Data, caller: Caller) -> Result<HttpResponse, ApiError> {
    Ok(ok(st.carts.get(caller.id).await?))
}

/// Add a product (quantities of one product add up).
#[utoipa::path(post, path = "/api/v1/cart/items", tag = "cart", request_body = AddItemRequest,
    responses((status = 200, body = CartDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "cart_full", body = ErrorBody)), security(("bearer" = [])))]
pub async fn add_item(
    st: Data,
    caller: Caller,
    body: Json<AddItemRequest>,
) -> Result<HttpResponse, ApiError> {
    // The quantity's bounds are the cart's rule: its entity checks them (400 `quantity`).
    let body = body.into_inner();
    let product_id = parse_id(&body.product_id, "product")?;
    Ok(ok(st
        .carts
        .add_item(caller.id, product_id, body.quantity)
        .await?))
}

/// Set a line's quantity (0 removes it).
#[utoipa::path(put, path = "/api/v1/cart/items/{product_id}", tag = "cart", params(("product_id" = String, Path)),
    request_body = SetQuantityRequest,
    responses((status = 200, body = CartDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_item(
    st: Data,
    caller: Caller,
    product_id: web::Path<String>,
    body: Json<SetQuantityRequest>,
) -> Result<HttpResponse, ApiError> {
    let product_id = parse_id(&product_id, "product")?;
    Ok(ok(st
        .carts
        .set_quantity(caller.id, product_id, body.into_inner().quantity)
        .await?))
}

/// Remove a line.
#[utoipa::path(delete, path = "/api/v1/cart/items/{product_id}", tag = "cart", params(("product_id" = String, Path)),
    responses((status = 200, body = CartDto), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn remove_item(
    st: Data,
    caller: Caller,
    product_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let product_id = parse_id(&product_id, "cart line")?;
    Ok(ok(st.carts.remove_item(caller.id, product_id).await?))
}

/// Empty the cart.
#[utoipa::path(delete, path = "/api/v1/cart", tag = "cart",
    responses((status = 200, body = CartDto), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn clear(st: Data, caller: Caller) -> Result<HttpResponse, ApiError> {
    Ok(ok(st.carts.clear(caller.id).await?))
}
