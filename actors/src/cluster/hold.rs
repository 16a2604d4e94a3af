//! How long this node may trust its lease, and which node numbers it tries: plain logic, no I/O.
//!
//! etcd ends a lease `ttl` seconds after the last keep-alive it received. A keep-alive answered
//! with `ttl` was received after it was sent, so the lease (and the node number claimed under
//! it) is ours at least until `sent + ttl`. Past that instant another node may already hold the
//! number, so this node stops minting ids and writing until a keep-alive succeeds again.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mall_db::ids::NODE_NUMBERS;

/// Until when the lease is certainly held.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hold {
    until: Option<Instant>,
}

impl Hold {
    /// A keep-alive (or a grant) sent at `sent` was answered with `ttl`: the lease is held until
    /// `sent + ttl`, unless an earlier answer already promised longer.
    pub fn renewed(&mut self, sent: Instant, ttl: Duration) {
        let until = sent + ttl;
        self.until = Some(self.until.map_or(until, |u| u.max(until)));
    }

    /// The lease is gone (revoked, expired, or replaced by a new one not yet confirmed).
    pub fn lost(&mut self) {
        self.until = None;
    }

    /// Whether the lease is held at `now`.
    pub fn held_at(&self, now: Instant) -> bool {
        self.until.is_some_and(|u| now < u)
    }
}

/// The node numbers to try, in order: the one held before (so a node that rejoins keeps its
/// number when it can), else one derived from the node id (so nodes starting together spread
/// out instead of racing for 0), then upwards, wrapping; numbers in `taken` are skipped.
pub fn candidates(node_id: &str, preferred: Option<u16>, taken: &BTreeSet<u16>) -> Vec<u16> {
    let start = preferred.unwrap_or_else(|| {
        let h = node_id
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        // NODE_NUMBERS is 1024, so the remainder fits a u16.
        (h % u32::from(NODE_NUMBERS)) as u16
    });
    (0..NODE_NUMBERS)
        .map(|i| (start % NODE_NUMBERS + i) % NODE_NUMBERS)
        .filter(|n| !taken.contains(n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_held_until_sent_plus_ttl() {
        let t0 = Instant::now();
        let mut hold = Hold::default();
        assert!(!hold.held_at(t0));
        hold.renewed(t0, Duration::from_secs(3));
        assert!(hold.held_at(t0 + Duration::from_millis(2999)));
        assert!(!hold.held_at(t0 + Duration::from_secs(3)));
        // An older answer arriving late does not shorten the hold.
        hold.renewed(t0 + Duration::from_secs(2), Duration::from_secs(3));
        hold.renewed(t0, Duration::from_secs(3));
        assert!(hold.held_at(t0 + Duration::from_millis(4999)));
        hold.lost();
        assert!(!hold.held_at(t0));
    }

    #[test]
    fn candidates_start_at_the_preferred_number_and_skip_taken_ones() {
        let taken: BTreeSet<u16> = [5, 6, 1023].into_iter().collect();
        let c = candidates("n", Some(5), &taken);
        assert_eq!(&c[..3], &[7, 8, 9]);
        assert_eq!(c.len(), 1024 - 3);
        let c = candidates("n", Some(1022), &taken);
        assert_eq!(&c[..3], &[1022, 0, 1]);
    }

    #[test]
    fn candidates_without_a_preference_depend_on_the_node_id_only() {
        let none = BTreeSet::new();
        assert_eq!(candidates("a", None, &none), candidates("a", None, &none));
        assert_ne!(
            candidates("a", None, &none)[0],
            candidates("b", None, &none)[0]
        );
        assert_eq!(candidates("a", None, &none).len(), 1024);
    }
}
