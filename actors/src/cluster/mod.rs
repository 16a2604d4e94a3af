//! Cluster membership on etcd (DESIGN.md, "Cluster"): each node registers under a kept-alive
//! lease (its node number, its member key, one key per service), watches the members and
//! services prefixes for a live view, and computes the shard table from that view.
//!
//! The logic is plain and unit tested (`keys`, `view`, `shards`, `hold`); `etcd` does the I/O.
//! Callers hold a [`ClusterHandle`]; with no etcd endpoints it describes a single node and
//! touches nothing, so a single node behaves as it did before the cluster existed.

pub mod error;
mod etcd;
pub mod hold;
pub mod keys;
mod metrics;
pub mod shards;
pub mod view;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mall_db::IdGenerator;

pub use error::ClusterError;
pub use keys::{Member, Service};
pub use metrics::ClusterMetrics;
pub use view::View;

use etcd::Registration;
use hold::Hold;
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
    /// The snapshot of `view` under rendezvous hashing of `shards` shards.
    pub fn of(node_id: &str, view: &View, shards: u32) -> Snapshot {
        let nodes = view.node_ids();
        let counts = view.shard_counts(shards);
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
            owners: shards::table(shards, &nodes)
                .into_iter()
                .map(|o| o.map(str::to_owned))
                .collect(),
        }
    }
}

/// State shared by the keep-alive and watch tasks and the handle.
struct Shared {
    settings: Settings,
    ids: Arc<IdGenerator>,
    view: RwLock<View>,
    hold: Mutex<Hold>,
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
        lock(&self.hold).renewed(r.granted.0, r.granted.1);
        self.metrics.node_number.set(i64::from(r.number));
        self.metrics.registered.set(1);
        self.mark_up();
    }

    /// A keep-alive of `r`'s lease sent at `sent` was answered with `ttl`.
    fn renewed(&self, r: Registration, sent: Instant, ttl: Duration) {
        lock(&self.hold).renewed(sent, ttl);
        self.metrics.node_number.set(i64::from(r.number));
        self.metrics.registered.set(1);
        self.mark_up();
    }

    /// The lease is gone: stop minting and writing at once.
    fn lost(&self) {
        lock(&self.hold).lost();
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
        lock(&self.hold).held_at(Instant::now())
    }

    fn replace_view(&self, view: View) {
        let members = view.members.len();
        *self.write_view() = view;
        self.metrics
            .members
            .set(i64::try_from(members).unwrap_or(i64::MAX));
    }

    fn apply(&self, changes: &[Change]) {
        let mut view = self.write_view();
        for change in changes {
            if view.apply(change) {
                tracing::info!(members = ?view.node_ids(), "cluster membership changed");
            }
        }
        self.metrics
            .members
            .set(i64::try_from(view.members.len()).unwrap_or(i64::MAX));
    }
}

enum Mode {
    Single(Settings),
    // The client lives in `Shared` (boxed by the `Arc`): it is a large value.
    Etcd(Arc<Shared>),
}

/// This node's membership: what the HTTP layer holds.
#[derive(Clone)]
pub struct ClusterHandle {
    mode: Arc<Mode>,
}

impl ClusterHandle {
    /// A single node (no endpoints): lists itself, owns every shard, never stops writing.
    pub fn single(settings: Settings) -> ClusterHandle {
        ClusterHandle {
            mode: Arc::new(Mode::Single(settings)),
        }
    }

    /// Joins the cluster: registers (retrying for the lease's TTL, then failing with the
    /// endpoints named), points `ids` at the claimed node number, loads the view, and starts
    /// the keep-alive and watch tasks. Must run inside a tokio runtime.
    pub async fn join(
        settings: Settings,
        ids: Arc<IdGenerator>,
        registry: &prometheus::Registry,
    ) -> Result<ClusterHandle, ClusterError> {
        let metrics = ClusterMetrics::new(registry)?;
        let (mut client, registration) = etcd::join(&settings).await?;
        let limit = etcd::call_timeout(settings.lease_ttl);
        let shared = Arc::new(Shared {
            settings,
            ids,
            view: RwLock::new(View::default()),
            hold: Mutex::new(Hold::default()),
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
        Ok(ClusterHandle {
            mode: Arc::new(Mode::Etcd(shared)),
        })
    }

    fn settings(&self) -> &Settings {
        match &*self.mode {
            Mode::Single(s) => s,
            Mode::Etcd(shared) => &shared.settings,
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
            Mode::Single(_) => RegistryStatus::Disabled,
            Mode::Etcd(shared) if shared.up.load(Ordering::Acquire) => RegistryStatus::Up,
            Mode::Etcd(_) => RegistryStatus::Down,
        }
    }

    /// Whether this node may mint ids and write: always on a single node; in a cluster only
    /// while its lease (and so its node number) is certainly its own.
    pub fn may_write(&self) -> bool {
        match &*self.mode {
            Mode::Single(_) => true,
            Mode::Etcd(shared) => !shared.leaving.load(Ordering::Acquire) && shared.holds_lease(),
        }
    }

    /// The cluster as this node sees it now.
    pub fn snapshot(&self) -> Snapshot {
        match &*self.mode {
            Mode::Single(s) => {
                let mut view = View::default();
                view.members.insert(s.node_id.clone(), s.member());
                Snapshot::of(&s.node_id, &view, s.shards)
            }
            Mode::Etcd(shared) => {
                let view = shared.read_view();
                Snapshot::of(&shared.settings.node_id, &view, shared.settings.shards)
            }
        }
    }

    /// Leaves the cluster: stops writing, stops the tasks, and revokes the lease so that every
    /// key of this node disappears at once. Idempotent; a no-op on a single node.
    pub async fn leave(&self) {
        let Mode::Etcd(shared) = &*self.mode else {
            return;
        };
        if shared.leaving.swap(true, Ordering::AcqRel) {
            return;
        }
        let lease = lock(&shared.lease).take();
        lock(&shared.hold).lost();
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
