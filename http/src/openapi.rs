//! The OpenAPI 3 document of the API (`/api/v1/openapi.json`) and its browsable page (`/docs`),
//! served from the binary with no internet.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::handlers;

/// The error body every failure has.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// `{code, message, details}`
    error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `invalid_request`.
    code: String,
    /// Human-readable message.
    message: String,
    /// Structured details (for `invalid_request`: `{"fields": {name: reason}}`).
    details: serde_json::Value,
}

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

/// The API document.
#[derive(OpenApi)]
#[openapi(
    info(title = "mall", description = "The mall's e-commerce API: identity, catalog, carts, orders, checkout, payments."),
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
    modifiers(&BearerAuth),
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
