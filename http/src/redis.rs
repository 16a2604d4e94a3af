//! The optional Redis connection: a pool, a short timeout on every call, and a circuit that
//! stops trying for a moment after a failure so a dead Redis costs requests nothing. Every user
//! of it has an in-process fallback; Redis is never needed to answer correctly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_redis::redis::{self, FromRedisValue};
use deadpool_redis::{Config, Pool, Runtime};

/// Longest a Redis call may take before the caller falls back.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failure, how long to skip Redis before trying again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a Redis call gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Redis failed recently; not tried.
    #[error("redis is down (circuit open)")]
    CircuitOpen,
    /// No answer in time.
    #[error("redis timed out")]
    Timeout,
    /// Connecting or the command failed.
    #[error("redis failed: {0}")]
    Failed(String),
}

/// A shared Redis pool with a circuit breaker.
pub struct Redis {
    pool: Pool,
    /// Unix milliseconds before which Redis is not tried (0: closed circuit).
    open_until_ms: AtomicU64,
    /// Key prefix (lets tests and deployments share one server).
    pub prefix: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Redis {
    /// A pool for `url` (connections are made lazily).
    pub fn connect(url: &str, prefix: &str) -> Result<Redis, String> {
        let mut cfg = Config::from_url(url);
        let mut pool_cfg = deadpool_redis::PoolConfig::new(32);
        pool_cfg.timeouts.wait = Some(CALL_TIMEOUT);
        pool_cfg.timeouts.create = Some(CALL_TIMEOUT);
        pool_cfg.timeouts.recycle = Some(CALL_TIMEOUT);
        cfg.pool = Some(pool_cfg);
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| e.to_string())?;
        Ok(Redis {
            pool,
            open_until_ms: AtomicU64::new(0),
            prefix: prefix.to_owned(),
        })
    }

    /// True while recent failures keep Redis out of use.
    pub fn circuit_open(&self) -> bool {
        now_ms() < self.open_until_ms.load(Ordering::Relaxed)
    }

    /// Runs `cmd` (a command or a script invocation) with the timeout and the circuit.
    pub async fn run<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, RedisError> {
        if self.circuit_open() {
            return Err(RedisError::CircuitOpen);
        }
        self.attempt(cmd).await
    }

    /// Runs `cmd` with the timeout, whatever the circuit says; success closes the circuit,
    /// failure (re)opens it.
    async fn attempt<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, RedisError> {
        let attempt = async {
            let mut conn = self
                .pool
                .get()
                .await
                .map_err(|e| RedisError::Failed(e.to_string()))?;
            cmd.query_async::<T>(&mut conn)
                .await
                .map_err(|e| RedisError::Failed(e.to_string()))
        };
        let outcome = match tokio::time::timeout(CALL_TIMEOUT, attempt).await {
            Ok(r) => r,
            Err(_) => Err(RedisError::Timeout),
        };
        match &outcome {
            Ok(_) => self.open_until_ms.store(0, Ordering::Relaxed),
            Err(e) => {
                if !self.circuit_open() {
                    tracing::warn!(error = %e, "redis unavailable; using in-process fallbacks");
                }
                self.open_until_ms
                    .store(now_ms() + RETRY_AFTER.as_millis() as u64, Ordering::Relaxed);
            }
        }
        outcome
    }

    /// `PING`, whatever the circuit says (for `/readyz`; a success closes the circuit, and
    /// requests do not wait on Redis meanwhile: only this probe does).
    pub async fn ping(&self) -> bool {
        self.attempt::<String>(&redis::cmd("PING")).await.is_ok()
    }
}
