//! A read-through cache of single products in Redis (`GET /products/{id}`), invalidated when a
//! product changes: on PATCH and DELETE, and when an order takes or returns its stock. Entries
//! also expire after a few seconds, which bounds what a read racing an invalidation can leave
//! behind. Redis down: reads go to the database, as without a cache.

use std::sync::Arc;

use deadpool_redis::redis;

use crate::redis::Redis;

/// How long an entry may live even without an invalidation.
pub const TTL_SECS: u64 = 5;

/// The cache (cheap to clone).
#[derive(Clone)]
pub struct ProductCache {
    redis: Arc<Redis>,
}

impl ProductCache {
    /// A cache over `redis`.
    pub fn new(redis: Arc<Redis>) -> Self {
        ProductCache { redis }
    }

    fn key(&self, id: i64) -> String {
        format!("{}product:{id}", self.redis.prefix)
    }

    /// The cached JSON of product `id`, if any.
    pub async fn get(&self, id: i64) -> Option<String> {
        self.redis
            .run::<Option<String>>(redis::cmd("GET").arg(self.key(id)))
            .await
            .ok()
            .flatten()
    }

    /// Caches the JSON of product `id`.
    pub async fn put(&self, id: i64, json: &str) {
        let _ = self
            .redis
            .run::<()>(
                redis::cmd("SET")
                    .arg(self.key(id))
                    .arg(json)
                    .arg("EX")
                    .arg(TTL_SECS),
            )
            .await;
    }

    /// Forgets products `ids` (after they changed).
    pub async fn invalidate(&self, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        let mut del = redis::cmd("DEL");
        for id in ids {
            del.arg(self.key(*id));
        }
        if let Err(e) = self.redis.run::<()>(&del).await {
            tracing::warn!(error = %e, "product cache not invalidated; entries expire within {TTL_SECS} s");
        }
    }
}
