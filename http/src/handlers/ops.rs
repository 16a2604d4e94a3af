//! `/healthz`, `/readyz` and `/metrics` (the OpenAPI document is served by `crate::openapi`).

use actix_web::{HttpResponse, web};
use mall_actors::cluster::RegistryStatus;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Liveness: 200 while the process serves.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Readiness of each dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `up` or `down`.
    pub database: &'static str,
    /// `up`, `down` or `disabled`.
    pub redis: &'static str,
    /// `up`, `down` or `disabled`.
    pub registry: &'static str,
}

/// Readiness: 503 when the database is down.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(st: web::Data<AppState>) -> HttpResponse {
    let database_up = tokio::time::timeout(std::time::Duration::from_secs(2), st.db.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let body = Readiness {
        database: if database_up { "up" } else { "down" },
        redis: match &st.redis {
            None => "disabled",
            Some(r) if r.ping().await => "up",
            Some(_) => "down",
        },
        registry: match st.cluster.registry_status() {
            RegistryStatus::Disabled => "disabled",
            RegistryStatus::Up => "up",
            RegistryStatus::Down => "down",
        },
    };
    if database_up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body)
    }
}

/// Prometheus metrics in the text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(st: web::Data<AppState>) -> HttpResponse {
    crate::telemetry::probes::refresh(&st).await;
    let (in_use, max) = st.db.pool_status();
    st.metrics
        .pool_in_use
        .set(i64::try_from(in_use).unwrap_or(i64::MAX));
    st.metrics
        .pool_max
        .set(i64::try_from(max).unwrap_or(i64::MAX));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(st.metrics.render())
}
