//! JSON bodies and query strings: 415 for another media type, 413 past 64 KiB, 400 naming the
//! field for malformed JSON, a wrong type or an unknown field, and 400 for a body that is not a
//! JSON object (serde would otherwise accept `["a@b.c", "pw", "n"]` for a struct).

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// The largest body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Turns a serde error message into `(field, reason)` when it names a field.
fn field_of(message: &str) -> Option<(String, String)> {
    for (marker, reason) in [
        ("unknown field `", "unknown field"),
        ("missing field `", "is required"),
    ] {
        if let Some(start) = message.find(marker) {
            let rest = &message[start + marker.len()..];
            let name = rest.split('`').next().unwrap_or_default();
            return Some((name.to_owned(), reason.to_owned()));
        }
    }
    None
}

fn from_serde(message: &str) -> ApiError {
    match field_of(message) {
        Some((field, reason)) => ApiError::invalid_field(&field, reason),
        None => {
            // serde_json's own words ("invalid type: string, expected u32 at line 1 column 9")
            // name no SQL or secret and help the client; keep them.
            ApiError::bad_request(format!("malformed JSON body: {message}"))
        }
    }
}

/// `web::JsonConfig` with the contract's limits and error shape.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _req| {
            let api = match &err {
                JsonPayloadError::ContentType => ApiError::new(
                    actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the body must be application/json",
                ),
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => ApiError::new(
                    actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the body is larger than 64 KiB",
                ),
                JsonPayloadError::Deserialize(e) => from_serde(&e.to_string()),
                other => ApiError::bad_request(format!("unreadable body: {other}")),
            };
            api.into()
        })
}

/// A JSON object body deserialised into `T` (the limits and errors of [`json_config`]).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// `T` from a parsed body, which must be a JSON object.
fn from_object<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| from_serde(&e.to_string()))
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let value = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move { Ok(Json(from_object(value.await?.into_inner())?)) })
    }
}

/// `web::PayloadConfig` for raw bodies (their 413 is reshaped by the `observe` middleware).
pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(MAX_BODY_BYTES)
}

/// `web::QueryConfig`: a bad query string is 400 naming the parameter.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let api = match &err {
            QueryPayloadError::Deserialize(e) => from_serde(&e.to_string()),
            other => ApiError::bad_request(format!("malformed query string: {other}")),
        };
        api.into()
    })
}

/// `web::PathConfig`: a path segment of the wrong shape is simply not found.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|_err: PathError, _req| ApiError::not_found("resource").into())
}

/// A body that may be absent: empty (with any or no content type) gives `T::default()`;
/// otherwise it must be JSON of `T`.
pub fn optional_json<T: DeserializeOwned + Default>(
    req: &HttpRequest,
    body: &web::Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    required_json(req, body)
}

/// A body read as raw bytes (to fingerprint it) that must be a JSON object of `T`.
pub fn required_json<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON));
    if !is_json {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be application/json",
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| from_serde(&e.to_string()))?;
    from_object(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Login {
        #[allow(dead_code)]
        email: String,
    }

    #[test]
    fn only_objects_are_bodies() {
        assert!(from_object::<Login>(serde_json::json!({"email": "a@b.co"})).is_ok());
        let err = from_object::<Login>(serde_json::json!(["a@b.co"])).unwrap_err();
        assert_eq!(err.code, "invalid_request");
        let err =
            from_object::<Login>(serde_json::json!({"email": "a@b.co", "roles": []})).unwrap_err();
        assert_eq!(err.details["fields"]["roles"], "unknown field");
    }

    #[test]
    fn serde_messages_name_the_field() {
        assert_eq!(
            field_of(
                "unknown field `roles`, expected one of `email`, `password`, `name` at line 1 column 8"
            ),
            Some(("roles".into(), "unknown field".into()))
        );
        assert_eq!(
            field_of("missing field `email` at line 1 column 2"),
            Some(("email".into(), "is required".into()))
        );
        assert_eq!(field_of("expected value at line 1 column 1"), None);
    }
}
