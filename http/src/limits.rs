//! Rate limits (GCRA): per client IP for anonymous requests, per user for authenticated ones,
//! and a failed-login budget per account whatever the client's IP. In-process with `governor`;
//! shared by every process through a Redis script when `redis.url` is set, falling back to the
//! in-process limiters whenever Redis does not answer. Excess gets 429 `rate_limited` with
//! `Retry-After`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_redis::redis;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus::{IntCounterVec, Opts};

use crate::config::RateLimitConfig;
use crate::error::{ApiError, ErrorCode};
use crate::redis::Redis;

/// GCRA over one key: `KEYS[1]` the key, `ARGV[1]` the emission interval (ms), `ARGV[2]` the
/// burst, `ARGV[3]` `1` to only look. Returns `{allowed, retry_after_ms}`. Time is Redis's own.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local limit = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > limit then
  return {0, math.ceil(new_tat - now - limit)}
end
if ARGV[3] ~= '1' then
  redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
end
return {1, 0}
";

type LoginLimiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Every limiter of the process.
pub struct Limits {
    cfg: RateLimitConfig,
    ip: DefaultKeyedRateLimiter<IpAddr>,
    user: DefaultKeyedRateLimiter<i64>,
    login: LoginLimiter,
    // Accounts whose failed-login budget is spent, until when (in-process fallback).
    login_blocked: Mutex<HashMap<String, Instant>>,
    redis: Option<Arc<Redis>>,
    limited: IntCounterVec,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

fn too_many(retry_after: Duration) -> ApiError {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut e = ApiError::new(ErrorCode::RateLimited, "too many requests; slow down");
    e.retry_after = Some(secs.max(1));
    e
}

impl Limits {
    /// Limiters for `cfg`, shared through `redis` when given; `rate_limited_total{scope}` is
    /// registered in `registry`.
    pub fn new(
        cfg: RateLimitConfig,
        redis: Option<Arc<Redis>>,
        registry: &prometheus::Registry,
    ) -> Result<Limits, prometheus::Error> {
        let limited = IntCounterVec::new(
            Opts::new(
                "rate_limited_total",
                "Requests refused by a rate limit, by scope",
            ),
            &["scope"],
        )?;
        registry.register(Box::new(limited.clone()))?;
        // Every scope is exported from the start, so rates and alerts see zero, not nothing.
        for scope in ["ip", "user", "login"] {
            limited.with_label_values(&[scope]);
        }
        Ok(Limits {
            ip: RateLimiter::keyed(
                Quota::per_second(nz(cfg.per_ip_per_sec)).allow_burst(nz(cfg.burst)),
            ),
            user: RateLimiter::keyed(
                Quota::per_second(nz(cfg.per_user_per_sec)).allow_burst(nz(cfg.burst)),
            ),
            login: RateLimiter::keyed(Quota::per_minute(nz(cfg.login_per_account_per_min)))
                .with_middleware::<StateInformationMiddleware>(),
            login_blocked: Mutex::new(HashMap::new()),
            cfg,
            redis,
            limited,
        })
    }

    /// Runs the shared limiter for `key`; `None` when Redis is not configured or did not answer.
    async fn shared(
        &self,
        key: &str,
        per: Duration,
        burst: u32,
        peek: bool,
    ) -> Option<Result<(), Duration>> {
        let redis = self.redis.as_ref()?;
        let interval_ms = per.as_secs_f64() * 1000.0;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(GCRA)
            .arg(1)
            .arg(format!("{}rl:{key}", redis.prefix))
            .arg(interval_ms)
            .arg(burst)
            .arg(u8::from(peek));
        match redis.run::<(i64, i64)>(&cmd).await {
            Ok((1, _)) => Some(Ok(())),
            Ok((_, wait_ms)) => Some(Err(Duration::from_millis(wait_ms.max(0) as u64))),
            Err(_) => None,
        }
    }

    fn refuse(&self, scope: &str, wait: Duration) -> ApiError {
        self.limited.with_label_values(&[scope]).inc();
        too_many(wait)
    }

    /// One request from an anonymous client at `ip`.
    pub async fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        if !self.cfg.enabled {
            return Ok(());
        }
        let per = Duration::from_secs_f64(1.0 / f64::from(self.cfg.per_ip_per_sec.max(1)));
        let verdict = match self
            .shared(&format!("ip:{ip}"), per, self.cfg.burst.max(1), false)
            .await
        {
            Some(v) => v,
            None => self
                .ip
                .check_key(&ip)
                .map_err(|nu| nu.wait_time_from(DefaultClock::default().now())),
        };
        verdict.map_err(|wait| self.refuse("ip", wait))
    }

    /// One request from user `id`.
    pub async fn check_user(&self, id: i64) -> Result<(), ApiError> {
        if !self.cfg.enabled {
            return Ok(());
        }
        let per = Duration::from_secs_f64(1.0 / f64::from(self.cfg.per_user_per_sec.max(1)));
        let verdict = match self
            .shared(&format!("user:{id}"), per, self.cfg.burst.max(1), false)
            .await
        {
            Some(v) => v,
            None => self
                .user
                .check_key(&id)
                .map_err(|nu| nu.wait_time_from(DefaultClock::default().now())),
        };
        verdict.map_err(|wait| self.refuse("user", wait))
    }

    fn login_per(&self) -> Duration {
        Duration::from_secs_f64(60.0 / f64::from(self.cfg.login_per_account_per_min.max(1)))
    }

    /// Before checking a password: refused while the account's failed-login budget is spent
    /// (whatever the password, so a guess cannot be confirmed by a different answer).
    pub async fn login_allowed(&self, account: &str) -> Result<(), ApiError> {
        if !self.cfg.enabled {
            return Ok(());
        }
        let budget = self.cfg.login_per_account_per_min.max(1);
        let verdict = match self
            .shared(&format!("login:{account}"), self.login_per(), budget, true)
            .await
        {
            Some(v) => v,
            None => {
                let mut blocked = self.login_blocked.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
                match blocked.get(account) {
                    Some(until) => Err(until.saturating_duration_since(now)),
                    None => Ok(()),
                }
            }
        };
        verdict.map_err(|wait| self.refuse("login", wait))
    }

    /// After a wrong password: spends one unit of the account's budget.
    pub async fn login_failed(&self, account: &str) {
        if !self.cfg.enabled {
            return;
        }
        let budget = self.cfg.login_per_account_per_min.max(1);
        if self
            .shared(&format!("login:{account}"), self.login_per(), budget, false)
            .await
            .is_some()
        {
            return;
        }
        let key = account.to_owned();
        let spent = match self.login.check_key(&key) {
            Ok(snapshot) if snapshot.remaining_burst_capacity() == 0 => Some(self.login_per()),
            Ok(_) => None,
            Err(nu) => Some(nu.wait_time_from(DefaultClock::default().now())),
        };
        if let Some(wait) = spent {
            let mut blocked = self.login_blocked.lock().unwrap_or_else(|p| p.into_inner());
            blocked.insert(key, Instant::now() + wait);
        }
    }

    /// Drops per-key state that has fully recovered (call now and then: keyed state grows).
    pub fn housekeeping(&self) {
        self.ip.retain_recent();
        self.user.retain_recent();
        self.login.retain_recent();
    }
}
