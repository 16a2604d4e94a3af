//! `ApiError`: the only `ResponseError` of the mall. Every failure becomes
//! `{"error": {"code", "message", "details"}}` with the status the contract gives its code:
//! [`ErrorCode`] is the one table of codes and their statuses, and [`ErrorBody`] the shape the
//! OpenAPI document shows.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Map, Value, json};

use mall_actors::cart::CartError;
use mall_actors::checkout::CheckoutError;
use mall_actors::order::OrderError;
use mall_actors::payment::PaymentError;
use mall_db::DbError;
use mall_db::domain::placement::Refused;

use crate::services::ServiceError;

/// Seconds a client should wait before retrying after a 503.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

/// Every error code of the contract (API.md, Conventions), each with its one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400: a field, parameter, path or body of the wrong shape.
    InvalidRequest,
    /// 400: the card's number, expiry or cvc is malformed.
    InvalidCard,
    /// 401: no valid access token.
    Unauthenticated,
    /// 401: wrong email or password.
    InvalidCredentials,
    /// 401: a spent refresh token presented again.
    RefreshTokenReused,
    /// 402: the gateway declined the card.
    CardDeclined,
    /// 403: the roles, or the client's address, do not allow it.
    Forbidden,
    /// 403: the account is banned.
    UserBanned,
    /// 404: no such route or resource (or not the caller's).
    NotFound,
    /// 405: the path has no such method.
    MethodNotAllowed,
    /// 408: the request's head took too long to arrive.
    RequestTimeout,
    /// 409: the email is registered already.
    EmailTaken,
    /// 409: a line wants more than is left.
    InsufficientStock,
    /// 409: not in a state that allows this.
    InvalidState,
    /// 409: nothing to check out.
    CartEmpty,
    /// 409: the cart has its most lines.
    CartFull,
    /// 409: the first request with this key still runs.
    IdempotencyKeyInUse,
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 422: the key was used for another request.
    IdempotencyKeyReused,
    /// 429: too many requests.
    RateLimited,
    /// 500: a bug.
    Internal,
    /// 503: a dependency is down.
    Unavailable,
    /// 421: between nodes only: this node does not own the entity's shard (the `X-Mall-Shard`
    /// header names it). Never shown to a client: the receiving node forwards or answers 503.
    Misdirected,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 23] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidCard,
        ErrorCode::Unauthenticated,
        ErrorCode::InvalidCredentials,
        ErrorCode::RefreshTokenReused,
        ErrorCode::CardDeclined,
        ErrorCode::Forbidden,
        ErrorCode::UserBanned,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::RequestTimeout,
        ErrorCode::EmailTaken,
        ErrorCode::InsufficientStock,
        ErrorCode::InvalidState,
        ErrorCode::CartEmpty,
        ErrorCode::CartFull,
        ErrorCode::IdempotencyKeyInUse,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
    ];

    /// The code as the API writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidCard => "invalid_card",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::RefreshTokenReused => "refresh_token_reused",
            ErrorCode::CardDeclined => "card_declined",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::UserBanned => "user_banned",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::EmailTaken => "email_taken",
            ErrorCode::InsufficientStock => "insufficient_stock",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::CartEmpty => "cart_empty",
            ErrorCode::CartFull => "cart_full",
            ErrorCode::IdempotencyKeyInUse => "idempotency_key_in_use",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Misdirected => "misdirected",
        }
    }

    /// The status every error with this code answers.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::InvalidCard => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated
            | ErrorCode::InvalidCredentials
            | ErrorCode::RefreshTokenReused => StatusCode::UNAUTHORIZED,
            ErrorCode::CardDeclined => StatusCode::PAYMENT_REQUIRED,
            ErrorCode::Forbidden | ErrorCode::UserBanned => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::EmailTaken
            | ErrorCode::InsufficientStock
            | ErrorCode::InvalidState
            | ErrorCode::CartEmpty
            | ErrorCode::CartFull
            | ErrorCode::IdempotencyKeyInUse => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Misdirected => StatusCode::MISDIRECTED_REQUEST,
        }
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error body every failure has (for the OpenAPI document; [`ApiError::body`] writes it).
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "a schema for the document only: never built, never read"
)]
pub struct ErrorBody {
    /// `{code, message, details}`
    error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "a schema for the document only: never built, never read"
)]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `invalid_request`.
    code: String,
    /// Human-readable message.
    message: String,
    /// Structured details (for `invalid_request`: `{"fields": {name: reason}}`).
    details: Value,
}

/// The header of a 421 that names the shard the entity lives on (between nodes only).
pub const SHARD_HEADER: &str = "x-mall-shard";

/// An error as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status (the code's).
    pub status: StatusCode,
    /// Machine-readable code from the contract.
    pub code: ErrorCode,
    /// Human-readable message (never SQL, never a secret).
    pub message: String,
    /// Structured details (an object).
    pub details: Map<String, Value>,
    /// `Retry-After` seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ApiError {
    /// An error with no details, answering its code's status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status: code.status(),
            code,
            message: message.into(),
            details: Map::new(),
            retry_after: None,
        }
    }

    /// Adds a detail.
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// 400 `invalid_request` naming the offending fields: `details.fields = {field: reason}`.
    pub fn invalid<'a>(fields: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        let fields: Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect();
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        let message = format!("invalid request: {}", names.join(", "));
        ApiError::new(ErrorCode::InvalidRequest, message).with_detail("fields", fields)
    }

    /// 400 `invalid_request` about one field.
    pub fn invalid_field(field: &str, reason: impl Into<String>) -> Self {
        Self::invalid([(field, reason.into())])
    }

    /// 400 `invalid_request` with a message and no field (a malformed body or path).
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Unauthenticated, message)
    }

    /// 401 `invalid_credentials` (the same answer for an unknown email and a wrong password).
    pub fn invalid_credentials() -> Self {
        ApiError::new(ErrorCode::InvalidCredentials, "email or password is wrong")
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    /// 403 `user_banned`.
    pub fn user_banned() -> Self {
        ApiError::new(ErrorCode::UserBanned, "this account is banned")
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// 503 `unavailable` with `Retry-After`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = ApiError::new(ErrorCode::Unavailable, message);
        e.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECS);
        e
    }

    /// The body this error answers with: `{"error": {code, message, details}}`.
    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code.as_str(), "message": self.message, "details": self.details}})
    }

    /// 421 `misdirected` (between nodes only): another node owns `shard`.
    pub fn misdirected(shard: u32) -> Self {
        ApiError::new(
            ErrorCode::Misdirected,
            format!("shard {shard} is owned by another node"),
        )
        .with_detail("shard", shard)
    }

    /// Whether a retry (here or on another node) may do what this attempt did not: a server
    /// error, or a request that reached a node not owning its shard.
    pub fn is_retryable(&self) -> bool {
        self.status.is_server_error() || self.code == ErrorCode::Misdirected
    }

    /// 500 `internal`: a bug. The cause is logged, never shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error")
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(why) => {
                tracing::warn!(error = %why, "database unavailable");
                ApiError::unavailable("the database is unavailable, retry shortly")
            }
            DbError::Fenced { shard } => ApiError::misdirected(shard),
            other => ApiError::internal(&other),
        }
    }
}

impl From<CartError> for ApiError {
    fn from(e: CartError) -> Self {
        match e {
            CartError::InvalidQuantity(why) => ApiError::invalid_field("quantity", why),
            CartError::CartFull(n) => ApiError::new(
                ErrorCode::CartFull,
                format!("the cart already has {n} lines"),
            ),
            CartError::ProductNotFound => ApiError::not_found("product"),
            CartError::LineNotFound => ApiError::not_found("cart line"),
            CartError::Unavailable(why) => {
                tracing::warn!(error = %why, "cart unavailable");
                ApiError::unavailable("the cart is unavailable, retry shortly")
            }
            CartError::NotOwner { shard } => ApiError::misdirected(shard),
            CartError::Internal(why) => ApiError::internal(&why),
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::NotFound => ApiError::not_found("order"),
            OrderError::InvalidState(why) => ApiError::new(ErrorCode::InvalidState, why),
            OrderError::Refused(Refused::ProductNotFound(id)) => {
                ApiError::not_found("product").with_detail("product_id", id.to_string())
            }
            OrderError::Refused(Refused::InsufficientStock {
                product_id,
                available,
            }) => ApiError::new(
                ErrorCode::InsufficientStock,
                format!("only {available} of product {product_id} available"),
            )
            .with_detail("product_id", product_id.to_string())
            .with_detail("available", available),
            OrderError::Unavailable(why) => {
                tracing::warn!(error = %why, "orders unavailable");
                ApiError::unavailable("orders are unavailable, retry shortly")
            }
            OrderError::Refused(overflow @ Refused::Overflow(_)) => ApiError::internal(&overflow),
            OrderError::Payment(e) => e.into(),
            OrderError::NotOwner { shard } => ApiError::misdirected(shard),
            OrderError::Internal(why) => ApiError::internal(&why),
        }
    }
}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::NotFound => ApiError::not_found("payment"),
            PaymentError::InvalidState(why) => ApiError::new(ErrorCode::InvalidState, why),
            PaymentError::InvalidCard(field, reason) => {
                let fields: serde_json::Map<String, Value> =
                    [(field.to_owned(), Value::from(reason))]
                        .into_iter()
                        .collect();
                ApiError::new(
                    ErrorCode::InvalidCard,
                    format!("invalid card: {field} {reason}"),
                )
                .with_detail("fields", fields)
            }
            PaymentError::Declined(row) => {
                ApiError::new(ErrorCode::CardDeclined, "the card was declined")
                    .with_detail("payment_id", row.id.to_string())
                    .with_detail("attempts", row.attempts)
            }
            PaymentError::Unavailable(why) => {
                tracing::warn!(error = %why, "payments unavailable");
                ApiError::unavailable("payments are unavailable, retry shortly")
            }
            PaymentError::NotOwner { shard } => ApiError::misdirected(shard),
            PaymentError::Internal(why) => ApiError::internal(&why),
        }
    }
}

impl From<CheckoutError> for ApiError {
    fn from(e: CheckoutError) -> Self {
        match e {
            CheckoutError::CartEmpty => ApiError::new(ErrorCode::CartEmpty, "the cart is empty"),
            CheckoutError::Cart(e) => e.into(),
            CheckoutError::Order(e) => e.into(),
            CheckoutError::Payment(e) => e.into(),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(fields) => {
                ApiError::invalid(fields.iter().map(|(f, p)| (f.as_str(), p.clone())))
            }
            ServiceError::NotFound(what) => ApiError::not_found(what),
            ServiceError::Forbidden(why) => ApiError::forbidden(why),
            ServiceError::InvalidState(why) => ApiError::new(ErrorCode::InvalidState, why),
            ServiceError::EmailTaken => ApiError::new(ErrorCode::EmailTaken, e.to_string()),
            ServiceError::InvalidCredentials => ApiError::invalid_credentials(),
            ServiceError::UserBanned => ApiError::user_banned(),
            ServiceError::InvalidRefreshToken => ApiError::unauthenticated(e.to_string()),
            ServiceError::RefreshTokenReused => {
                ApiError::new(ErrorCode::RefreshTokenReused, e.to_string())
            }
            ServiceError::Db(e) => e.into(),
            ServiceError::Orders(e) => e.into(),
            ServiceError::Internal(why) => ApiError::internal(&why),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = self.body();
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        if self.code == ErrorCode::Misdirected
            && let Some(shard) = self.details.get("shard").and_then(Value::as_u64)
        {
            res.insert_header((SHARD_HEADER, HeaderValue::from(shard)));
        }
        res.json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    #[actix_web::test]
    async fn errors_have_the_contract_shape() {
        let res = ApiError::invalid_field("email", "must be an email address").error_response();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let body: Value =
            serde_json::from_slice(&to_bytes(res.into_body()).await.unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "invalid_request");
        assert_eq!(
            body["error"]["details"]["fields"]["email"],
            "must be an email address"
        );
        assert!(body["error"]["message"].as_str().unwrap().contains("email"));
    }

    #[test]
    fn each_code_is_spelled_once_with_the_contracts_status() {
        let all = ErrorCode::ALL;
        let names: std::collections::HashSet<&str> = all.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), all.len(), "a code is spelled twice");
        // API.md's table of statuses.
        for (status, codes) in [
            (400, &["invalid_request", "invalid_card"][..]),
            (
                401,
                &[
                    "unauthenticated",
                    "invalid_credentials",
                    "refresh_token_reused",
                ],
            ),
            (402, &["card_declined"]),
            (403, &["forbidden", "user_banned"]),
            (404, &["not_found"]),
            (405, &["method_not_allowed"]),
            (
                409,
                &[
                    "email_taken",
                    "insufficient_stock",
                    "invalid_state",
                    "cart_empty",
                    "cart_full",
                    "idempotency_key_in_use",
                ],
            ),
            (413, &["payload_too_large"]),
            (415, &["unsupported_media_type"]),
            (422, &["idempotency_key_reused"]),
            (429, &["rate_limited"]),
            (503, &["unavailable"]),
        ] {
            for code in codes {
                let found = all.iter().find(|c| c.as_str() == *code).expect("listed");
                assert_eq!(found.status().as_u16(), status, "{code}");
            }
        }
        assert_eq!(
            ApiError::new(ErrorCode::CartEmpty, "x").status,
            StatusCode::CONFLICT
        );
    }

    #[test]
    fn service_errors_answer_the_contracts_codes() {
        let cases = [
            (
                ServiceError::invalid_field("email", "no"),
                "invalid_request",
            ),
            (ServiceError::NotFound("user"), "not_found"),
            (ServiceError::Forbidden("no".into()), "forbidden"),
            (ServiceError::InvalidState("no".into()), "invalid_state"),
            (ServiceError::EmailTaken, "email_taken"),
            (ServiceError::InvalidCredentials, "invalid_credentials"),
            (ServiceError::UserBanned, "user_banned"),
            (ServiceError::InvalidRefreshToken, "unauthenticated"),
            (ServiceError::RefreshTokenReused, "refresh_token_reused"),
            (
                ServiceError::Db(DbError::Unavailable("down".into())),
                "unavailable",
            ),
            (ServiceError::Internal("bug".into()), "internal"),
        ];
        for (err, code) in cases {
            assert_eq!(ApiError::from(err).code, code);
        }
        let invalid = ApiError::from(ServiceError::invalid_field("email", "no"));
        assert_eq!(invalid.details["fields"]["email"], "no");
    }

    #[actix_web::test]
    async fn database_outage_is_503_with_retry_after_and_no_sql() {
        let res = ApiError::from(DbError::Unavailable(
            "connection refused to 10.0.0.1".into(),
        ))
        .error_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "1");
        let body = to_bytes(res.into_body()).await.unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("10.0.0.1"));
    }
}
