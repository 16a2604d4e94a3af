//! `/api/v1/payments`: each request about a session becomes a message to its actor.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use mall_db::domain::{OrderId, PaymentId, UserId};

use crate::auth::identity::parse_id;
use crate::dto::orders::*;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::extract::{Caller, optional_json, required_json};
use crate::idempotency::{self, Reply};
use crate::state::AppState;

type Data = web::Data<AppState>;

async fn recover_payment(
    st: &AppState,
    user_id: i64,
    resource: &str,
    status: StatusCode,
) -> Result<Reply, ApiError> {
    let id = PaymentId(idempotency::resource_id(resource, "payment")?);
    let payment = st.payments.get(UserId(user_id), id, st.deadline()).await?;
    Ok(Reply::new(status, PaymentDto::from(&payment)))
}

/// Open a payment session for a pending order (or get its pending one).
#[utoipa::path(post, path = "/api/v1/payments", tag = "payments", request_body = OpenPaymentRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = PaymentDto), (status = 200, description = "the pending session", body = PaymentDto),
        (status = 404, body = ErrorBody), (status = 409, description = "invalid_state", body = ErrorBody)), security(("bearer" = [])))]
pub async fn open(
    st: Data,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let parsed: OpenPaymentRequest = required_json(&req, &body)?;
    let order_id = OrderId(parse_id(&parsed.order_id, "order")?);
    let user = caller.id;
    let deadline = st.deadline();
    idempotency::guard(
        &st.db,
        user,
        &req,
        &body,
        |idem| async {
            let opened = st.payments.open(UserId(user), order_id, idem, deadline);
            let (payment, created) = opened.await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(Reply::new(status, PaymentDto::from(&payment)))
        },
        |resource| {
            let st = &st;
            async move { recover_payment(st, user, &resource, StatusCode::CREATED).await }
        },
    )
    .await
}

/// One of the caller's sessions.
#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "payments", params(("id" = String, Path)),
    responses((status = 200, body = PaymentDto), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    st: Data,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = PaymentId(parse_id(&id, "payment")?);
    let payment = st
        .payments
        .get(UserId(caller.id), id, st.deadline())
        .await?;
    Ok(HttpResponse::Ok().json(PaymentDto::from(&payment)))
}

/// Charge a card: the order becomes paid.
#[utoipa::path(post, path = "/api/v1/payments/{id}/confirm", tag = "payments", params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body = CardRequest,
    responses((status = 200, body = PaymentDto), (status = 400, description = "invalid_card", body = ErrorBody),
        (status = 402, description = "card_declined", body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "invalid_state", body = ErrorBody)), security(("bearer" = [])))]
pub async fn confirm(
    st: Data,
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let card: CardRequest = required_json(&req, &body)?;
    let id = PaymentId(parse_id(&id, "payment")?);
    let user = caller.id;
    let deadline = st.deadline();
    idempotency::guard(
        &st.db,
        user,
        &req,
        &body,
        |idem| async {
            let confirmed = st
                .payments
                .confirm(UserId(user), id, card.into(), idem, deadline);
            let payment = confirmed.await?;
            Ok(Reply::new(StatusCode::OK, PaymentDto::from(&payment)))
        },
        |resource| {
            let st = &st;
            async move { recover_payment(st, user, &resource, StatusCode::OK).await }
        },
    )
    .await
}

/// Cancel a pending session (the order stays payable).
#[utoipa::path(post, path = "/api/v1/payments/{id}/cancel", tag = "payments", params(("id" = String, Path)),
    request_body(content = Option<crate::dto::NoBody>, description = "empty, or {}"),
    responses((status = 200, body = PaymentDto), (status = 404, body = ErrorBody), (status = 409, description = "invalid_state", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    st: Data,
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let _: crate::dto::NoBody = optional_json(&req, &body)?;
    let id = PaymentId(parse_id(&id, "payment")?);
    let payment = st
        .payments
        .cancel(UserId(caller.id), id, st.deadline())
        .await?;
    Ok(HttpResponse::Ok().json(PaymentDto::from(&payment)))
}
