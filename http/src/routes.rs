//! The one route table of the mall. Every path is a resource (so another method on it is 405
//! with `Allow`, not 404), and every API and operations route passes [`access`] once the router
//! has matched it, so an unknown path (404) or method (405) is answered before any token is
//! looked at. The shop's pages and assets (`crate::storefront`) need no token at all.

use actix_web::middleware::from_fn;
use actix_web::{Route, web};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::handlers::{admin, cart, catalog, checkout, cluster, identity, ops, orders, payments};
use crate::middleware::access::access;
use crate::middleware::owner::{by_caller, by_path_user};
use crate::middleware::write_gate::write_gate;
use crate::openapi::OPENAPI_PATH;

/// `route` behind authentication, rate limits and authorization; in a cluster, a write is
/// refused while this node's lease is in doubt (it may not mint ids then).
fn gated(route: Route) -> Route {
    route.wrap(from_fn(write_gate)).wrap(from_fn(access))
}

/// A route of the caller's own cart, orders or payments: gated, then run on the node that owns
/// the caller's shard (here, or forwarded there).
fn owned(route: Route) -> Route {
    route.wrap(from_fn(by_caller)).wrap(from_fn(access))
}

/// A route acting on the user its `{id}` names (closing an account cancels that user's
/// orders): run on the node that owns that user's shard.
fn owned_by_path(route: Route) -> Route {
    route.wrap(from_fn(by_path_user)).wrap(from_fn(access))
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(gated(web::get().to(ops::healthz))))
        .service(web::resource("/readyz").route(gated(web::get().to(ops::readyz))))
        .service(web::resource("/metrics").route(gated(web::get().to(ops::metrics))))
        .service(web::resource("/docs").route(gated(web::get().to(|| async {
            actix_web::HttpResponse::PermanentRedirect()
                .insert_header(("Location", "/docs/"))
                .finish()
        }))))
        .configure(crate::storefront::configure)
        // The page fetches the document from its own route below (gated like every API route).
        .service(SwaggerUi::new("/docs/{_:.*}").config(Config::new([OPENAPI_PATH])))
        .service(
            web::scope("/api/v1")
                .service(
                    web::resource("/openapi.json")
                        .route(gated(web::get().to(crate::openapi::serve))),
                )
                .service(web::resource("/users").route(gated(web::post().to(identity::register))))
                .service(
                    web::resource("/users/me")
                        .route(gated(web::get().to(identity::me)))
                        .route(gated(web::patch().to(identity::update_me)))
                        .route(owned(web::delete().to(identity::close_me))),
                )
                .service(web::resource("/auth/login").route(gated(web::post().to(identity::login))))
                .service(
                    web::resource("/auth/refresh").route(gated(web::post().to(identity::refresh))),
                )
                .service(
                    web::resource("/auth/logout").route(gated(web::post().to(identity::logout))),
                )
                .service(
                    web::resource("/auth/verify").route(gated(web::get().to(identity::verify))),
                )
                .service(
                    web::resource("/products")
                        .route(gated(web::get().to(catalog::list_products)))
                        .route(gated(web::post().to(catalog::create_product))),
                )
                // Before `/products/{id}`, which would otherwise take `batch` for an id.
                .service(
                    web::resource("/products/batch")
                        .route(gated(web::post().to(catalog::batch_products))),
                )
                .service(
                    web::resource("/products/{id}")
                        .route(gated(web::get().to(catalog::get_product)))
                        .route(gated(web::patch().to(catalog::update_product)))
                        .route(gated(web::delete().to(catalog::delete_product))),
                )
                .service(
                    web::resource("/admin/users").route(gated(web::get().to(admin::list_users))),
                )
                .service(
                    web::resource("/admin/users/{id}")
                        .route(gated(web::get().to(admin::get_user)))
                        .route(owned_by_path(web::delete().to(admin::close_user))),
                )
                .service(
                    web::resource("/admin/users/{id}/roles")
                        .route(gated(web::put().to(admin::set_roles))),
                )
                .service(
                    web::resource("/admin/users/{id}/ban")
                        .route(gated(web::post().to(admin::ban)))
                        .route(gated(web::delete().to(admin::unban))),
                )
                .service(
                    web::resource("/cart")
                        .route(owned(web::post().to(cart::create)))
                        .route(owned(web::get().to(cart::get)))
                        .route(owned(web::delete().to(cart::clear))),
                )
                .service(web::resource("/cart/items").route(owned(web::post().to(cart::add_item))))
                .service(
                    web::resource("/cart/items/{product_id}")
                        .route(owned(web::put().to(cart::set_item)))
                        .route(owned(web::delete().to(cart::remove_item))),
                )
                .service(
                    web::resource("/orders")
                        .route(owned(web::post().to(orders::create)))
                        .route(gated(web::get().to(orders::list))),
                )
                .service(
                    web::resource("/orders/{id}")
                        .route(owned(web::get().to(orders::get)))
                        .route(owned(web::patch().to(orders::update))),
                )
                .service(
                    web::resource("/orders/{id}/cancel")
                        .route(owned(web::post().to(orders::cancel))),
                )
                .service(
                    web::resource("/orders/{id}/payments")
                        .route(owned(web::get().to(orders::payments))),
                )
                .service(
                    web::resource("/checkout").route(owned(web::post().to(checkout::checkout))),
                )
                .service(web::resource("/payments").route(owned(web::post().to(payments::open))))
                .service(web::resource("/payments/{id}").route(owned(web::get().to(payments::get))))
                .service(
                    web::resource("/payments/{id}/confirm")
                        .route(owned(web::post().to(payments::confirm))),
                )
                .service(
                    web::resource("/payments/{id}/cancel")
                        .route(owned(web::post().to(payments::cancel))),
                )
                .service(
                    web::resource("/admin/roles").route(gated(web::get().to(admin::list_roles))),
                )
                .service(
                    web::resource("/admin/cluster").route(gated(web::get().to(cluster::cluster))),
                )
                .service(
                    web::resource("/admin/roles/{name}")
                        .route(gated(web::put().to(admin::put_role)))
                        .route(gated(web::delete().to(admin::delete_role))),
                ),
        );
}
