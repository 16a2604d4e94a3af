//! This node's cache of rendered products (`GET /api/v1/products/{id}`): the JSON the route
//! answers with and its `ETag`, built once per change instead of once per request.
//!
//! A change forgets the entry on this node before the change is acknowledged, and on the other
//! nodes through the change notices (`notices.rs`). If a notice is lost, an entry still lives at
//! most `catalog.cache_ttl_ms`: that is the bound on how stale another node can be.
//!
//! A read that loaded a product just before a change must not put the old copy back after the
//! change forgot it. Every forget bumps a counter (one of [`STRIPES`], chosen by id); a load
//! remembers the counter it started under and keeps its copy only while the counter has not
//! moved, checking again after the insert so a forget racing the insert still wins.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::web::Bytes;
use sha2::{Digest, Sha256};

/// Invalidation counters: enough that a hot product's changes rarely make a neighbour miss.
pub const STRIPES: usize = 4096;

/// A product as the route answers it.
#[derive(Debug)]
pub struct Rendered {
    /// The response body.
    pub json: Bytes,
    /// A strong entity tag of the body, quoted (`"…"`).
    pub etag: String,
    /// The invalidation counter this copy was loaded under.
    epoch: u64,
}

impl Rendered {
    /// The body `json` and its tag.
    pub fn new(json: Vec<u8>) -> Self {
        let digest = Sha256::digest(&json);
        let mut etag = String::with_capacity(34);
        etag.push('"');
        for byte in &digest[..16] {
            etag.push_str(&format!("{byte:02x}"));
        }
        etag.push('"');
        Rendered {
            json: Bytes::from(json),
            etag,
            epoch: 0,
        }
    }

    /// True when an `If-None-Match` header value names this copy: `*`, or a list of tags of
    /// which one equals ours (weakly: a `W/` prefix is ignored, as GET's comparison says).
    pub fn matches(&self, if_none_match: &str) -> bool {
        if_none_match
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == self.etag.as_str())
    }
}

/// The cache (shared by every worker of the node).
pub struct ProductCache {
    /// None when `catalog.cache_max_mb` is 0: every read renders afresh.
    entries: Option<moka::sync::Cache<i64, Arc<Rendered>>>,
    epochs: Box<[AtomicU64]>,
}

impl ProductCache {
    /// A cache of at most `max_bytes` of JSON whose entries live at most `ttl`.
    pub fn new(max_bytes: u64, ttl: Duration) -> Self {
        let entries = (max_bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, r: &Arc<Rendered>| {
                    u32::try_from(r.json.len() + r.etag.len() + 64).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .build()
        });
        ProductCache {
            entries,
            epochs: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn epoch(&self, id: i64) -> &AtomicU64 {
        // Ids are spread in their low bits (a sequence or a random node part); a multiplicative
        // mix keeps neighbours apart either way.
        let mixed = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        &self.epochs[mixed as usize % STRIPES]
    }

    /// Product `id` rendered, from the cache or else from `load` (which then fills it).
    /// `load`'s error (not found, database down) is passed on and nothing is cached.
    pub async fn get_or_load<E, F, Fut>(&self, id: i64, load: F) -> Result<Arc<Rendered>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Rendered, E>>,
    {
        let Some(entries) = &self.entries else {
            return load().await.map(Arc::new);
        };
        let epoch = self.epoch(id);
        let ticket = epoch.load(Ordering::SeqCst);
        if let Some(hit) = entries.get(&id)
            && hit.epoch == ticket
        {
            return Ok(hit);
        }
        let mut fresh = load().await?;
        fresh.epoch = ticket;
        let fresh = Arc::new(fresh);
        if epoch.load(Ordering::SeqCst) == ticket {
            entries.insert(id, Arc::clone(&fresh));
            if epoch.load(Ordering::SeqCst) != ticket {
                entries.invalidate(&id);
            }
        }
        Ok(fresh)
    }

    /// Forgets products `ids` (they changed).
    pub fn invalidate(&self, ids: &[i64]) {
        for &id in ids {
            self.epoch(id).fetch_add(1, Ordering::SeqCst);
            if let Some(entries) = &self.entries {
                entries.invalidate(&id);
            }
        }
    }

    /// Forgets every product (notices may have been missed).
    pub fn clear(&self) {
        for epoch in &*self.epochs {
            epoch.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn cache() -> ProductCache {
        ProductCache::new(1 << 20, Duration::from_secs(60))
    }

    async fn read(cache: &ProductCache, id: i64, body: &str, loads: &AtomicUsize) -> String {
        let got = cache
            .get_or_load(id, || async {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(Rendered::new(body.as_bytes().to_vec()))
            })
            .await
            .unwrap();
        String::from_utf8(got.json.to_vec()).unwrap()
    }

    #[actix_web::test]
    async fn a_hit_skips_the_load_and_a_change_forces_one() {
        let cache = cache();
        let loads = AtomicUsize::new(0);
        assert_eq!(read(&cache, 7, "v1", &loads).await, "v1");
        assert_eq!(read(&cache, 7, "ignored", &loads).await, "v1");
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        cache.invalidate(&[7]);
        assert_eq!(read(&cache, 7, "v2", &loads).await, "v2");
        cache.clear();
        assert_eq!(read(&cache, 7, "v3", &loads).await, "v3");
        assert_eq!(loads.load(Ordering::SeqCst), 3);
    }

    #[actix_web::test]
    async fn a_load_that_a_change_overtook_is_answered_but_not_kept() {
        let cache = cache();
        let loads = AtomicUsize::new(0);
        // The change lands while the load is reading the old row.
        let old = cache
            .get_or_load(9, || async {
                cache.invalidate(&[9]);
                Ok::<_, ()>(Rendered::new(b"old".to_vec()))
            })
            .await
            .unwrap();
        assert_eq!(&old.json[..], b"old");
        assert_eq!(read(&cache, 9, "new", &loads).await, "new");
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[actix_web::test]
    async fn errors_are_passed_on_and_not_cached() {
        let cache = cache();
        let loads = AtomicUsize::new(0);
        let missing = cache
            .get_or_load(3, || async { Err::<Rendered, _>("not found") })
            .await;
        assert_eq!(missing.err(), Some("not found"));
        assert_eq!(read(&cache, 3, "made", &loads).await, "made");
    }

    #[actix_web::test]
    async fn entries_expire_after_the_ttl_and_a_zero_size_cache_always_loads() {
        let short = ProductCache::new(1 << 20, Duration::from_millis(50));
        let loads = AtomicUsize::new(0);
        read(&short, 1, "a", &loads).await;
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(read(&short, 1, "b", &loads).await, "b");

        let off = ProductCache::new(0, Duration::from_secs(60));
        let loads = AtomicUsize::new(0);
        read(&off, 1, "a", &loads).await;
        assert_eq!(read(&off, 1, "b", &loads).await, "b");
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn tags_are_strong_stable_and_matched_weakly_or_by_star() {
        let a = Rendered::new(b"{\"id\":\"1\"}".to_vec());
        let b = Rendered::new(b"{\"id\":\"2\"}".to_vec());
        assert_eq!(a.etag, Rendered::new(b"{\"id\":\"1\"}".to_vec()).etag);
        assert_ne!(a.etag, b.etag);
        assert!(a.etag.starts_with('"') && a.etag.ends_with('"') && a.etag.len() == 34);
        assert!(a.matches(&a.etag));
        assert!(a.matches(&format!("W/{}", a.etag)));
        assert!(a.matches(&format!("{}, {}", b.etag, a.etag)));
        assert!(a.matches("*"));
        assert!(!a.matches(&b.etag));
        assert!(!a.matches(""));
    }
}
