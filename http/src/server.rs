//! Builds the actix-web application and runs the server until it is told to stop.

use std::time::Duration;

use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};

use crate::config::Config;
use crate::error::ApiError;
use crate::extract::{path_config, payload_config};
use crate::middleware::{access::blacklist, observe::observe};
use crate::routes;
use crate::state::{
    AppState, DEADLINE_LOOKAHEAD, DEADLINE_SWEEP_EVERY, POLICY_POLL_EVERY, StartupError,
};
use crate::telemetry::traceparent::traceparent;

async fn no_such_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("route"))
}

/// Registers the application (routes, extractor settings, middleware) on an `App`; shared by
/// the server and in-process tests.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(payload_config())
        .app_data(path_config())
        .configure(routes::configure)
        .default_service(web::to(no_such_route))
        .wrap(from_fn(crate::middleware::owner::internal))
        .wrap(from_fn(blacklist))
        .wrap(Compress::default())
        .wrap(from_fn(observe))
        .wrap(from_fn(traceparent))
}

/// Runs `mall serve`: builds the state, makes sure the bootstrap admin exists, starts the
/// policy watcher, binds, logs `listening` with the bound `addr`, and serves until SIGINT/SIGTERM.
pub async fn serve(config: Config) -> Result<(), StartupError> {
    let server_cfg = config.server.clone();
    // Bound first: the bound address is the node's default advertise URL in the cluster.
    let listener = std::net::TcpListener::bind(&server_cfg.bind)
        .map_err(|e| StartupError::Other(format!("server.bind {}: {e}", server_cfg.bind)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartupError::Other(e.to_string()))?;
    let state = web::Data::new(AppState::build(config, addr).await?);
    let admin = &state.config.bootstrap;
    if !admin.admin_email.is_empty() && !admin.admin_password.is_empty() {
        state
            .accounts
            .ensure_admin(
                &admin.admin_email,
                &admin.admin_password,
                &admin.admin_name,
                "bootstrap",
            )
            .await
            .map_err(|e| StartupError::Other(format!("bootstrap admin: {e}")))?;
    }
    crate::demo::ensure(&state.config, &state.accounts, &state.catalog)
        .await
        .map_err(|e| StartupError::Other(format!("demo catalog: {e}")))?;
    state.policy.spawn_watcher(POLICY_POLL_EVERY);
    // Timers are data: wake whatever is due now (deadlines that passed while we were down)
    // and every quarter second after.
    state
        .services
        .spawn_sweeper(DEADLINE_SWEEP_EVERY, DEADLINE_LOOKAHEAD);

    state.notifier.spawn_listener();
    crate::housekeeping::spawn_purger(state.clone());
    let housekeeping = state.clone();
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            housekeeping.limits.housekeeping();
        }
    });

    let app_state = state.clone();
    let mut server = HttpServer::new(move || app(app_state.clone()))
        // SIGTERM and SIGINT are ours (see `stop_on_signal`): a cluster node hands its shards
        // over before it stops serving.
        .disable_signals()
        .shutdown_timeout(server_cfg.shutdown_timeout_secs)
        .max_connections(server_cfg.max_connections)
        .client_request_timeout(Duration::from_secs(server_cfg.request_timeout_secs));
    if server_cfg.workers > 0 {
        server = server.workers(server_cfg.workers);
    }
    let server = server
        .listen(listener)
        .map_err(|e| StartupError::Other(format!("server.bind {}: {e}", server_cfg.bind)))?
        .run();
    stop_on_signal(state.clone(), server.handle());
    tracing::info!(addr = %addr, database = %state.db.backend_name(), "listening");
    let stopped = server.await;
    // Usually done on the signal already; this covers every other way out.
    state.cluster.leave().await;
    stopped.map_err(|e| StartupError::Other(e.to_string()))?;
    tracing::info!("stopped");
    Ok(())
}

/// On SIGTERM or SIGINT: a cluster node first hands its shards over (no new request runs here
/// for them, those running finish, the lease is revoked so the new owners claim them at once;
/// requests arriving meanwhile wait for the new owners and are forwarded there), then the
/// server stops gracefully: it stops accepting and finishes what it is serving.
fn stop_on_signal(state: web::Data<AppState>, server: actix_web::dev::ServerHandle) {
    actix_web::rt::spawn(async move {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        tracing::info!("stopping: handing over and draining");
        state.cluster.leave().await;
        server.stop(true).await;
    });
}
