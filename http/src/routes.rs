//! The one route table of the mall.

use actix_web::web;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::handlers::{admin, cart, catalog, checkout, identity, ops, orders, payments};
use crate::openapi::ApiDoc;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(ops::healthz))
        .route("/readyz", web::get().to(ops::readyz))
        .route("/metrics", web::get().to(ops::metrics))
        .route(
            "/docs",
            web::get().to(|| async {
                actix_web::HttpResponse::PermanentRedirect()
                    .insert_header(("Location", "/docs/"))
                    .finish()
            }),
        )
        .configure(crate::storefront::configure)
        .service(SwaggerUi::new("/docs/{_:.*}").url("/api/v1/openapi.json", ApiDoc::openapi()))
        .service(
            web::scope("/api/v1")
                .route("/users", web::post().to(identity::register))
                .service(
                    web::resource("/users/me")
                        .route(web::get().to(identity::me))
                        .route(web::patch().to(identity::update_me))
                        .route(web::delete().to(identity::close_me)),
                )
                .route("/auth/login", web::post().to(identity::login))
                .route("/auth/refresh", web::post().to(identity::refresh))
                .route("/auth/logout", web::post().to(identity::logout))
                .route("/auth/verify", web::get().to(identity::verify))
                .service(
                    web::resource("/products")
                        .route(web::get().to(catalog::list_products))
                        .route(web::post().to(catalog::create_product)),
                )
                // Before `/products/{id}`, which would otherwise take `batch` for an id.
                .route("/products/batch", web::post().to(catalog::batch_products))
                .service(
                    web::resource("/products/{id}")
                        .route(web::get().to(catalog::get_product))
                        .route(web::patch().to(catalog::update_product))
                        .route(web::delete().to(catalog::delete_product)),
                )
                .route("/admin/users", web::get().to(admin::list_users))
                .service(
                    web::resource("/admin/users/{id}")
                        .route(web::get().to(admin::get_user))
                        .route(web::delete().to(admin::close_user)),
                )
                .route("/admin/users/{id}/roles", web::put().to(admin::set_roles))
                .service(
                    web::resource("/admin/users/{id}/ban")
                        .route(web::post().to(admin::ban))
                        .route(web::delete().to(admin::unban)),
                )
                .service(
                    web::resource("/cart")
                        .route(web::post().to(cart::create))
                        .route(web::get().to(cart::get))
                        .route(web::delete().to(cart::clear)),
                )
                .route("/cart/items", web::post().to(cart::add_item))
                .service(
                    web::resource("/cart/items/{product_id}")
                        .route(web::put().to(cart::set_item))
                        .route(web::delete().to(cart::remove_item)),
                )
                .service(
                    web::resource("/orders")
                        .route(web::post().to(orders::create))
                        .route(web::get().to(orders::list)),
                )
                .service(
                    web::resource("/orders/{id}")
                        .route(web::get().to(orders::get))
                        .route(web::patch().to(orders::update)),
                )
                .route("/orders/{id}/cancel", web::post().to(orders::cancel))
                .route("/orders/{id}/payments", web::get().to(orders::payments))
                .route("/checkout", web::post().to(checkout::checkout))
                .route("/payments", web::post().to(payments::open))
                .route("/payments/{id}", web::get().to(payments::get))
                .route("/payments/{id}/confirm", web::post().to(payments::confirm))
                .route("/payments/{id}/cancel", web::post().to(payments::cancel))
                .route("/admin/roles", web::get().to(admin::list_roles))
                .service(
                    web::resource("/admin/roles/{name}")
                        .route(web::put().to(admin::put_role))
                        .route(web::delete().to(admin::delete_role)),
                ),
        );
}
