//! Which shards this node owns, under which fencing epoch, and who holds the others: what a
//! turn asks before it writes ([`Ownership::fence`]), what the sweeper asks before it wakes a
//! deadline ([`Ownership::owns`]) and what the HTTP layer routes by ([`Ownership::route`]).
//!
//! A single node owns every shard with no fence. In a cluster the claimer (`claims.rs`) moves
//! shards in and out, and a shard is served only while the node's lease is certainly held: a
//! node that was paused past its lease refuses every turn at once, before it even learns that
//! the lease is gone.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mall_db::repo::fences::Fence;

use super::hold::Hold;
pub use super::metrics::OwnershipMetrics;
use super::shards;

/// What this node knows of one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// Ours, under this epoch: served here.
    Mine {
        /// The fencing epoch of our claim.
        epoch: i64,
    },
    /// Ours but being handed over: no new turn starts here.
    Releasing {
        /// The epoch of the claim being released.
        epoch: i64,
    },
    /// Being claimed by this node (the claim is in etcd or about to be, its epoch not yet
    /// recorded): requests sent here wait a moment instead of being turned away.
    Acquiring,
    /// Claimed by another node.
    Theirs(String),
    /// Claimed by no one (an owner is being replaced).
    Unclaimed,
}

/// Where a request for a shard goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Served here.
    Local,
    /// Served by this node (its node id).
    Remote(String),
    /// No owner right now: wait for one.
    Unclaimed,
}

/// This node may not act for the shard (another owns it, or no one, or our lease is in doubt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shard {shard} is not owned by this node")]
pub struct NotOwner {
    /// The shard.
    pub shard: u32,
}

/// The shard table of this node.
pub struct Ownership {
    shards: u32,
    clustered: bool,
    slots: RwLock<Vec<Slot>>,
    hold: Mutex<Hold>,
    inflight: Vec<AtomicU32>,
    generation: AtomicU64,
    changed: tokio::sync::watch::Sender<u64>,
    metrics: Option<OwnershipMetrics>,
}

/// A request being served here for a shard; the shard is not handed over while it lives.
pub struct Entered {
    ownership: Arc<Ownership>,
    shard: u32,
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Some(n) = self.ownership.inflight.get(self.shard as usize) {
            n.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Ownership {
    fn new(shards: u32, clustered: bool, metrics: Option<OwnershipMetrics>) -> Arc<Self> {
        let shards = shards.max(1);
        let slot = if clustered {
            Slot::Unclaimed
        } else {
            Slot::Mine { epoch: 0 }
        };
        Arc::new(Ownership {
            shards,
            clustered,
            slots: RwLock::new(vec![slot; shards as usize]),
            hold: Mutex::new(Hold::default()),
            inflight: (0..shards).map(|_| AtomicU32::new(0)).collect(),
            generation: AtomicU64::new(0),
            changed: tokio::sync::watch::Sender::new(0),
            metrics,
        })
    }

    /// A single node: every shard is its own, unfenced.
    pub fn single(shards: u32) -> Arc<Self> {
        Self::new(shards, false, None)
    }

    /// [`Ownership::single`], counted in `metrics` (it owns every shard).
    pub fn single_counted(shards: u32, metrics: OwnershipMetrics) -> Arc<Self> {
        metrics.owned.set(i64::from(shards.max(1)));
        Self::new(shards, false, Some(metrics))
    }

    /// Counts a request forwarded to its shard's owner (`ok`, `failed`).
    pub fn count_forward(&self, outcome: &str) {
        if let Some(m) = &self.metrics {
            m.forwards.with_label_values(&[outcome]).inc();
        }
    }

    /// Counts a 421 got back from a node that was not the owner, and retried.
    pub fn count_misdirected(&self) {
        if let Some(m) = &self.metrics {
            m.misdirected.inc();
        }
    }

    /// A cluster node: owns nothing until the claimer gives it shards.
    pub fn clustered(shards: u32, metrics: OwnershipMetrics) -> Arc<Self> {
        Self::new(shards, true, Some(metrics))
    }

    /// `cluster.shards`.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// Whether this node is one of a cluster (else it owns everything).
    pub fn is_clustered(&self) -> bool {
        self.clustered
    }

    /// The shard of `user_id`.
    pub fn shard_of(&self, user_id: i64) -> u32 {
        shards::of_user(user_id, self.shards)
    }

    fn slots(&self) -> std::sync::RwLockReadGuard<'_, Vec<Slot>> {
        self.slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn slots_mut(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Slot>> {
        self.slots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn hold(&self) -> std::sync::MutexGuard<'_, Hold> {
        self.hold
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the lease is certainly held now (always on a single node).
    pub fn holds_lease(&self) -> bool {
        !self.clustered || self.hold().held_at(Instant::now())
    }

    /// The right to write `shard`'s entities now: `None` on a single node (no fence needed),
    /// the shard's epoch in a cluster, or [`NotOwner`].
    pub fn fence(&self, shard: u32) -> Result<Option<Fence>, NotOwner> {
        if !self.clustered {
            return Ok(None);
        }
        let epoch = match self.slots().get(shard as usize) {
            Some(Slot::Mine { epoch }) => *epoch,
            _ => return Err(NotOwner { shard }),
        };
        if self.holds_lease() {
            Ok(Some(Fence { shard, epoch }))
        } else {
            Err(NotOwner { shard })
        }
    }

    /// Whether this node serves `shard` now.
    pub fn owns(&self, shard: u32) -> bool {
        self.fence(shard).is_ok()
    }

    /// Where a request for `shard` goes now.
    pub fn route(&self, shard: u32) -> Route {
        if self.owns(shard) {
            return Route::Local;
        }
        match self.slots().get(shard as usize) {
            Some(Slot::Theirs(node)) => Route::Remote(node.clone()),
            _ => Route::Unclaimed,
        }
    }

    /// Counts a request served here for `shard`, if this node serves it now.
    pub fn enter(self: &Arc<Self>, shard: u32) -> Option<Entered> {
        let counter = self.inflight.get(shard as usize)?;
        counter.fetch_add(1, Ordering::AcqRel);
        let entered = Entered {
            ownership: Arc::clone(self),
            shard,
        };
        // Counted first, checked second: a release that sees no request in flight after
        // marking the shard cannot miss this one.
        self.owns(shard).then_some(entered)
    }

    /// Changes whenever a shard came or went here: cached entities may be stale after it.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Waits until the table changes, or `limit` passes.
    pub async fn changed_within(&self, limit: Duration) {
        let mut rx = self.changed.subscribe();
        let _ = tokio::time::timeout(limit, rx.changed()).await;
    }

    fn bump(&self, slots: &[Slot]) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        if let Some(m) = &self.metrics {
            let owned = slots
                .iter()
                .filter(|s| matches!(s, Slot::Mine { .. }))
                .count();
            m.owned.set(i64::try_from(owned).unwrap_or(i64::MAX));
        }
        self.changed.send_replace(generation);
    }

    /// A write of `shard` found a newer epoch: another node owns it now. Stops serving it.
    pub fn fenced(&self, shard: u32) {
        if let Some(m) = &self.metrics {
            m.fenced.inc();
        }
        if !self.clustered {
            return;
        }
        let mut slots = self.slots_mut();
        if let Some(slot) = slots.get_mut(shard as usize)
            && matches!(slot, Slot::Mine { .. } | Slot::Releasing { .. })
        {
            tracing::warn!(shard, "fenced off: another node owns this shard now");
            *slot = Slot::Unclaimed;
            self.bump(&slots);
        }
    }

    /// The slot of every shard (for the claimer and the snapshot).
    pub fn table(&self) -> Vec<Slot> {
        self.slots().clone()
    }

    /// The claims seen in etcd: the shards this node does not hold follow them; a shard this
    /// node holds that etcd shows in another's hands is lost.
    pub(super) fn follow(&self, claims: &BTreeMap<u32, String>, me: &str) {
        let mut slots = self.slots_mut();
        let mut changed = false;
        let mut lost = false;
        for (shard, slot) in slots.iter_mut().enumerate() {
            let holder = u32::try_from(shard).ok().and_then(|s| claims.get(&s));
            let next = match (&*slot, holder) {
                (Slot::Mine { .. } | Slot::Releasing { .. }, Some(h)) if h != me => {
                    lost = true;
                    Slot::Theirs(h.clone())
                }
                // Ours (the watch may not have shown our own claim yet): the claimer decides.
                (Slot::Mine { .. } | Slot::Releasing { .. } | Slot::Acquiring, _) => continue,
                (_, Some(h)) if h != me => Slot::Theirs(h.clone()),
                // A claim in our name that we do not serve (an earlier life of this node id):
                // no one serves it until the claimer takes it over.
                _ => Slot::Unclaimed,
            };
            if *slot != next {
                *slot = next;
                changed = true;
            }
        }
        if lost {
            tracing::warn!("a shard this node held is claimed by another node");
        }
        if changed {
            self.bump(&slots);
        }
    }

    /// Whether this node is claiming `shard` right now.
    pub fn acquiring(&self, shard: u32) -> bool {
        matches!(self.slots().get(shard as usize), Some(Slot::Acquiring))
    }

    /// The claimer starts claiming `shard`.
    pub(super) fn begin_acquiring(&self, shard: u32) {
        let mut slots = self.slots_mut();
        if let Some(slot) = slots.get_mut(shard as usize)
            && matches!(slot, Slot::Unclaimed | Slot::Theirs(_))
        {
            *slot = Slot::Acquiring;
            self.bump(&slots);
        }
    }

    /// The claim of `shard` failed: the claims seen in etcd decide again.
    pub(super) fn abandon_acquiring(&self, shard: u32) {
        let mut slots = self.slots_mut();
        if let Some(slot) = slots.get_mut(shard as usize)
            && *slot == Slot::Acquiring
        {
            *slot = Slot::Unclaimed;
            self.bump(&slots);
        }
    }

    /// The claimer won `shard` under `epoch` (recorded in the database): serve it.
    pub fn acquired(&self, shard: u32, epoch: i64) {
        let mut slots = self.slots_mut();
        if let Some(slot) = slots.get_mut(shard as usize) {
            *slot = Slot::Mine { epoch };
            self.bump(&slots);
        }
    }

    /// Starts handing `shard` over: no new request is served here for it.
    pub(super) fn releasing(&self, shard: u32) -> bool {
        let mut slots = self.slots_mut();
        match slots.get(shard as usize) {
            Some(Slot::Mine { epoch }) => {
                let epoch = *epoch;
                slots[shard as usize] = Slot::Releasing { epoch };
                self.bump(&slots);
                true
            }
            _ => false,
        }
    }

    /// Waits (at most `limit`) until no request is being served here for `shard`.
    pub(super) async fn drained(&self, shard: u32, limit: Duration) {
        let until = Instant::now() + limit;
        while self
            .inflight
            .get(shard as usize)
            .is_some_and(|n| n.load(Ordering::Acquire) > 0)
            && Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// `shard`'s claim is gone (released, or our lease ended).
    pub(super) fn released(&self, shard: u32) {
        let mut slots = self.slots_mut();
        if let Some(slot) = slots.get_mut(shard as usize)
            && *slot != Slot::Unclaimed
        {
            *slot = Slot::Unclaimed;
            self.bump(&slots);
        }
    }

    /// Every shard is lost at once (the lease ended, or the node leaves).
    pub(super) fn lost_all(&self) {
        self.hold().lost();
        let mut slots = self.slots_mut();
        for slot in slots.iter_mut() {
            if matches!(
                slot,
                Slot::Mine { .. } | Slot::Releasing { .. } | Slot::Acquiring
            ) {
                *slot = Slot::Unclaimed;
            }
        }
        self.bump(&slots);
    }

    /// A keep-alive sent at `sent` was answered with `ttl`.
    pub fn renewed(&self, sent: Instant, ttl: Duration) {
        self.hold().renewed(sent, ttl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clustered(shards: u32) -> Arc<Ownership> {
        let metrics = OwnershipMetrics::new(&prometheus::Registry::new()).unwrap();
        let o = Ownership::clustered(shards, metrics);
        o.renewed(Instant::now(), Duration::from_secs(60));
        o
    }

    #[test]
    fn a_single_node_owns_everything_without_a_fence() {
        let o = Ownership::single(8);
        assert_eq!(o.fence(3), Ok(None));
        assert_eq!(o.route(7), Route::Local);
        assert!(o.enter(2).is_some());
    }

    #[test]
    fn a_shard_is_served_only_while_held_under_a_live_lease() {
        let o = clustered(4);
        assert_eq!(o.fence(1), Err(NotOwner { shard: 1 }));
        assert_eq!(o.route(1), Route::Unclaimed);
        o.acquired(1, 77);
        assert_eq!(
            o.fence(1),
            Ok(Some(Fence {
                shard: 1,
                epoch: 77
            }))
        );
        assert_eq!(o.route(1), Route::Local);
        // The lease in doubt: nothing is served, though the table still says ours.
        o.hold().lost();
        assert_eq!(o.fence(1), Err(NotOwner { shard: 1 }));
        o.renewed(Instant::now(), Duration::from_secs(60));
        // Fenced by a write: gone at once, and counted.
        o.fenced(1);
        assert!(!o.owns(1));
        assert_eq!(o.metrics.as_ref().unwrap().fenced.get(), 1);
    }

    #[test]
    fn claims_route_to_their_holders_and_a_lost_shard_is_dropped() {
        let o = clustered(4);
        o.acquired(0, 5);
        let g0 = o.generation();
        let claims: BTreeMap<u32, String> = [(0, "me".to_owned()), (2, "b".to_owned())]
            .into_iter()
            .collect();
        o.follow(&claims, "me");
        assert_eq!(o.route(0), Route::Local);
        assert_eq!(o.route(2), Route::Remote("b".into()));
        assert_eq!(o.route(3), Route::Unclaimed);
        assert!(o.generation() > g0);
        // etcd shows our shard in another's hands: it is not ours any more.
        let claims: BTreeMap<u32, String> = [(0, "c".to_owned())].into_iter().collect();
        o.follow(&claims, "me");
        assert_eq!(o.route(0), Route::Remote("c".into()));
        assert_eq!(o.metrics.as_ref().unwrap().owned.get(), 0);
    }

    #[tokio::test]
    async fn a_release_stops_new_requests_and_waits_for_those_in_flight() {
        let o = clustered(2);
        o.acquired(1, 9);
        let entered = o.enter(1).unwrap();
        assert!(o.releasing(1));
        assert!(o.enter(1).is_none(), "no new request once releasing");
        let waiter = {
            let o = Arc::clone(&o);
            tokio::spawn(async move { o.drained(1, Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(entered);
        waiter.await.unwrap();
        o.released(1);
        assert_eq!(o.route(1), Route::Unclaimed);
        o.acquired(0, 3);
        o.lost_all();
        assert!(!o.owns(0));
    }
}
