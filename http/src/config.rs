//! Configuration: built-in defaults < `config.toml` (or `--config PATH`) < `MALL__SECTION__KEY`
//! environment variables. Unknown keys and bad values stop start-up with a message naming the key.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

/// The JWT secret used when none is configured; refused when `shop.env = "production"`.
pub const DEV_JWT_SECRET: &str = "mall-development-secret-change-me-in-production";

/// The cluster secret used when none is configured; refused in production with endpoints set.
pub const DEV_CLUSTER_SECRET: &str = "mall-development-cluster-secret-change-me";

/// The built-in `database.url`: the embedded SQLite file under `data/`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/mall.db";

/// Every setting of the mall.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[database]`
    pub database: DatabaseConfig,
    /// `[redis]`
    pub redis: RedisConfig,
    /// `[auth]`
    pub auth: AuthConfig,
    /// `[order]`
    pub order: OrderConfig,
    /// `[payment]`
    pub payment: PaymentConfig,
    /// `[rate_limit]`
    pub rate_limit: RateLimitConfig,
    /// `[bootstrap]`
    pub bootstrap: BootstrapConfig,
    /// `[cluster]`
    pub cluster: ClusterConfig,
    /// `[shop]`
    pub shop: ShopConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[actors]`
    pub actors: ActorsConfig,
    /// `[telemetry]`
    pub telemetry: TelemetryConfig,
    /// `[catalog]`
    pub catalog: CatalogConfig,
}

/// `[catalog]`: this node's cache of rendered products.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// MiB for each of the product cache and the carts' price list (0: neither; every read goes
    /// to the database).
    pub cache_max_mb: u64,
    /// Longest an entry lives: how stale another node's copy can be if a change notice is lost.
    pub cache_ttl_ms: u64,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            cache_max_mb: 64,
            cache_ttl_ms: 5_000,
        }
    }
}

/// `[telemetry]`: trace export over OTLP/HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Empty: no export; else the OTLP/HTTP base URL (spans go to `{url}/v1/traces`).
    pub otlp_endpoint: String,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// The share of new traces kept (0.0..=1.0); a caller's sampling decision is followed.
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: String::new(),
            service_name: "mall".into(),
            sample_ratio: 1.0,
        }
    }
}

/// `[server]`: the HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address; port 0 picks a free port (logged as `listening` with `addr`).
    pub bind: String,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_timeout_secs: u64,
    /// Open connections per worker before new ones wait.
    pub max_connections: usize,
    /// How long a client may take to send a request's head before 408.
    pub request_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            workers: 0,
            shutdown_timeout_secs: 30,
            max_connections: 25_000,
            request_timeout_secs: 10,
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (embedded) or `postgres://...`.
    pub url: String,
    /// Apply pending migrations at start-up.
    pub auto_migrate: bool,
    /// Pool size (SQLite: readers; there is always one writer).
    pub max_connections: usize,
    /// How long a request waits for a pooled connection before 503.
    pub acquire_timeout_ms: u64,
    /// How long opening a connection may take.
    pub connect_timeout_ms: u64,
    /// PostgreSQL statement timeout / SQLite busy timeout.
    pub statement_timeout_ms: u64,
    /// How often expired idempotency records and refresh tokens are deleted.
    pub purge_every_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: DEFAULT_DATABASE_URL.into(),
            auto_migrate: true,
            max_connections: 16,
            acquire_timeout_ms: 3_000,
            connect_timeout_ms: 3_000,
            statement_timeout_ms: 10_000,
            purge_every_secs: 600,
        }
    }
}

/// `[redis]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Empty: in-process fallbacks; else `redis://...`.
    pub url: String,
    /// Prefix of every key this deployment writes (lets several share one Redis).
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: String::new(),
            key_prefix: "mall:".into(),
        }
    }
}

/// `[auth]`: tokens, whitelist and IP blacklist.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 secret (at least 16 bytes).
    pub jwt_secret: String,
    /// `HS256`, `EdDSA` or `ES256`.
    pub jwt_algorithm: String,
    /// PEM private key file, for EdDSA/ES256.
    pub jwt_private_key_path: String,
    /// PEM public key file, for EdDSA/ES256.
    pub jwt_public_key_path: String,
    /// The `iss` claim issued and required.
    pub issuer: String,
    /// The `aud` claim issued and required.
    pub audience: String,
    /// Access token lifetime.
    pub access_ttl_secs: u64,
    /// Refresh token lifetime.
    pub refresh_ttl_secs: u64,
    /// Tolerance on `exp`.
    pub clock_leeway_secs: u64,
    /// `"METHOD regex"` entries that need no token.
    #[serde(deserialize_with = "list")]
    pub whitelist: Vec<String>,
    /// Client networks (CIDR) refused with 403.
    #[serde(deserialize_with = "list")]
    pub ip_blacklist: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: DEV_JWT_SECRET.into(),
            jwt_algorithm: "HS256".into(),
            jwt_private_key_path: String::new(),
            jwt_public_key_path: String::new(),
            issuer: "mall".into(),
            audience: "mall-api".into(),
            access_ttl_secs: 900,
            refresh_ttl_secs: 1_209_600,
            clock_leeway_secs: 5,
            whitelist: default_whitelist(),
            ip_blacklist: Vec::new(),
        }
    }
}

/// The routes anyone may call.
pub fn default_whitelist() -> Vec<String> {
    [
        "POST /api/v1/users",
        "POST /api/v1/auth/(login|refresh)",
        "GET /api/v1/products(/[^/]+)?",
        "POST /api/v1/products/batch",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "GET /api/v1/openapi.json",
        "GET /docs(/.*)?",
        "GET /(merchant|admin)?",
        "GET /assets/[^/]+",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// `[order]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderConfig {
    /// Unpaid order deadline.
    pub payment_timeout_secs: u64,
    /// Lanes placing orders side by side, each one batch (one transaction) at a time.
    pub placement_lanes: usize,
    /// Most orders placed in one transaction (1: one transaction per order).
    pub placement_batch_max: usize,
}

impl Default for OrderConfig {
    fn default() -> Self {
        OrderConfig {
            payment_timeout_secs: 900,
            placement_lanes: 4,
            placement_batch_max: 64,
        }
    }
}

/// `[payment]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentConfig {
    /// Payment session deadline.
    pub session_timeout_secs: u64,
}

impl Default for PaymentConfig {
    fn default() -> Self {
        PaymentConfig {
            session_timeout_secs: 300,
        }
    }
}

/// `[rate_limit]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Master switch.
    pub enabled: bool,
    /// Sustained requests per second per client IP.
    pub per_ip_per_sec: u32,
    /// Sustained requests per second per user.
    pub per_user_per_sec: u32,
    /// Burst allowance.
    pub burst: u32,
    /// Failed logins per account per minute.
    pub login_per_account_per_min: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            per_ip_per_sec: 50,
            per_user_per_sec: 20,
            burst: 100,
            login_per_account_per_min: 10,
        }
    }
}

/// `[bootstrap]`: the first admin.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    /// When both this and `admin_password` are set, that admin exists after start-up.
    pub admin_email: String,
    /// Its password (used only when the account is created).
    pub admin_password: String,
    /// Its display name.
    pub admin_name: String,
    /// A few demo products when the catalog is empty at start-up: `on`, `off`, or `auto` (on
    /// only with the built-in `database.url`).
    pub demo_catalog: String,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            admin_email: String::new(),
            admin_password: String::new(),
            admin_name: "Administrator".into(),
            demo_catalog: "auto".into(),
        }
    }
}

/// `[cluster]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// etcd endpoints; empty: a single node.
    #[serde(deserialize_with = "list")]
    pub etcd_endpoints: Vec<String>,
    /// This node's id; empty: generated.
    pub node_id: String,
    /// The URL other nodes reach this one at; empty: from `server.bind`.
    pub advertise_url: String,
    /// The node's etcd lease; a node silent for this long is gone.
    pub lease_ttl_secs: u64,
    /// Shards of the entity space; fixed for the life of a deployment.
    pub shards: u32,
    /// Authenticates forwarding between nodes.
    pub secret: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            etcd_endpoints: Vec::new(),
            node_id: String::new(),
            advertise_url: String::new(),
            lease_ttl_secs: 10,
            shards: 256,
            secret: DEV_CLUSTER_SECRET.into(),
        }
    }
}

/// `[shop]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShopConfig {
    /// `development` or `production`.
    pub env: String,
    /// The one currency of the deployment (ISO 4217).
    pub currency: String,
}

impl Default for ShopConfig {
    fn default() -> Self {
        ShopConfig {
            env: "development".into(),
            currency: "CNY".into(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `mall_http=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
    /// `json` (one object per line) or `text`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: "json".into(),
        }
    }
}

/// `[actors]`: the entity-actor runtime.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActorsConfig {
    /// An actor that received nothing for this long is passivated.
    pub idle_timeout_secs: u64,
    /// Most resident actors per kind; past it the least recently used is evicted.
    pub max_resident: usize,
    /// Messages a mailbox holds before senders wait.
    pub mailbox_capacity: usize,
    /// How long a request waits for an actor's answer before 503.
    pub call_timeout_ms: u64,
    /// Threads hosting the actors of each kind.
    pub arbiters: usize,
}

impl Default for ActorsConfig {
    fn default() -> Self {
        ActorsConfig {
            idle_timeout_secs: 300,
            max_resident: 100_000,
            mailbox_capacity: 64,
            call_timeout_ms: 5_000,
            arbiters: 2,
        }
    }
}

impl ActorsConfig {
    /// The runtime settings these keys describe.
    pub fn runtime(&self) -> mall_actors::runtime::RuntimeConfig {
        mall_actors::runtime::RuntimeConfig {
            mailbox_capacity: self.mailbox_capacity,
            call_timeout: std::time::Duration::from_millis(self.call_timeout_ms),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_secs),
            max_resident: self.max_resident,
            arbiters: self.arbiters,
        }
    }
}

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// A list key: a TOML array, or (from the environment) one comma-separated string.
fn list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        OneOrMany::Many(v) => v,
    })
}

impl Config {
    /// Loads `explicit` (must exist) or else `./config.toml` (if present), then the environment.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(explicit, std::env::vars())
    }

    /// Like [`Config::load`] with the environment given (for tests).
    pub fn load_from(
        explicit: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut builder = config::Config::builder();
        match explicit {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError(format!(
                        "--config {}: no such file",
                        path.display()
                    )));
                }
                builder =
                    builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
            }
            None => {
                let default = Path::new("config.toml");
                if default.is_file() {
                    builder = builder
                        .add_source(config::File::from(default).format(config::FileFormat::Toml));
                }
            }
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("MALL__"))
            .collect();
        // No `try_parsing`: it would turn a numeric secret into a float. Values stay strings and
        // are parsed into each key's type during deserialisation.
        let source = config::Environment::with_prefix("MALL")
            .prefix_separator("__")
            .separator("__")
            .source(Some(env));
        let cfg: Config = builder
            .add_source(source)
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values serde cannot: addresses, URLs, enumerations, ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| Err(ConfigError(format!("{key}: {why}")));
        if self.server.bind.parse::<SocketAddr>().is_err() {
            return bad(
                "server.bind",
                format!(
                    "{:?} is not an address like 127.0.0.1:8080",
                    self.server.bind
                ),
            );
        }
        if let Err(e) = mall_db::Backend::of_url(&self.database.url) {
            return bad("database.url", e.to_string());
        }
        if self.database.max_connections == 0 {
            return bad("database.max_connections", "must be at least 1".into());
        }
        if self.database.purge_every_secs == 0 {
            return bad("database.purge_every_secs", "must be at least 1".into());
        }
        if !(1..=3_600_000).contains(&self.catalog.cache_ttl_ms) {
            return bad("catalog.cache_ttl_ms", "must be 1..=3600000".into());
        }
        if self.catalog.cache_max_mb > 65_536 {
            return bad("catalog.cache_max_mb", "must be at most 65536".into());
        }
        let otlp = &self.telemetry.otlp_endpoint;
        if !otlp.is_empty() && !otlp.starts_with("http://") && !otlp.starts_with("https://") {
            return bad(
                "telemetry.otlp_endpoint",
                "must be empty or an http:// or https:// URL".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.telemetry.sample_ratio) {
            return bad(
                "telemetry.sample_ratio",
                "must be between 0.0 and 1.0".into(),
            );
        }
        if self.telemetry.service_name.is_empty() {
            return bad("telemetry.service_name", "must not be empty".into());
        }
        if !self.redis.url.is_empty() && !self.redis.url.starts_with("redis://") {
            return bad("redis.url", "must be empty or start with redis://".into());
        }
        if crate::auth::jwt::Algorithm::parse(&self.auth.jwt_algorithm).is_none() {
            return bad("auth.jwt_algorithm", "must be HS256, EdDSA or ES256".into());
        }
        if self.auth.access_ttl_secs == 0 || self.auth.refresh_ttl_secs == 0 {
            return bad(
                "auth.access_ttl_secs",
                "token lifetimes must be positive".into(),
            );
        }
        for entry in &self.auth.ip_blacklist {
            if parse_net(entry).is_none() {
                return bad(
                    "auth.ip_blacklist",
                    format!("{entry:?} is not a CIDR or an IP address"),
                );
            }
        }
        if !["auto", "on", "off"].contains(&self.bootstrap.demo_catalog.as_str()) {
            return bad(
                "bootstrap.demo_catalog",
                "must be auto, on or off".to_owned(),
            );
        }
        if let Err(e) = crate::auth::policy::Whitelist::parse(&self.auth.whitelist) {
            return bad("auth.whitelist", e.to_string());
        }
        if !matches!(
            self.shop.env.as_str(),
            "development" | "production" | "test"
        ) {
            return bad("shop.env", "must be development, production or test".into());
        }
        if self.shop.currency.len() != 3
            || !self.shop.currency.bytes().all(|b| b.is_ascii_uppercase())
        {
            return bad(
                "shop.currency",
                "must be a three-letter ISO 4217 code".into(),
            );
        }
        if !matches!(self.log.format.as_str(), "json" | "text") {
            return bad("log.format", "must be json or text".into());
        }
        let a = &self.actors;
        if a.idle_timeout_secs == 0
            || a.max_resident == 0
            || a.mailbox_capacity == 0
            || a.call_timeout_ms == 0
            || a.arbiters == 0
        {
            return bad("actors", "idle_timeout_secs, max_resident, mailbox_capacity, call_timeout_ms and arbiters must be positive".into());
        }
        if self.order.payment_timeout_secs == 0 || self.payment.session_timeout_secs == 0 {
            return bad(
                "order.payment_timeout_secs",
                "deadlines must be positive".into(),
            );
        }
        if !(1..=64).contains(&self.order.placement_lanes) {
            return bad("order.placement_lanes", "must be 1 to 64".into());
        }
        if !(1..=1024).contains(&self.order.placement_batch_max) {
            return bad("order.placement_batch_max", "must be 1 to 1024".into());
        }
        self.validate_cluster()
    }

    /// The `cluster.*` checks.
    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| Err(ConfigError(format!("{key}: {why}")));
        let c = &self.cluster;
        for endpoint in &c.etcd_endpoints {
            let rest = endpoint.strip_prefix("http://").unwrap_or(endpoint);
            if rest.is_empty() || rest.contains("://") || rest.contains(char::is_whitespace) {
                return bad(
                    "cluster.etcd_endpoints",
                    format!("{endpoint:?} is not host:port or http://host:port"),
                );
            }
        }
        if !c.node_id.is_empty() && !mall_actors::cluster::keys::valid_node_id(&c.node_id) {
            return bad(
                "cluster.node_id",
                "must be 1 to 64 letters, digits, '-', '_' or '.'".into(),
            );
        }
        let url = &c.advertise_url;
        let base_url = url.starts_with("http://") || url.starts_with("https://");
        if !(url.is_empty() || base_url) || url.contains(char::is_whitespace) {
            return bad(
                "cluster.advertise_url",
                "must be empty or a base URL like http://host:port".into(),
            );
        }
        if !(1..=3600).contains(&c.lease_ttl_secs) {
            return bad("cluster.lease_ttl_secs", "must be 1 to 3600".into());
        }
        if !(1..=65536).contains(&c.shards) {
            return bad("cluster.shards", "must be 1 to 65536".into());
        }
        if c.secret.len() < 16 {
            return bad("cluster.secret", "must be at least 16 bytes".into());
        }
        Ok(())
    }

    /// The placement desk these keys describe (a caller waits for its order until its request's
    /// deadline).
    pub fn placement(&self) -> mall_actors::placement::PlacementConfig {
        mall_actors::placement::PlacementConfig {
            lanes: self.order.placement_lanes,
            max_batch: self.order.placement_batch_max,
            ..Default::default()
        }
    }

    /// The extra checks of `mall serve` in production: no development secret.
    pub fn check_for_serve(&self) -> Result<(), ConfigError> {
        let hs256 = self.auth.jwt_algorithm == "HS256";
        if self.shop.env == "production" && hs256 && self.auth.jwt_secret == DEV_JWT_SECRET {
            return Err(ConfigError(
                "auth.jwt_secret: the development secret is refused when shop.env = \"production\""
                    .into(),
            ));
        }
        if self.shop.env == "production"
            && !self.cluster.etcd_endpoints.is_empty()
            && self.cluster.secret == DEV_CLUSTER_SECRET
        {
            return Err(ConfigError(
                "cluster.secret: the development secret is refused when shop.env = \"production\" and cluster.etcd_endpoints is set"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Parses `10.0.0.0/8` or a bare address (a /32 or /128).
pub fn parse_net(entry: &str) -> Option<ipnet::IpNet> {
    entry.parse::<ipnet::IpNet>().ok().or_else(|| {
        entry
            .parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load_from(Some(Path::new("../config.toml")), env(pairs))
    }

    #[test]
    fn the_shipped_file_equals_the_defaults() {
        let file = load(&[]).unwrap();
        let def = Config::default();
        assert_eq!(format!("{file:?}"), format!("{def:?}"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let cfg = load(&[
            ("MALL__DATABASE__URL", "postgres://u@h/db"),
            ("MALL__AUTH__ACCESS_TTL_SECS", "60"),
            ("MALL__AUTH__WHITELIST", "GET /a,POST /b"),
            ("MALL__RATE_LIMIT__ENABLED", "false"),
            ("MALL__AUTH__JWT_SECRET", "12345678901234567890"),
        ])
        .unwrap();
        assert_eq!(cfg.database.url, "postgres://u@h/db");
        assert_eq!(cfg.auth.access_ttl_secs, 60);
        assert_eq!(cfg.auth.whitelist, vec!["GET /a", "POST /b"]);
        assert!(!cfg.rate_limit.enabled);
        assert_eq!(cfg.auth.jwt_secret, "12345678901234567890");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = load(&[("MALL__SERVER__NOPE", "1")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
        let err = load(&[("MALL__ORDER__PAYMENT_TIMEOUT_SECS", "soon")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("payment_timeout_secs"), "{err}");
        let err = load(&[("MALL__SERVER__BIND", "localhost")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.bind"), "{err}");
        let err = load(&[("MALL__AUTH__IP_BLACKLIST", "10.0.0.0/33")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.ip_blacklist"), "{err}");
        let err = load(&[("MALL__CATALOG__CACHE_TTL_MS", "0")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("catalog.cache_ttl_ms"), "{err}");
    }

    #[test]
    fn production_refuses_the_development_secret() {
        let cfg = load(&[("MALL__SHOP__ENV", "production")]).unwrap();
        assert!(cfg.check_for_serve().is_err());
        let cfg = load(&[
            ("MALL__SHOP__ENV", "production"),
            ("MALL__AUTH__JWT_SECRET", "a-real-secret-of-enough-length"),
        ])
        .unwrap();
        assert!(cfg.check_for_serve().is_ok());
        assert!(Config::default().check_for_serve().is_ok());
    }

    #[test]
    fn production_refuses_the_development_cluster_secret_with_endpoints() {
        let prod = [
            ("MALL__SHOP__ENV", "production"),
            ("MALL__AUTH__JWT_SECRET", "a-real-secret-of-enough-length"),
        ];
        // No endpoints: a single node never forwards, so the secret is not used.
        assert!(load(&prod).unwrap().check_for_serve().is_ok());
        let mut clustered = prod.to_vec();
        clustered.push((
            "MALL__CLUSTER__ETCD_ENDPOINTS",
            "127.0.0.1:2379,http://10.0.0.2:2379",
        ));
        let cfg = load(&clustered).unwrap();
        assert_eq!(cfg.cluster.etcd_endpoints.len(), 2);
        let err = cfg.check_for_serve().unwrap_err().to_string();
        assert!(err.contains("cluster.secret"), "{err}");
        clustered.push(("MALL__CLUSTER__SECRET", "another-real-secret-here"));
        assert!(load(&clustered).unwrap().check_for_serve().is_ok());
    }

    #[test]
    fn bad_cluster_values_are_refused_naming_the_key() {
        for (key, value, named) in [
            ("MALL__CLUSTER__NODE_ID", "a/b", "cluster.node_id"),
            (
                "MALL__CLUSTER__ADVERTISE_URL",
                "localhost:8080",
                "cluster.advertise_url",
            ),
            (
                "MALL__CLUSTER__LEASE_TTL_SECS",
                "0",
                "cluster.lease_ttl_secs",
            ),
            ("MALL__CLUSTER__SHARDS", "0", "cluster.shards"),
            ("MALL__CLUSTER__SECRET", "short", "cluster.secret"),
            (
                "MALL__CLUSTER__ETCD_ENDPOINTS",
                "https://e:2379",
                "cluster.etcd_endpoints",
            ),
        ] {
            let err = load(&[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(named), "{key}={value}: {err}");
        }
    }

    #[test]
    fn blacklist_entries_parse_as_networks() {
        assert!(
            parse_net("10.0.0.0/8")
                .unwrap()
                .contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap())
        );
        assert!(parse_net("::1").is_some());
        assert!(parse_net("nonsense").is_none());
    }
}
