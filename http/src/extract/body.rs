//! JSON bodies and query strings: 415 for another media type, 413 past 64 KiB, 400 naming the
//! field for malformed JSON, a wrong type, an unknown or repeated field, or text with control
//! characters, and 400 for a body that is not a JSON object (serde would otherwise accept
//! `["a@b.c", "pw", "n"]` for a struct).

use actix_web::dev::Payload;
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::strict;
use crate::error::{ApiError, ErrorCode};

/// The largest body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Turns a serde error message into `(field, reason)` when it names a field.
fn field_of(message: &str) -> Option<(String, String)> {
    for (marker, reason) in [
        ("unknown field `", "unknown field"),
        ("missing field `", "is required"),
        ("duplicate field `", "appears more than once"),
    ] {
        if let Some(start) = message.find(marker) {
            let rest = &message[start + marker.len()..];
            let name = rest.split('`').next().unwrap_or_default();
            return Some((name.to_owned(), reason.to_owned()));
        }
    }
    None
}

/// Where a serde error came from, for its message.
#[derive(Debug, Clone, Copy)]
enum Source {
    Body,
    Query,
}

fn from_serde(message: &str, source: Source) -> ApiError {
    match field_of(message) {
        Some((field, reason)) => ApiError::invalid_field(&field, reason),
        // serde's own words ("invalid type: string, expected u32 at line 1 column 9") name no
        // SQL or secret and help the client; keep them.
        None => ApiError::bad_request(match source {
            Source::Body => format!("malformed JSON body: {message}"),
            Source::Query => format!("malformed query string: {message}"),
        }),
    }
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedMediaType,
        "the body must be application/json",
    )
}

/// A JSON object body deserialised into `T`: read whole (at most [`MAX_BODY_BYTES`]), then
/// checked as [`required_json`] does.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// `T` from a parsed body, which must be a JSON object without control characters in its text.
fn from_object<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    strict::check_text(&value)?;
    serde_json::from_value(value).map_err(|e| from_serde(&e.to_string(), Source::Body))
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        // The payload limit answers 413 (reshaped into the contract by the `observe` layer).
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move { Ok(Json(required_json(&req, &body.await?)?)) })
    }
}

/// A query string deserialised into `T`: 400 naming the parameter for a wrong type, and for a
/// value holding control characters.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    /// The parameters.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Parses a query string into `T` (see [`Query`]).
fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|e| from_serde(&e.to_string(), Source::Query))?;
    for (name, value) in pairs.iter() {
        // A name with control characters is not echoed back as a field name.
        let field = if strict::has_control(name) {
            "query"
        } else if strict::has_control(value) {
            name
        } else {
            continue;
        };
        return Err(ApiError::invalid_field(field, strict::CONTROL_CHARACTERS));
    }
    web::Query::<T>::from_query(query)
        .map(web::Query::into_inner)
        .map_err(|e| match e {
            QueryPayloadError::Deserialize(e) => from_serde(&e.to_string(), Source::Query),
            other => ApiError::bad_request(format!("malformed query string: {other}")),
        })
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(Query))
    }
}

/// `web::PayloadConfig` for raw bodies (their 413 is reshaped by the `observe` middleware).
pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(MAX_BODY_BYTES)
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
        return Err(unsupported_media_type());
    }
    let value = strict::parse(body).map_err(|e| from_serde(&e.to_string(), Source::Body))?;
    from_object(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Login {
        #[expect(dead_code, reason = "only deserialised")]
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
        assert_eq!(
            field_of("duplicate field `name` at line 1 column 20"),
            Some(("name".into(), "appears more than once".into()))
        );
    }

    #[derive(Debug, serde::Deserialize)]
    struct Search {
        q: Option<String>,
        page: Option<i64>,
    }

    #[test]
    fn query_strings_refuse_control_characters_and_say_query() {
        let ok: Search = parse_query("q=caf%C3%A9&page=2").unwrap();
        assert_eq!(ok.q.as_deref(), Some("café"));
        assert_eq!(ok.page, Some(2));
        let err = parse_query::<Search>("q=a%00b").unwrap_err();
        assert_eq!(err.details["fields"]["q"], strict::CONTROL_CHARACTERS);
        let err = parse_query::<Search>("page=x").unwrap_err();
        assert_eq!(err.code, "invalid_request");
        assert!(err.message.contains("query"), "{}", err.message);
        assert!(!err.message.contains("JSON"), "{}", err.message);
    }

    #[test]
    fn bodies_refuse_control_characters_and_repeated_keys() {
        let err = from_object::<Login>(serde_json::json!({"email": "a\u{0}@b.co"})).unwrap_err();
        assert_eq!(err.details["fields"]["email"], strict::CONTROL_CHARACTERS);
        let err = from_serde(
            &strict::parse(br#"{"email": "a", "email": "b"}"#)
                .unwrap_err()
                .to_string(),
            Source::Body,
        );
        assert_eq!(err.details["fields"]["email"], "appears more than once");
    }
}
