//! `/api/v1/orders`: each request about an existing order becomes a message to its actor.

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use mall_actors::order::Viewer;
use mall_db::domain::cart::{MAX_LINES, Quantity};
use mall_db::domain::{OrderId, OrderStatus, UserId};
use mall_db::repo::orders::WantedLine;

use crate::auth::identity::{ADMIN_ROLE, parse_id};
use crate::dto::orders::*;
use crate::dto::{PageQuery, Paged};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::extract::{Caller, Json, Query, optional_json, required_json};
use crate::idempotency::{self, Reply};
use crate::state::AppState;

type Data = web::Data<AppState>;

fn viewer(caller: &Caller) -> Viewer {
    Viewer {
        user: UserId(caller.id),
        admin: caller.has_role(ADMIN_ROLE),
    }
}

/// Checks the lines of a new order and turns them into what the repository takes.
pub fn wanted_lines(items: &[OrderLineRequest]) -> Result<Vec<WantedLine>, ApiError> {
    if items.is_empty() || items.len() > MAX_LINES {
        return Err(ApiError::invalid_field(
            "items",
            format!("must hold 1 to {MAX_LINES} lines"),
        ));
    }
    let mut seen = HashSet::new();
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let quantity = Quantity::new(item.quantity)
            .map_err(|e| ApiError::invalid_field(&format!("items[{i}].quantity"), e.to_string()))?;
        let product_id = parse_id(&item.product_id, "product")?;
        if !seen.insert(product_id) {
            return Err(ApiError::invalid_field(
                &format!("items[{i}].product_id"),
                "appears twice in the order",
            ));
        }
        lines.push(WantedLine {
            product_id,
            quantity: quantity.get(),
        });
    }
    Ok(lines)
}

/// The address as stored (JSON text), after checking it.
pub fn address_json(address: &Address, field: &str) -> Result<String, ApiError> {
    address.check(field)?;
    serde_json::to_string(address).map_err(|e| ApiError::internal(&e))
}

/// Renders `order:ID` for an idempotent replay whose response was lost.
async fn recover_order(st: &AppState, user_id: i64, resource: &str) -> Result<Reply, ApiError> {
    let id = idempotency::resource_id(resource, "order")?;
    let viewer = Viewer {
        user: UserId(user_id),
        admin: false,
    };
    let order = st.orders.get(viewer, OrderId(id), st.deadline()).await?;
    Ok(Reply::new(StatusCode::CREATED, OrderDto::from(&order)))
}

/// Place an order.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = CreateOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = OrderDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "insufficient_stock", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    st: Data,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let parsed: CreateOrderRequest = required_json(&req, &body)?;
    let lines = wanted_lines(&parsed.items)?;
    let address = address_json(&parsed.address, "address")?;
    check_note(parsed.note.as_deref())?;
    let user = caller.id;
    let deadline = st.deadline();
    idempotency::guard(
        &st.db,
        user,
        &req,
        &body,
        |idem| async {
            let order = st
                .orders
                .create(UserId(user), &lines, address, parsed.note, idem, deadline)
                .await?;
            Ok(Reply::new(StatusCode::CREATED, OrderDto::from(&order)))
        },
        |resource| {
            let st = &st;
            async move { recover_order(st, user, &resource).await }
        },
    )
    .await
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(OrderFilter, PageQuery),
    responses((status = 200, body = inline(Paged<OrderDto>)), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    st: Data,
    caller: Caller,
    filter: Query<OrderFilter>,
    page: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (page, page_size) = page.into_inner().resolve()?;
    let status = match filter.into_inner().status.filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(OrderStatus::parse(&s).ok_or_else(|| {
            let words: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
            let (last, rest) = words.split_last().unwrap_or((&"", &[]));
            ApiError::invalid_field("status", format!("must be {} or {last}", rest.join(", ")))
        })?),
    };
    let found = st
        .orders
        .list(UserId(caller.id), status, page, page_size)
        .await?;
    Ok(HttpResponse::Ok().json(Paged::of(found, page, page_size, |r| OrderDto::from(&r))))
}

/// One of the caller's orders (an admin: any).
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = String, Path)),
    responses((status = 200, body = OrderDto), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    st: Data,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "order")?;
    let order = st.orders.get(viewer(&caller), OrderId(id), st.deadline());
    Ok(HttpResponse::Ok().json(OrderDto::from(&order.await?)))
}

/// Change the address or note of a pending order.
#[utoipa::path(patch, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = String, Path)), request_body = UpdateOrderRequest,
    responses((status = 200, body = OrderDto), (status = 404, body = ErrorBody), (status = 409, description = "invalid_state", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    st: Data,
    caller: Caller,
    id: web::Path<String>,
    body: Json<UpdateOrderRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "order")?;
    let body = body.into_inner();
    let address = body
        .address
        .as_ref()
        .map(|a| address_json(a, "address"))
        .transpose()?;
    if let Some(note) = &body.note {
        check_note(note.as_deref())?;
    }
    let (user, id) = (UserId(caller.id), OrderId(id));
    let order = st.orders.edit(user, id, address, body.note, st.deadline());
    let order = order.await?;
    Ok(HttpResponse::Ok().json(OrderDto::from(&order)))
}

/// Cancel a pending order: its stock comes back.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", params(("id" = String, Path)),
    request_body(content = Option<crate::dto::NoBody>, description = "empty, or {}"),
    responses((status = 200, body = OrderDto), (status = 404, body = ErrorBody), (status = 409, description = "invalid_state", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    st: Data,
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let _: crate::dto::NoBody = optional_json(&req, &body)?;
    let id = parse_id(&id, "order")?;
    let order = st
        .orders
        .cancel(UserId(caller.id), OrderId(id), st.deadline());
    Ok(HttpResponse::Ok().json(OrderDto::from(&order.await?)))
}

/// The order's payment sessions.
#[utoipa::path(get, path = "/api/v1/orders/{id}/payments", tag = "orders", params(("id" = String, Path), PageQuery),
    responses((status = 200, body = inline(Paged<PaymentDto>)), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn payments(
    st: Data,
    caller: Caller,
    id: web::Path<String>,
    page: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "order")?;
    let (page, page_size) = page.into_inner().resolve()?;
    let found = st
        .orders
        .payments_of(viewer(&caller), OrderId(id), page, page_size, st.deadline())
        .await?;
    Ok(HttpResponse::Ok().json(Paged::of(found, page, page_size, |r| PaymentDto::from(&r))))
}
