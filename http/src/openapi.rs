//! The OpenAPI 3 document of the API (`/api/v1/openapi.json`) and its browsable page (`/docs`),
//! served from the binary with no internet.
//!
//! Each handler declares its own successes and the refusals particular to it; [`Contract`] adds
//! what every route of a kind can answer (a token's 401 and 403, a body's 400, 413 and 415, a
//! path's 404, an `Idempotency-Key`'s 409 and 422, the API's 429 and 503), and the rule that no
//! request string holds a control character, so the document says everything the server does.

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, header::HeaderBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::handlers;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// The document as served, rendered once.
pub fn document_json() -> &'static str {
    static JSON: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|e| panic!("the OpenAPI document does not serialise: {e}"))
    });
    &JSON
}

/// Serves the document (rendered once; `/docs` shows it).
pub async fn serve() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(document_json())
}

/// A string without control characters (API.md, Conventions).
const NO_CONTROL: &str = r"^[^\x00-\x1F\x7F]*$";
/// The same, tabs and line breaks allowed (`description`, `note`).
const NO_CONTROL_MULTILINE: &str = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F]*$";

/// Completes every operation with the statuses its kind of route answers, and every request
/// schema with the text rule and `additionalProperties: false` (see the module doc).
struct Contract;

impl Modify for Contract {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in operations(item) {
                complete_responses(path, op);
                for param in op.parameters.iter_mut().flatten() {
                    if let RefOr::T(p) = param
                        && let Some(RefOr::T(schema)) = &mut p.schema
                        && matches!(p.parameter_in, ParameterIn::Query)
                    {
                        forbid_control(schema, false);
                    }
                }
            }
        }
        if let Some(components) = &mut openapi.components {
            for (name, schema) in components.schemas.iter_mut() {
                if is_request_schema(name)
                    && let RefOr::T(schema) = schema
                {
                    close_object(schema);
                    forbid_control(schema, false);
                }
            }
        }
    }
}

/// The schemas clients send (and only those: answers are the server's own text).
fn is_request_schema(name: &str) -> bool {
    name.ends_with("Request") || matches!(name, "Address" | "PermissionDto" | "NoBody")
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Adds the statuses `op` answers by the kind of route it is, unless the handler declared them.
fn complete_responses(path: &str, op: &mut Operation) {
    let params = op.parameters.iter().flatten().filter_map(|p| match p {
        RefOr::T(p) => Some(p),
        RefOr::Ref(_) => None,
    });
    let (mut path_params, mut query, mut idempotent) = (false, false, false);
    for p in params {
        match p.parameter_in {
            ParameterIn::Path => path_params = true,
            ParameterIn::Query => query = true,
            ParameterIn::Header if p.name == crate::idempotency::HEADER => idempotent = true,
            _ => {}
        }
    }
    let api = path.starts_with("/api/");
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let body = op.request_body.is_some();
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(status, description));
    };
    if body || path_params || query || idempotent {
        add(
            "400",
            "invalid_request: a field, parameter or path of the wrong shape",
        );
    }
    if secured {
        add("401", "unauthenticated: no valid access token");
    }
    add(
        "403",
        "forbidden: the client's address is refused, or the caller's roles do not allow this; user_banned",
    );
    if path_params {
        add("404", "not_found: no such resource (or not the caller's)");
    }
    if idempotent {
        add(
            "409",
            "idempotency_key_in_use: the first request with this key is still running",
        );
        add(
            "422",
            "idempotency_key_reused: this key was used for another request",
        );
    }
    if body {
        add("413", "payload_too_large: the body is over 64 KiB");
        add(
            "415",
            "unsupported_media_type: the body is not application/json",
        );
    }
    if api {
        add(
            "429",
            "rate_limited: too many requests; retry after `Retry-After` seconds",
        );
        add(
            "503",
            "unavailable: a required dependency is down; retry after `Retry-After` seconds",
        );
    }
}

/// An error answer: the error body, and `Retry-After` on 429 and 503.
fn error_response(status: &str, description: &str) -> RefOr<utoipa::openapi::Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    if matches!(status, "429" | "503") {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(
                    utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer),
                ))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    RefOr::T(response.build())
}

/// `additionalProperties: false`: the server refuses unknown fields.
fn close_object(schema: &mut Schema) {
    if let Schema::Object(object) = schema
        && !object.properties.is_empty()
    {
        object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
    }
}

/// Gives every string in `schema` that has no pattern of its own the no-control-characters one.
fn forbid_control(schema: &mut Schema, multiline: bool) {
    match schema {
        Schema::Object(object) => {
            let is_string = match &object.schema_type {
                SchemaType::Type(t) => *t == Type::String,
                SchemaType::Array(types) => types.contains(&Type::String),
                SchemaType::AnyValue => false,
            };
            if is_string && object.pattern.is_none() {
                let pattern = if multiline {
                    NO_CONTROL_MULTILINE
                } else {
                    NO_CONTROL
                };
                object.pattern = Some(pattern.to_owned());
            }
            for (name, property) in object.properties.iter_mut() {
                if let RefOr::T(property) = property {
                    forbid_control(property, matches!(name.as_str(), "description" | "note"));
                }
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items
                && let RefOr::T(items) = items.as_mut()
            {
                forbid_control(items, multiline);
            }
        }
        Schema::OneOf(one) => one.items.iter_mut().for_each(|item| {
            if let RefOr::T(item) = item {
                forbid_control(item, multiline);
            }
        }),
        Schema::AllOf(all) => all.items.iter_mut().for_each(|item| {
            if let RefOr::T(item) = item {
                forbid_control(item, multiline);
            }
        }),
        Schema::AnyOf(any) => any.items.iter_mut().for_each(|item| {
            if let RefOr::T(item) = item {
                forbid_control(item, multiline);
            }
        }),
        _ => {}
    }
}

/// The API document.
#[derive(OpenApi)]
#[openapi(
    info(title = "mall", description = "The mall's e-commerce API: identity, catalog, carts, orders, checkout, payments. Any unknown path answers 404 `not_found`, and a known path asked with a method it does not have 405 `method_not_allowed` with `Allow`, for anyone, before authentication. No string a client sends may hold a control character (U+0000..U+001F, U+007F; tabs and line breaks are allowed in `description` and `note`), and a JSON object may not repeat a key."),
    paths(
        handlers::identity::register,
        handlers::identity::login,
        handlers::identity::refresh,
        handlers::identity::logout,
        handlers::identity::verify,
        handlers::identity::me,
        handlers::identity::update_me,
        handlers::identity::close_me,
        handlers::admin::list_users,
        handlers::admin::get_user,
        handlers::admin::set_roles,
        handlers::admin::ban,
        handlers::admin::unban,
        handlers::admin::close_user,
        handlers::admin::list_roles,
        handlers::admin::put_role,
        handlers::admin::delete_role,
        handlers::cluster::cluster,
        handlers::catalog::list_products,
        handlers::catalog::create_product,
        handlers::catalog::batch_products,
        handlers::catalog::get_product,
        handlers::catalog::update_product,
        handlers::catalog::delete_product,
        handlers::cart::create,
        handlers::cart::get,
        handlers::cart::add_item,
        handlers::cart::set_item,
        handlers::cart::remove_item,
        handlers::cart::clear,
        handlers::orders::create,
        handlers::orders::list,
        handlers::orders::get,
        handlers::orders::update,
        handlers::orders::cancel,
        handlers::orders::payments,
        handlers::checkout::checkout,
        handlers::payments::open,
        handlers::payments::get,
        handlers::payments::confirm,
        handlers::payments::cancel,
        handlers::ops::healthz,
        handlers::ops::readyz,
        handlers::ops::metrics,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth, &Contract),
    tags(
        (name = "identity", description = "accounts, login, tokens"),
        (name = "admin", description = "users, roles and permissions (admin)"),
        (name = "catalog", description = "products: search, batch lookup, merchants' changes"),
        (name = "cart", description = "the caller's cart (one actor per user)"),
        (name = "orders", description = "orders and checkout (one actor per order)"),
        (name = "payments", description = "payment sessions against the simulated gateway"),
        (name = "operations", description = "health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).expect("the document serialises")
    }

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                    out.push((method.clone(), path.clone(), op.clone()));
                }
            }
        }
        out
    }

    fn statuses(op: &Value) -> Vec<&str> {
        op["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn every_operation_names_the_statuses_its_kind_of_route_answers() {
        let doc = document();
        let ops = operations(&doc);
        assert!(ops.len() >= 40, "only {} operations", ops.len());
        for (method, path, op) in &ops {
            let what = format!("{} {path}", method.to_uppercase());
            let has = statuses(op);
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let located = |place: &str| params.iter().any(|p| p["in"] == place);
            if op.get("security").is_some() {
                for s in ["401", "403"] {
                    assert!(has.contains(&s), "{what}: no {s}");
                }
            }
            if op.get("requestBody").is_some() {
                for s in ["400", "413", "415"] {
                    assert!(has.contains(&s), "{what}: no {s}");
                }
            }
            if located("path") {
                assert!(has.contains(&"404"), "{what}: no 404");
            }
            if params.iter().any(|p| p["name"] == "Idempotency-Key") {
                for s in ["409", "422"] {
                    assert!(has.contains(&s), "{what}: no {s}");
                }
            }
            if path.starts_with("/api/") {
                for s in ["429", "503"] {
                    assert!(has.contains(&s), "{what}: no {s}");
                    let retry = &op["responses"][s]["headers"]["Retry-After"];
                    assert!(retry.is_object(), "{what}: {s} without Retry-After");
                }
            }
            for (status, response) in op["responses"].as_object().expect("responses") {
                // (`/readyz` answers 503 with its own report, not an error.)
                if status.starts_with('4') || (status == "503" && path.starts_with("/api/")) {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/ErrorBody",
                        "{what}: {status} without the error body"
                    );
                }
            }
        }
    }

    #[test]
    fn request_schemas_are_as_strict_as_the_server() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for (name, schema) in schemas {
            if is_request_schema(name) && schema.get("properties").is_some() {
                assert_eq!(
                    schema["additionalProperties"],
                    Value::Bool(false),
                    "{name} accepts unknown fields"
                );
            }
        }
        let product = &schemas["CreateProductRequest"]["properties"];
        assert_eq!(product["price_cents"]["maximum"], 100_000_000_000_i64);
        assert_eq!(product["price_cents"]["minimum"], 0);
        assert_eq!(product["stock"]["maximum"], 1_000_000_000);
        assert_eq!(product["name"]["maxLength"], 200);
        assert_eq!(product["name"]["pattern"], NO_CONTROL);
        assert_eq!(product["description"]["pattern"], NO_CONTROL_MULTILINE);
        let patch = &schemas["UpdateProductRequest"]["properties"];
        assert_eq!(patch["price_cents"]["maximum"], 100_000_000_000_i64);
        let line = &schemas["AddItemRequest"]["properties"]["quantity"];
        assert_eq!(
            (&line["minimum"], &line["maximum"]),
            (&Value::from(1), &Value::from(999))
        );
        let card = &schemas["CardRequest"]["properties"];
        assert_eq!(card["number"]["pattern"], "^[0-9]{13,19}$");
        let address = &schemas["Address"]["properties"]["line1"];
        assert_eq!(address["pattern"], NO_CONTROL);
        assert_eq!(address["maxLength"], 200);
    }

    #[test]
    fn the_control_character_patterns_mean_what_the_server_checks() {
        let plain = regex::Regex::new(NO_CONTROL).expect("regex");
        let multiline = regex::Regex::new(NO_CONTROL_MULTILINE).expect("regex");
        for text in ["", "plain", "Zoë 商品", "a\u{a0}b"] {
            assert!(plain.is_match(text) && multiline.is_match(text), "{text:?}");
            assert!(!crate::extract::strict::has_control(text));
        }
        for text in ["a\tb", "a\nb", "a\r\nb"] {
            assert!(!plain.is_match(text), "{text:?}");
            assert!(multiline.is_match(text), "{text:?}");
        }
        for text in ["a\u{0}b", "\u{1b}", "x\u{7f}"] {
            assert!(
                !plain.is_match(text) && !multiline.is_match(text),
                "{text:?}"
            );
        }
    }
}
