//! The one route table of the mall.

use actix_web::web;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::handlers::{admin, identity, ops};
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
                .route("/admin/roles", web::get().to(admin::list_roles))
                .service(
                    web::resource("/admin/roles/{name}")
                        .route(web::put().to(admin::put_role))
                        .route(web::delete().to(admin::delete_role)),
                ),
        );
}
