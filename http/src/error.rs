//! `ApiError`: the only `ResponseError` of the mall. Every failure becomes
//! `{"error": {"code", "message", "details"}}` with the status the contract gives its code.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Map, Value, json};

use mall_actors::cart::CartError;
use mall_actors::checkout::CheckoutError;
use mall_actors::order::OrderError;
use mall_actors::payment::PaymentError;
use mall_db::DbError;

/// Seconds a client should wait before retrying after a 503.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

/// An error as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code from the contract.
    pub code: &'static str,
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
    /// An error with no details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
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
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
            .with_detail("fields", fields)
    }

    /// 400 `invalid_request` about one field.
    pub fn invalid_field(field: &str, reason: impl Into<String>) -> Self {
        Self::invalid([(field, reason.into())])
    }

    /// 400 `invalid_request` with a message and no field (a malformed body or path).
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 401 `invalid_credentials` (the same answer for an unknown email and a wrong password).
    pub fn invalid_credentials() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "email or password is wrong",
        )
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 403 `user_banned`.
    pub fn user_banned() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "user_banned",
            "this account is banned",
        )
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 409 with the given code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// 503 `unavailable` with `Retry-After`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        e.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECS);
        e
    }

    /// The body this error answers with: `{"error": {code, message, details}}`.
    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message, "details": self.details}})
    }

    /// 500 `internal`: a bug. The cause is logged, never shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(why) => {
                tracing::warn!(error = %why, "database unavailable");
                ApiError::unavailable("the database is unavailable, retry shortly")
            }
            other => ApiError::internal(&other),
        }
    }
}

impl From<CartError> for ApiError {
    fn from(e: CartError) -> Self {
        match e {
            CartError::InvalidQuantity(why) => ApiError::invalid_field("quantity", why),
            CartError::CartFull(n) => {
                ApiError::conflict("cart_full", format!("the cart already has {n} lines"))
            }
            CartError::ProductNotFound => ApiError::not_found("product"),
            CartError::LineNotFound => ApiError::not_found("cart line"),
            CartError::Unavailable(why) => {
                tracing::warn!(error = %why, "cart unavailable");
                ApiError::unavailable("the cart is unavailable, retry shortly")
            }
            CartError::Internal(why) => ApiError::internal(&why),
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::NotFound => ApiError::not_found("order"),
            OrderError::InvalidState(why) => ApiError::conflict("invalid_state", why),
            OrderError::ProductNotFound(id) => {
                ApiError::not_found("product").with_detail("product_id", id.to_string())
            }
            OrderError::InsufficientStock {
                product_id,
                available,
            } => ApiError::conflict(
                "insufficient_stock",
                format!("only {available} of product {product_id} available"),
            )
            .with_detail("product_id", product_id.to_string())
            .with_detail("available", available),
            OrderError::Unavailable(why) => {
                tracing::warn!(error = %why, "orders unavailable");
                ApiError::unavailable("orders are unavailable, retry shortly")
            }
            OrderError::Internal(why) => ApiError::internal(&why),
        }
    }
}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::NotFound => ApiError::not_found("payment"),
            PaymentError::InvalidState(why) => ApiError::conflict("invalid_state", why),
            PaymentError::InvalidCard(field, reason) => {
                let fields: serde_json::Map<String, Value> =
                    [(field.to_owned(), Value::from(reason))]
                        .into_iter()
                        .collect();
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_card",
                    format!("invalid card: {field} {reason}"),
                )
                .with_detail("fields", fields)
            }
            PaymentError::Declined(row) => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "card_declined",
                "the card was declined",
            )
            .with_detail("payment_id", row.id.to_string())
            .with_detail("attempts", row.attempts),
            PaymentError::Unavailable(why) => {
                tracing::warn!(error = %why, "payments unavailable");
                ApiError::unavailable("payments are unavailable, retry shortly")
            }
            PaymentError::Internal(why) => ApiError::internal(&why),
        }
    }
}

impl From<CheckoutError> for ApiError {
    fn from(e: CheckoutError) -> Self {
        match e {
            CheckoutError::CartEmpty => ApiError::conflict("cart_empty", "the cart is empty"),
            CheckoutError::Cart(e) => e.into(),
            CheckoutError::Order(e) => e.into(),
            CheckoutError::Payment(e) => e.into(),
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
