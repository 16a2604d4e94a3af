//! mall-http: the mall's HTTP layer (actix-web) — routes, authentication and authorization,
//! errors, metrics, OpenAPI — and the pieces of the `mall` binary.

pub mod auth;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod dto;
pub mod error;
pub mod extract;
pub mod forward;
pub mod handlers;
pub mod housekeeping;
pub mod idempotency;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod notices;
pub mod openapi;
pub mod product_cache;
pub mod redis;
pub mod routes;
pub mod server;
pub mod services;
pub mod state;
pub mod storefront;
pub mod telemetry;
