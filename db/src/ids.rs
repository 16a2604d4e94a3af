//! Time-ordered 63-bit ids generated in the application, unique across nodes.
//!
//! Layout (most significant first): 41 bits of milliseconds since 2025-01-01 UTC (69 years),
//! 10 bits of node id, 12 bits of sequence within the millisecond. Ids are positive `i64`s, so
//! they fit a `BIGINT` on both backends; the API shows them as strings.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2025-01-01T00:00:00Z in Unix milliseconds.
const EPOCH_MS: u64 = 1_735_689_600_000;
const NODE_BITS: u32 = 10;
const SEQ_BITS: u32 = 12;
const MAX_SEQ: u64 = (1 << SEQ_BITS) - 1;
const NODE_MASK: u64 = (1 << NODE_BITS) - 1;

/// How many node numbers there are (a cluster node claims one of `0..NODE_NUMBERS`).
pub const NODE_NUMBERS: u16 = 1 << NODE_BITS;

/// Hands out ids; one per process, shared.
#[derive(Debug)]
pub struct IdGenerator {
    // Atomic because a cluster node learns its number from etcd after start-up, and may have
    // to take another one when it rejoins after losing its lease.
    node: AtomicU64,
    state: Mutex<(u64, u64)>, // (last millisecond, sequence)
}

impl IdGenerator {
    /// A generator for `node` (only its low 10 bits are used).
    pub fn new(node: u16) -> Self {
        IdGenerator {
            node: AtomicU64::new(u64::from(node) & NODE_MASK),
            state: Mutex::new((0, 0)),
        }
    }

    /// A generator with a random node number: good enough for a single node. A cluster node
    /// replaces it with the number it claims in etcd ([`set_node`](Self::set_node)) before it
    /// mints anything, so two nodes never share one.
    pub fn random_node() -> Self {
        Self::new(rand::random::<u16>())
    }

    /// Mints the following ids with `node` (its low 10 bits): the number this process holds.
    pub fn set_node(&self, node: u16) {
        self.node
            .store(u64::from(node) & NODE_MASK, Ordering::Release);
    }

    /// The node number ids are minted with now.
    pub fn node(&self) -> u16 {
        // Masked to 10 bits when stored, so it fits.
        (self.node.load(Ordering::Acquire) & NODE_MASK) as u16
    }

    /// The next id: strictly greater than every id this generator returned before.
    pub fn next_id(&self) -> i64 {
        let mut state = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (last_ms, seq) = *state;
        let mut ms = now_ms().max(last_ms);
        let seq = if ms == last_ms {
            if seq >= MAX_SEQ {
                // Sequence exhausted in this millisecond: borrow the next one.
                ms += 1;
                0
            } else {
                seq + 1
            }
        } else {
            0
        };
        *state = (ms, seq);
        let node = self.node.load(Ordering::Acquire);
        let id = (ms << (NODE_BITS + SEQ_BITS)) | (node << SEQ_BITS) | seq;
        // 41 bits of time keep the top bit clear until 2094.
        (id & (i64::MAX as u64)) as i64
    }
}

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    (since.as_millis() as u64).saturating_sub(EPOCH_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_increasing_and_positive() {
        let g = IdGenerator::new(7);
        let ids: Vec<i64> = (0..20_000).map(|_| g.next_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|&id| id > 0));
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    }

    #[test]
    fn different_nodes_never_collide() {
        let a = IdGenerator::new(1);
        let b = IdGenerator::new(2);
        let mut seen = HashSet::new();
        for _ in 0..5_000 {
            assert!(seen.insert(a.next_id()));
            assert!(seen.insert(b.next_id()));
        }
    }

    #[test]
    fn a_new_node_number_shows_in_the_following_ids() {
        let g = IdGenerator::new(1);
        g.set_node(1023);
        assert_eq!(g.node(), 1023);
        let id = g.next_id() as u64;
        assert_eq!((id >> SEQ_BITS) & NODE_MASK, 1023);
    }
}
