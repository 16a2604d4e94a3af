//! The outermost layer: gives every request an id (echoed from `X-Request-Id` when the client
//! sent a sane one), a tracing span, a metrics sample and one access-log line; and makes sure
//! every error leaves in the contract's shape, whoever produced it.

use std::time::Instant;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use tracing::Instrument;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

/// An error response that is not already an `ApiError` (the router's 404/405, the payload
/// limit's 413, ...) mapped to the contract's code for its status.
fn contract_error(status: StatusCode) -> ApiError {
    match status.as_u16() {
        404 => ApiError::not_found("route"),
        405 => ApiError::new(
            ErrorCode::MethodNotAllowed,
            "method not allowed on this route",
        ),
        413 => ApiError::new(ErrorCode::PayloadTooLarge, "the body is larger than 64 KiB"),
        415 => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the body must be application/json",
        ),
        408 => ApiError::new(
            ErrorCode::RequestTimeout,
            "the request took too long to arrive",
        ),
        400..=499 => ApiError::bad_request("the request is malformed"),
        _ => ApiError::new(ErrorCode::Internal, "internal error"),
    }
}

/// The middleware function (see the module doc).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().to_string();
    // The trace's span name, fixed at creation: the route template, as routing will find it.
    let name = format!(
        "{method} {}",
        req.match_pattern().as_deref().unwrap_or("unmatched")
    );
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = tracing::field::Empty,
        user_id = tracing::field::Empty,
        status = tracing::field::Empty,
        otel.name = name.as_str(),
        otel.kind = "server",
    );
    let outcome = next.call(req).instrument(span.clone()).await;
    let mut res: ServiceResponse<EitherBody<BoxBody>> = match outcome {
        Ok(res) => {
            // Errors raised by actix itself (an extractor's 413, the router's 405) carry no
            // `ApiError`; our own error responses and deliberate bodies (`/readyz`) are kept.
            let foreign_error = match res.response().error() {
                Some(e) => e.as_error::<ApiError>().is_none(),
                None => res.status() == StatusCode::METHOD_NOT_ALLOWED,
            };
            if foreign_error {
                let status = res.status();
                let allow = res.headers().get(header::ALLOW).cloned();
                let (req, _) = res.into_parts();
                let mut answer = contract_error(status).error_response();
                if let Some(allow) = allow {
                    // A 405 says which methods the route has.
                    answer.headers_mut().insert(header::ALLOW, allow);
                }
                ServiceResponse::new(req, answer).map_into_right_body()
            } else {
                res.map_body(|_, b| EitherBody::left(b.boxed()))
            }
        }
        // Every layer inside answers with a response; an `Err` here is actix's own failure,
        // which it turns into a response itself.
        Err(e) => return Err(e),
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
        state
            .metrics
            .observe(&method, &route, status, elapsed.as_secs_f64());
    }
    span.record("route", route.as_str());
    // A request forwarded by another node arrives at the internal endpoint and is routed once
    // unwrapped: its span takes the route it was found to be.
    if name.ends_with(" unmatched") && route != "unmatched" {
        span.record("otel.name", format!("{method} {route}").as_str());
    }
    span.record("status", status);
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, latency_ms, "request finished");
        } else {
            tracing::info!(status, latency_ms, "request finished");
        }
    });
    Ok(res)
}
