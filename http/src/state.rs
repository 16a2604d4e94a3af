//! `AppState`: everything a handler needs, built once at start-up and shared by all workers.

use std::sync::Arc;
use std::time::Duration;

use mall_actors::cart::CartHandle;
use mall_actors::checkout::Checkout;
use mall_actors::order::OrderHandle;
use mall_actors::payment::PaymentHandle;
use mall_actors::services::{Services, ServicesConfig};
use mall_db::{Db, IdGenerator};

use crate::auth::cache::AuthCache;
use crate::auth::jwt::{Algorithm, JwtSettings, KeyMaterial, TokenService};
use crate::auth::policy::Whitelist;
use crate::auth::{Authenticator, PolicyStore};
use crate::config::{Config, parse_net};
use crate::metrics::Metrics;

/// How long a node trusts its cached view of an account (the one-second promise has room).
pub const AUTH_CACHE_TTL: Duration = Duration::from_millis(400);
/// How often the deadline sweeper looks for due orders and payment sessions.
pub const DEADLINE_SWEEP_EVERY: Duration = Duration::from_millis(250);
/// How far ahead the sweeper wakes actors, so their timers fire on the deadline itself.
pub const DEADLINE_LOOKAHEAD: Duration = Duration::from_secs(2);
/// How often a node polls the policy version.
pub const POLICY_POLL_EVERY: Duration = Duration::from_millis(250);

/// Shared state of the HTTP layer.
pub struct AppState {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// The database.
    pub db: Db,
    /// Id generator for new rows.
    pub ids: Arc<IdGenerator>,
    /// Issues and verifies access tokens.
    pub tokens: Arc<TokenService>,
    /// Checks bearer tokens against logins and accounts.
    pub auth: Authenticator,
    /// The live RBAC policy.
    pub policy: Arc<PolicyStore>,
    /// Routes that need no token.
    pub whitelist: Whitelist,
    /// Client networks refused outright.
    pub ip_blacklist: Vec<ipnet::IpNet>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The running actor services (for the sweeper); the four handles below are theirs.
    pub services: Services,
    /// The carts (one entity per user).
    pub carts: CartHandle,
    /// The orders (one entity per order, owning its payment sessions).
    pub orders: OrderHandle,
    /// The payment sessions (through their orders).
    pub payments: PaymentHandle,
    /// Cart -> order -> payment.
    pub checkout: Checkout,
    /// Rate limits.
    pub limits: crate::limits::Limits,
    /// Redis, when configured.
    pub redis: Option<Arc<crate::redis::Redis>>,
    /// This node's rendered products, forgotten on every change.
    pub products: Arc<crate::product_cache::ProductCache>,
    /// Tells this node's caches and the other nodes what changed.
    pub notifier: Arc<crate::notices::Notifier>,
    /// Accounts: registration, profiles, closing, admin operations on users.
    pub accounts: crate::services::accounts::Accounts,
    /// Logins and their refresh tokens.
    pub sessions: crate::services::sessions::Sessions,
    /// Roles and permissions.
    pub roles: crate::services::roles::Roles,
    /// The product catalog.
    pub catalog: crate::services::catalog::Catalog,
    /// This node's cluster membership (a single node without etcd endpoints).
    pub cluster: mall_actors::cluster::ClusterHandle,
    /// Sends requests for entities owned by other nodes to their owners.
    pub forwarder: crate::forward::Forwarder,
}

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A configuration value is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] mall_db::DbError),
    /// Anything else (keys, metrics).
    #[error("{0}")]
    Other(String),
}

/// The token service the configuration describes (reads key files for EdDSA/ES256).
pub fn token_service(config: &Config) -> Result<TokenService, StartupError> {
    let auth = &config.auth;
    let algorithm = Algorithm::parse(&auth.jwt_algorithm)
        .ok_or_else(|| StartupError::Other("auth.jwt_algorithm: unknown algorithm".into()))?;
    let key = match algorithm {
        Algorithm::Hs256 => KeyMaterial::Secret(auth.jwt_secret.clone()),
        _ => {
            let read = |key: &str, path: &str| {
                std::fs::read(path)
                    .map_err(|e| StartupError::Other(format!("{key}: cannot read {path:?}: {e}")))
            };
            KeyMaterial::KeyPair {
                private_pem: read("auth.jwt_private_key_path", &auth.jwt_private_key_path)?,
                public_pem: read("auth.jwt_public_key_path", &auth.jwt_public_key_path)?,
            }
        }
    };
    TokenService::new(JwtSettings {
        algorithm,
        key,
        issuer: auth.issuer.clone(),
        audience: auth.audience.clone(),
        access_ttl_secs: auth.access_ttl_secs,
        leeway_secs: auth.clock_leeway_secs,
    })
    .map_err(|e| StartupError::Other(format!("auth: {e}")))
}

impl AppState {
    /// The deadline of a request starting now: its every hop (actor, placement lane) gives up
    /// by then, so nothing it started takes effect after it was answered 503.
    /// A request forwarded from another node keeps the deadline its caller set.
    pub fn deadline(&self) -> mall_actors::runtime::Deadline {
        let timeout = Duration::from_millis(self.config.actors.call_timeout_ms);
        crate::forward::deadline_or(mall_actors::runtime::Deadline::after(timeout))
    }

    /// Builds the state: opens the pools, loads the policy, joins the cluster (`bound` is the
    /// listening address, the default advertise URL), starts the actor registries.
    /// Must run inside an actix `System`.
    pub async fn build(
        config: Config,
        bound: std::net::SocketAddr,
    ) -> Result<AppState, StartupError> {
        let opts = mall_db::PoolOptions {
            max_connections: config.database.max_connections,
            acquire_timeout: Duration::from_millis(config.database.acquire_timeout_ms),
            connect_timeout: Duration::from_millis(config.database.connect_timeout_ms),
            statement_timeout: Duration::from_millis(config.database.statement_timeout_ms),
        };
        let db = Db::connect(&config.database.url, &opts)?;
        let tokens = Arc::new(token_service(&config)?);
        let policy = PolicyStore::load(db.clone()).await?;
        let whitelist = Whitelist::parse(&config.auth.whitelist)
            .map_err(|e| StartupError::Other(format!("auth.whitelist: {e}")))?;
        let ip_blacklist = config
            .auth
            .ip_blacklist
            .iter()
            .filter_map(|e| parse_net(e))
            .collect();
        let metrics = Metrics::new().map_err(|e| StartupError::Other(format!("metrics: {e}")))?;
        let redis = if config.redis.url.is_empty() {
            None
        } else {
            let r = crate::redis::Redis::connect(&config.redis.url, &config.redis.key_prefix)
                .map_err(|e| StartupError::Other(format!("redis.url: {e}")))?;
            Some(Arc::new(r))
        };
        let (cache_bytes, cache_ttl) = (
            config.catalog.cache_max_mb.saturating_mul(1 << 20),
            Duration::from_millis(config.catalog.cache_ttl_ms),
        );
        let products = Arc::new(crate::product_cache::product_cache(cache_bytes, cache_ttl));
        let prices = Arc::new(mall_actors::cart::prices::prices(cache_bytes, cache_ttl));
        let auth_cache = Arc::new(AuthCache::new(AUTH_CACHE_TTL));
        let bus = match (&redis, db.backend()) {
            (Some(redis), _) => crate::notices::Bus::Redis {
                redis: Arc::clone(redis),
                url: config.redis.url.clone(),
            },
            (None, mall_db::Backend::Postgres) => crate::notices::Bus::Postgres {
                db: db.clone(),
                url: config.database.url.clone(),
            },
            (None, mall_db::Backend::Sqlite) => crate::notices::Bus::Local,
        };
        let notifier = Arc::new(crate::notices::Notifier::new(
            Arc::clone(&auth_cache),
            Arc::clone(&policy),
            Arc::clone(&products),
            Arc::clone(&prices),
            bus,
        ));
        let on_stock_change: mall_actors::deps::StockHook = {
            let notifier = Arc::clone(&notifier);
            Arc::new(move |ids: Vec<i64>| notifier.stock_changed(ids))
        };
        let ids = Arc::new(IdGenerator::random_node());
        // Before anything mints: in a cluster this claims the node number ids carry.
        let cluster = crate::cluster::start(
            &config,
            bound,
            Arc::clone(&ids),
            db.clone(),
            &metrics.registry,
        )
        .await
        .map_err(|e| StartupError::Other(format!("cluster.etcd_endpoints: {e}")))?;
        let forwarder = crate::forward::Forwarder::new(&config.cluster.secret, cluster.node_id())
            .map_err(StartupError::Other)?;
        let services = Services::start(
            db.clone(),
            Arc::clone(&ids),
            ServicesConfig {
                runtime: config.actors.runtime(),
                placement: config.placement(),
                order_timeout: Duration::from_secs(config.order.payment_timeout_secs),
                session_timeout: Duration::from_secs(config.payment.session_timeout_secs),
                prices,
            },
            &metrics.registry,
            Some(on_stock_change),
            Arc::clone(cluster.ownership()),
        )
        .map_err(|e| StartupError::Other(format!("metrics: {e}")))?;
        let limits =
            crate::limits::Limits::new(config.rate_limit.clone(), redis.clone(), &metrics.registry)
                .map_err(|e| StartupError::Other(format!("metrics: {e}")))?;
        let crate::services::Services {
            accounts,
            sessions,
            roles,
            catalog,
        } = crate::services::Services::new(
            &db,
            &ids,
            Duration::from_secs(config.auth.refresh_ttl_secs),
            Arc::new(services.orders.clone()),
            notifier.clone(),
            crate::auth::store::check_permission,
        );
        Ok(AppState {
            auth: Authenticator::new(Arc::clone(&tokens), db.clone(), auth_cache),
            accounts,
            sessions,
            roles,
            catalog,
            notifier,
            config: Arc::new(config),
            db,
            ids,
            tokens,
            policy,
            whitelist,
            ip_blacklist,
            metrics,
            carts: services.carts.clone(),
            orders: services.orders.clone(),
            payments: services.payments.clone(),
            checkout: services.checkout.clone(),
            services,
            limits,
            redis,
            products,
            cluster,
            forwarder,
        })
    }
}
