//! A read-through cache of values derived from products (a rendered product, a cart line's
//! price), kept fresh by invalidation: a change forgets the entry on its own node before it is
//! acknowledged and on the others through change notices; an entry also lives at most its
//! time to live, which bounds how stale a node can be if a notice is lost.
//!
//! A read that loaded a value just before a change must not put the old copy back after the
//! change forgot it. Every forget bumps a counter (one of [`STRIPES`], chosen by key); a load
//! remembers the counter it started under ([`Ticket`]) and keeps its copy only while the counter
//! has not moved, checking again after the insert so that a forget racing the insert still wins.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Invalidation counters: enough that a hot product's changes rarely make a neighbour miss.
pub const STRIPES: usize = 4096;

/// The invalidation counter a read started under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    key: i64,
    epoch: u64,
}

impl Ticket {
    /// The key being read.
    pub fn key(&self) -> i64 {
        self.key
    }
}

struct Entry<V> {
    value: Arc<V>,
    epoch: u64,
}

impl<V> Clone for Entry<V> {
    fn clone(&self) -> Self {
        Entry {
            value: Arc::clone(&self.value),
            epoch: self.epoch,
        }
    }
}

/// The cache, keyed by product id (shared by every worker of the node).
pub struct FreshCache<V> {
    /// None when the cache is off (no room): every read loads.
    entries: Option<moka::sync::Cache<i64, Entry<V>>>,
    epochs: Box<[AtomicU64]>,
}

impl<V> std::fmt::Debug for FreshCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.entries.as_ref().map(moka::sync::Cache::entry_count);
        f.debug_struct("FreshCache")
            .field("entries", &entries)
            .finish()
    }
}

impl<V: Send + Sync + 'static> FreshCache<V> {
    /// A cache of at most `max_weight` (in the unit `weigh` measures, e.g. bytes; 0: no cache)
    /// whose entries live at most `ttl`.
    pub fn new(max_weight: u64, ttl: Duration, weigh: fn(&V) -> u32) -> Self {
        let entries = (max_weight > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(max_weight)
                .weigher(move |_, e: &Entry<V>| weigh(&e.value))
                .time_to_live(ttl)
                .build()
        });
        FreshCache {
            entries,
            epochs: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn epoch(&self, key: i64) -> &AtomicU64 {
        // Ids are spread in their low bits (a sequence or a random node part); a multiplicative
        // mix keeps neighbours apart either way.
        let mixed = (key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        &self.epochs[mixed as usize % STRIPES]
    }

    /// Starts a read of `key`: take the ticket before looking or loading.
    pub fn ticket(&self, key: i64) -> Ticket {
        Ticket {
            key,
            epoch: self.epoch(key).load(Ordering::SeqCst),
        }
    }

    /// The cached value of the ticket's key, if there is one no change has overtaken.
    pub fn get(&self, ticket: Ticket) -> Option<Arc<V>> {
        let hit = self.entries.as_ref()?.get(&ticket.key)?;
        (hit.epoch == ticket.epoch).then_some(hit.value)
    }

    /// Keeps `value`, loaded under `ticket`, unless a change came since; returns it either way.
    pub fn fill(&self, ticket: Ticket, value: V) -> Arc<V> {
        let value = Arc::new(value);
        let Some(entries) = &self.entries else {
            return value;
        };
        let epoch = self.epoch(ticket.key);
        if epoch.load(Ordering::SeqCst) == ticket.epoch {
            let entry = Entry {
                value: Arc::clone(&value),
                epoch: ticket.epoch,
            };
            entries.insert(ticket.key, entry);
            if epoch.load(Ordering::SeqCst) != ticket.epoch {
                entries.invalidate(&ticket.key);
            }
        }
        value
    }

    /// The value of `key`, from the cache or else from `load` (which then fills it). `load`'s
    /// error (not found, database down) is passed on and nothing is cached.
    pub async fn get_or_load<E, F, Fut>(&self, key: i64, load: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let ticket = self.ticket(key);
        if let Some(hit) = self.get(ticket) {
            return Ok(hit);
        }
        Ok(self.fill(ticket, load().await?))
    }

    /// Forgets `keys` (they changed).
    pub fn invalidate(&self, keys: &[i64]) {
        for &key in keys {
            self.epoch(key).fetch_add(1, Ordering::SeqCst);
            if let Some(entries) = &self.entries {
                entries.invalidate(&key);
            }
        }
    }

    /// Forgets everything (notices may have been missed).
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

    #[expect(
        clippy::ptr_arg,
        reason = "a weigher takes a reference to the cached type"
    )]
    fn weigh(v: &String) -> u32 {
        v.len() as u32
    }

    fn cache() -> FreshCache<String> {
        FreshCache::new(1 << 20, Duration::from_secs(60), weigh)
    }

    async fn read(
        cache: &FreshCache<String>,
        key: i64,
        value: &str,
        loads: &AtomicUsize,
    ) -> String {
        let got = cache
            .get_or_load(key, || async {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(value.to_owned())
            })
            .await
            .unwrap();
        (*got).clone()
    }

    #[actix::test]
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

    #[actix::test]
    async fn a_load_that_a_change_overtook_is_answered_but_not_kept() {
        let cache = cache();
        let loads = AtomicUsize::new(0);
        // The change lands while the load is reading the old row.
        let old = cache
            .get_or_load(9, || async {
                cache.invalidate(&[9]);
                Ok::<_, ()>("old".to_owned())
            })
            .await
            .unwrap();
        assert_eq!(*old, "old");
        assert_eq!(read(&cache, 9, "new", &loads).await, "new");
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn an_entry_filled_under_an_old_ticket_is_not_served() {
        let cache = cache();
        let before = cache.ticket(5);
        cache.invalidate(&[5]);
        cache.fill(before, "old".to_owned());
        assert_eq!(cache.get(cache.ticket(5)), None);
        let now = cache.ticket(5);
        cache.fill(now, "new".to_owned());
        assert_eq!(
            cache.get(cache.ticket(5)).as_deref().map(String::as_str),
            Some("new")
        );
    }

    #[actix::test]
    async fn errors_are_passed_on_and_not_cached() {
        let cache = cache();
        let loads = AtomicUsize::new(0);
        let missing = cache
            .get_or_load(3, || async { Err::<String, _>("not found") })
            .await;
        assert_eq!(missing.err(), Some("not found"));
        assert_eq!(read(&cache, 3, "made", &loads).await, "made");
    }

    #[actix::test]
    async fn entries_expire_after_the_ttl_and_a_cache_without_room_always_loads() {
        let short = FreshCache::new(1 << 20, Duration::from_millis(50), weigh);
        let loads = AtomicUsize::new(0);
        read(&short, 1, "a", &loads).await;
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(read(&short, 1, "b", &loads).await, "b");

        let off = FreshCache::new(0, Duration::from_secs(60), weigh);
        let loads = AtomicUsize::new(0);
        read(&off, 1, "a", &loads).await;
        assert_eq!(read(&off, 1, "b", &loads).await, "b");
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }
}
