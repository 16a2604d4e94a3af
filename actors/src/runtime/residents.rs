//! The registry's bookkeeping, with no actors in it: which keys are resident, in what order they
//! were last used, which have been idle too long, and which to evict when over capacity.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

struct Slot<V> {
    value: V,
    tick: u64,
}

/// Resident values by key, with least-recently-used order. All operations are O(log n).
pub struct Residents<K, V> {
    slots: HashMap<K, Slot<V>>,
    // use order: tick -> (key, last used)
    order: BTreeMap<u64, (K, Instant)>,
    next_tick: u64,
    capacity: usize,
}

impl<K: Clone + Eq + Hash, V> Residents<K, V> {
    /// Bookkeeping for at most `capacity` residents (at least one).
    pub fn new(capacity: usize) -> Self {
        Residents {
            slots: HashMap::new(),
            order: BTreeMap::new(),
            next_tick: 0,
            capacity: capacity.max(1),
        }
    }

    /// How many are resident.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when none are.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn tick(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }

    /// The value for `key`, marking it used at `now`.
    pub fn touch(&mut self, key: &K, now: Instant) -> Option<&V> {
        let tick = self.tick();
        let slot = self.slots.get_mut(key)?;
        self.order.remove(&slot.tick);
        slot.tick = tick;
        self.order.insert(tick, (key.clone(), now));
        Some(&slot.value)
    }

    /// The value for `key`, without marking it used.
    pub fn peek(&self, key: &K) -> Option<&V> {
        self.slots.get(key).map(|s| &s.value)
    }

    /// Makes `value` resident under `key` (replacing any previous one, which is returned first),
    /// then evicts least recently used entries while over capacity; those are returned after it.
    pub fn insert(&mut self, key: K, value: V, now: Instant) -> Vec<(K, V)> {
        let mut out = Vec::new();
        if let Some(old) = self.remove(&key) {
            out.push((key.clone(), old));
        }
        let tick = self.tick();
        self.order.insert(tick, (key.clone(), now));
        self.slots.insert(key, Slot { value, tick });
        while self.slots.len() > self.capacity {
            let Some((_, (oldest, _))) = self.order.pop_first() else {
                break;
            };
            if let Some(slot) = self.slots.remove(&oldest) {
                out.push((oldest, slot.value));
            }
        }
        out
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let slot = self.slots.remove(key)?;
        self.order.remove(&slot.tick);
        Some(slot.value)
    }

    /// Removes `key` only when `pred` holds for its value.
    pub fn remove_if(&mut self, key: &K, pred: impl FnOnce(&V) -> bool) -> Option<V> {
        if self.slots.get(key).is_some_and(|s| pred(&s.value)) {
            self.remove(key)
        } else {
            None
        }
    }

    /// Removes and returns every entry last used more than `idle` before `now`, oldest first.
    pub fn expire_idle(&mut self, now: Instant, idle: Duration) -> Vec<(K, V)> {
        let mut out = Vec::new();
        while let Some(entry) = self.order.first_entry() {
            let (_, used) = entry.get();
            if now.saturating_duration_since(*used) < idle {
                break;
            }
            let (key, _) = entry.remove();
            if let Some(slot) = self.slots.remove(&key) {
                out.push((key, slot.value));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_finds_and_refreshes() {
        let t0 = Instant::now();
        let mut r = Residents::new(10);
        assert!(r.insert("a", 1, t0).is_empty());
        assert_eq!(r.touch(&"a", t0), Some(&1));
        assert_eq!(r.touch(&"b", t0), None);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn over_capacity_evicts_the_least_recently_used() {
        let t0 = Instant::now();
        let mut r = Residents::new(2);
        r.insert("a", 1, t0);
        r.insert("b", 2, t0);
        r.touch(&"a", t0); // b is now the oldest
        let evicted = r.insert("c", 3, t0);
        assert_eq!(evicted, vec![("b", 2)]);
        assert_eq!(r.peek(&"a"), Some(&1));
        assert_eq!(r.peek(&"c"), Some(&3));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn reinserting_a_key_returns_the_old_value_and_keeps_one_entry() {
        let t0 = Instant::now();
        let mut r = Residents::new(5);
        r.insert("a", 1, t0);
        assert_eq!(r.insert("a", 2, t0), vec![("a", 1)]);
        assert_eq!(r.len(), 1);
        assert_eq!(r.peek(&"a"), Some(&2));
    }

    #[test]
    fn idle_entries_expire_oldest_first_and_used_ones_stay() {
        let t0 = Instant::now();
        let mut r = Residents::new(10);
        r.insert("old", 1, t0);
        r.insert("older-but-touched", 2, t0);
        r.insert("new", 3, t0 + Duration::from_secs(50));
        r.touch(&"older-but-touched", t0 + Duration::from_secs(55));
        let gone = r.expire_idle(t0 + Duration::from_secs(60), Duration::from_secs(30));
        assert_eq!(gone, vec![("old", 1)]);
        assert_eq!(r.len(), 2);
        let gone = r.expire_idle(t0 + Duration::from_secs(200), Duration::from_secs(30));
        assert_eq!(gone.len(), 2);
        assert!(r.is_empty());
    }

    #[test]
    fn remove_if_checks_the_value() {
        let t0 = Instant::now();
        let mut r = Residents::new(10);
        r.insert("a", 1, t0);
        assert_eq!(r.remove_if(&"a", |v| *v == 2), None);
        assert_eq!(r.remove_if(&"a", |v| *v == 1), Some(1));
        assert!(r.is_empty());
        // the order index was cleaned too: nothing expires
        assert!(
            r.expire_idle(t0 + Duration::from_secs(999), Duration::ZERO)
                .is_empty()
        );
    }
}
