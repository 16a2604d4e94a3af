//! Cluster membership and shard ownership on etcd (DESIGN.md, "Cluster"): each node registers
//! under a kept-alive lease (its node number, its member key, one key per service), watches
//! the members, services and shard-claim prefixes for a live view, and claims the shards that
//! rendezvous hashing assigns it, each under a fencing epoch recorded in the database.
//!
//! The logic is plain and unit tested (`keys`, `view`, `shards`, `hold`, `ownership`, the
//! claimer's `plan`); `etcd` and `claims` do the I/O. Callers hold a [`ClusterHandle`]; with no
//! etcd endpoints it describes a single node that owns every shard, unfenced, and touches
//! nothing, so a single node behaves as it did before the cluster existed.

pub mod claims;
pub mod error;
mod etcd;
pub mod hold;
pub mod keys;
mod metrics;
pub mod ownership;
pub mod shards;
pub mod view;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mall_db::{Db, IdGenerator};

pub use error::ClusterError;
pub use keys::{Member, Service};
pub use metrics::ClusterMetrics;
pub use ownership::{Entered, NotOwner, Ownership, Route};
pub use view::View;

use etcd::Registration;
use ownership::OwnershipMetrics;
use view::Change;

/// What a node registers and how (from the `cluster.*` configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// etcd endpoints (`http://host:port` or `host:port`); empty: a single node.
    pub endpoints: Vec<String>,
    /// This node's id (see [`keys::valid_node_id`]).
    pub node_id: String,
    /// The base URL other nodes reach this one at.
    pub advertise_url: String,
    /// The `mall` version.
    pub version: String,
    /// When this process started, RFC 3339.
    pub started_at: String,
    /// The lease's time to live.
    pub lease_ttl: Duration,
    /// Shards of the entity space.
    pub shards: u32,
}

impl Settings {
    /// This node's member value.
    pub fn member(&self) -> Member {
        Member {
            node_id: self.node_id.clone(),
            advertise_url: self.advertise_url.clone(),
            version: self.version.clone(),
            started_at: self.started_at.clone(),
        }
    }
}

/// Whether the registry answers, as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryStatus {
    /// A single node: no registry.
    Disabled,
    /// The last round-trip to etcd succeeded.
    Up,
    /// etcd did not answer the last keep-alive, or the lease is being re-created.
    Down,
}

/// One member and the shards it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberShards {
    /// The member's registered value.
    pub member: Member,
    /// How many shards it owns.
    pub shards: u32,
}

/// The cluster as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The node answering.
    pub node_id: String,
    /// Live members, by node id, with their shard counts.
    pub members: Vec<MemberShards>,
    /// `cluster.shards`.
    pub shards: u32,
    /// The owner of each shard, by shard number (`None` with no member).
    pub owners: Vec<Option<String>>,
}

impl Snapshot {
    /// The snapshot of `view`: who holds a claim on each of `shards` shards.
    pub fn of(node_id: &str, view: &View, shards: u32) -> Snapshot {
        let counts = view.shard_counts();
        Snapshot {
            node_id: node_id.to_owned(),
            members: view
                .members
                .values()
                .map(|m| MemberShards {
                    member: m.clone(),
                    shards: counts.get(&m.node_id).copied().unwrap_or(0),
                })
                .collect(),
            shards,
            owners: (0..shards).map(|s| view.claims.get(&s).cloned()).collect(),
        }
    }
}

/// How long a leaving node waits, after revoking its lease, for the others to claim its shards.
const HANDOVER_WAIT: Duration = Duration::from_secs(3);

/// How often the claimer looks again when nothing changed (a claim may have failed).
const CLAIM_RETRY_EVERY: Duration = Duration::from_millis(500);

/// State shared by the keep-alive and watch tasks and the handle.
struct Shared {
    settings: Settings,
    ids: Arc<IdGenerator>,
    view: RwLock<View>,
    /// The shard table (and the lease's hold) every turn consults.
    ownership: Arc<Ownership>,
    /// Where fencing epochs are recorded.
    db: Db,
    /// Woken at every change of the view: the claimer looks again.
    claimer_wake: tokio::sync::Notify,
    /// The lease to revoke when leaving.
    lease: Mutex<Option<i64>>,
    /// Whether etcd answered the last round-trip.
    up: AtomicBool,
    /// Set once the node leaves: the tasks stop.
    leaving: AtomicBool,
    metrics: ClusterMetrics,
    /// For revoking the lease when leaving.
    client: etcd_client::Client,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain data behind: keep going.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn read_view(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.view
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_view(&self) -> std::sync::RwLockWriteGuard<'_, View> {
        self.view
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A (new) registration succeeded: mint with its number from now on.
    fn registered(&self, r: Registration) {
        self.ids.set_node(r.number);
        *lock(&self.lease) = Some(r.lease);
        self.ownership.renewed(r.granted.0, r.granted.1);
        self.metrics.node_number.set(i64::from(r.number));
        self.metrics.registered.set(1);
        self.mark_up();
    }

    /// A keep-alive of `r`'s lease sent at `sent` was answered with `ttl`.
    fn renewed(&self, r: Registration, sent: Instant, ttl: Duration) {
        self.ownership.renewed(sent, ttl);
        self.metrics.node_number.set(i64::from(r.number));
        self.metrics.registered.set(1);
        self.mark_up();
    }

    /// The lease is gone: stop minting and writing at once; every shard is lost with it.
    fn lost(&self) {
        self.ownership.lost_all();
        self.refollow();
        *lock(&self.lease) = None;
        self.metrics.registered.set(0);
        self.metrics.node_number.set(-1);
    }

    /// A round-trip to etcd failed.
    fn failed(&self, why: &str) {
        self.metrics.keepalive_failures.inc();
        self.metrics.registered.set(0);
        tracing::debug!(error = %why, "etcd round-trip failed");
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(error = %why, endpoints = %self.settings.endpoints.join(","), "registry down: etcd does not answer; serving on, writes stop if the lease cannot be renewed in time");
        }
        if !self.holds_lease() {
            self.metrics.node_number.set(-1);
        }
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            tracing::info!(node_id = %self.settings.node_id, "registry up");
        }
    }

    fn holds_lease(&self) -> bool {
        self.ownership.holds_lease()
    }

    /// The lease the node holds now, if any.
    fn current_lease(&self) -> Option<i64> {
        *lock(&self.lease)
    }

    fn replace_view(&self, view: View) {
        let mut current = self.write_view();
        *current = view;
        self.viewed(&current);
    }

    fn apply(&self, changes: &[Change]) {
        let mut view = self.write_view();
        for change in changes {
            if view.apply(change) {
                tracing::info!(members = ?view.node_ids(), "cluster membership changed");
            }
        }
        self.viewed(&view);
    }

    /// Waits (at most `limit`) until the other members hold every shard: until then they may
    /// still forward requests here, and this node forwards those it receives to the new owners.
    /// Returns at once when no other member is left to claim them.
    async fn handed_over(&self, limit: Duration) {
        let until = Instant::now() + limit;
        let me = &self.settings.node_id;
        while Instant::now() < until {
            {
                let view = self.read_view();
                let others = view.members.keys().any(|n| n != me);
                let claimed = u32::try_from(view.claims.len()).unwrap_or(u32::MAX)
                    >= self.settings.shards
                    && view.claims.values().all(|n| n != me);
                if !others || claimed {
                    return;
                }
            }
            self.ownership
                .changed_within(Duration::from_millis(50))
                .await;
        }
    }

    /// Makes the shards this node does not hold follow the claims in the view again: after it
    /// let one go (released, a claim abandoned, the lease lost), the view may already show the
    /// new holder, and no further change of the view would come to say so.
    fn refollow(&self) {
        let view = self.read_view();
        self.ownership.follow(&view.claims, &self.settings.node_id);
    }

    /// After any change of the view: the shard table follows the claims, and the claimer
    /// looks again.
    fn viewed(&self, view: &View) {
        self.metrics
            .members
            .set(i64::try_from(view.members.len()).unwrap_or(i64::MAX));
        self.ownership.follow(&view.claims, &self.settings.node_id);
        self.claimer_wake.notify_one();
    }
}

enum Mode {
    Single(Settings, Arc<Ownership>),
    // The client lives in `Shared` (boxed by the `Arc`): it is a large value.
    Etcd(Arc<Shared>),
}

/// This node's membership: what the HTTP layer holds.
#[derive(Clone)]
pub struct ClusterHandle {
    mode: Arc<Mode>,
}

impl ClusterHandle {
    /// A single node (no endpoints): lists itself, owns every shard, never stops writing. Its
    /// ownership metrics go to `registry`.
    pub fn single(
        settings: Settings,
        registry: &prometheus::Registry,
    ) -> Result<ClusterHandle, ClusterError> {
        let metrics = OwnershipMetrics::new(registry)?;
        let ownership = Ownership::single_counted(settings.shards, metrics);
        Ok(ClusterHandle {
            mode: Arc::new(Mode::Single(settings, ownership)),
        })
    }

    /// Joins the cluster: registers (retrying for the lease's TTL, then failing with the
    /// endpoints named), points `ids` at the claimed node number, loads the view, and starts
    /// the keep-alive, watch and claimer tasks (epochs are recorded in `db`). Must run inside
    /// a tokio runtime.
    pub async fn join(
        settings: Settings,
        ids: Arc<IdGenerator>,
        db: Db,
        registry: &prometheus::Registry,
    ) -> Result<ClusterHandle, ClusterError> {
        let metrics = ClusterMetrics::new(registry)?;
        let ownership = Ownership::clustered(settings.shards, OwnershipMetrics::new(registry)?);
        let (mut client, registration) = etcd::join(&settings).await?;
        let limit = etcd::call_timeout(settings.lease_ttl);
        let shared = Arc::new(Shared {
            settings,
            ids,
            view: RwLock::new(View::default()),
            ownership,
            db,
            claimer_wake: tokio::sync::Notify::new(),
            lease: Mutex::new(None),
            up: AtomicBool::new(false),
            leaving: AtomicBool::new(false),
            metrics,
            client: client.clone(),
        });
        shared.registered(registration);
        // The first view includes this node: a snapshot right after start-up lists it.
        if let Ok((view, _)) = etcd::list(&mut client, limit).await {
            shared.replace_view(view);
        }
        tracing::info!(
            node_id = %shared.settings.node_id,
            node_number = registration.number,
            lease = registration.lease,
            advertise_url = %shared.settings.advertise_url,
            "registered in etcd"
        );
        tokio::spawn(etcd::keep_alive(
            Arc::clone(&shared),
            client.clone(),
            registration,
        ));
        tokio::spawn(etcd::watch(Arc::clone(&shared), client.clone()));
        tokio::spawn(claims::run(
            Arc::clone(&shared),
            client.clone(),
            CLAIM_RETRY_EVERY,
        ));
        Ok(ClusterHandle {
            mode: Arc::new(Mode::Etcd(shared)),
        })
    }

    fn settings(&self) -> &Settings {
        match &*self.mode {
            Mode::Single(s, _) => s,
            Mode::Etcd(shared) => &shared.settings,
        }
    }

    /// The shard table: who owns what, and this node's fences.
    pub fn ownership(&self) -> &Arc<Ownership> {
        match &*self.mode {
            Mode::Single(_, o) => o,
            Mode::Etcd(shared) => &shared.ownership,
        }
    }

    /// The base URL of the live member `node`.
    pub fn url_of(&self, node: &str) -> Option<String> {
        match &*self.mode {
            Mode::Single(s, _) => (s.node_id == node).then(|| s.advertise_url.clone()),
            Mode::Etcd(shared) => shared.read_view().url_of(node).map(str::to_owned),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.settings().node_id
    }

    /// Whether this node is part of an etcd cluster.
    pub fn clustered(&self) -> bool {
        matches!(&*self.mode, Mode::Etcd(_))
    }

    /// The registry's state for `/readyz`.
    pub fn registry_status(&self) -> RegistryStatus {
        match &*self.mode {
            Mode::Single(..) => RegistryStatus::Disabled,
            Mode::Etcd(shared) if shared.up.load(Ordering::Acquire) => RegistryStatus::Up,
            Mode::Etcd(_) => RegistryStatus::Down,
        }
    }

    /// Whether this node may mint ids and write: always on a single node; in a cluster only
    /// while its lease (and so its node number) is certainly its own.
    pub fn may_write(&self) -> bool {
        match &*self.mode {
            Mode::Single(..) => true,
            Mode::Etcd(shared) => shared.holds_lease(),
        }
    }

    /// The cluster as this node sees it now.
    pub fn snapshot(&self) -> Snapshot {
        match &*self.mode {
            Mode::Single(s, _) => {
                let mut view = View::default();
                view.members.insert(s.node_id.clone(), s.member());
                view.claims = (0..s.shards).map(|n| (n, s.node_id.clone())).collect();
                Snapshot::of(&s.node_id, &view, s.shards)
            }
            Mode::Etcd(shared) => {
                let view = shared.read_view();
                Snapshot::of(&shared.settings.node_id, &view, shared.settings.shards)
            }
        }
    }

    /// Leaves the cluster, handing its shards over: stops claiming, stops serving its shards
    /// to new requests and waits (bounded) for those in flight, then revokes the lease so that
    /// every key of this node (member, services, claims) disappears at once and the new owners
    /// claim the shards. Requests waiting here for a shard then go to its new owner. Idempotent;
    /// a no-op on a single node.
    pub async fn leave(&self) {
        let Mode::Etcd(shared) = &*self.mode else {
            return;
        };
        if shared.leaving.swap(true, Ordering::AcqRel) {
            return;
        }
        claims::release_all(shared).await;
        let lease = lock(&shared.lease).take();
        shared.ownership.lost_all();
        shared.refollow();
        shared.metrics.registered.set(0);
        if let Some(lease) = lease {
            let limit = etcd::call_timeout(shared.settings.lease_ttl);
            match etcd::revoke(&mut shared.client.clone(), lease, limit).await {
                Ok(()) => {
                    tracing::info!(node_id = %shared.settings.node_id, "left the cluster: lease revoked")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not revoke the etcd lease; its keys end with its TTL")
                }
            }
        }
        shared.handed_over(HANDOVER_WAIT).await;
    }
}

/// Reads the cluster from etcd alone (for `mall cluster status`): changes nothing there.
pub async fn read_status(
    endpoints: &[String],
    shards: u32,
    timeout: Duration,
) -> Result<(Snapshot, BTreeMap<String, Vec<String>>), ClusterError> {
    let unreachable = |e: ClusterError| ClusterError::Unreachable {
        endpoints: endpoints.join(","),
        waited_secs: timeout.as_secs(),
        last: e.to_string(),
    };
    let mut client = etcd::connect(endpoints, timeout)
        .await
        .map_err(unreachable)?;
    let (view, _) = etcd::list(&mut client, timeout)
        .await
        .map_err(unreachable)?;
    let services = view
        .members
        .keys()
        .map(|n| {
            (
                n.clone(),
                view.services_of(n).into_iter().map(str::to_owned).collect(),
            )
        })
        .collect();
    Ok((Snapshot::of("", &view, shards), services))
}
