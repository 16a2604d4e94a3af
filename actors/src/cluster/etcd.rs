//! The etcd side of membership: connecting, registering under a lease (node number, member key,
//! service keys), keeping the lease alive and re-registering when it is lost, watching the
//! members, services and shard-claim prefixes, revoking on shutdown, and the one-shot read behind
//! `mall cluster status`. Every call is bounded by a timeout, so an etcd that hangs looks the
//! same as one that is down.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, LeaseKeepAliveStream,
    LeaseKeeper, PutOptions, Txn, TxnOp, WatchOptions,
};

use super::error::ClusterError;
use super::hold::candidates;
use super::keys::{self, Member, Service};
use super::view::{Change, View};
use super::{Settings, Shared};
use mall_db::ids::NODE_NUMBERS;

/// The parent of every key the registry writes (one consistent listing covers both prefixes).
const ROOT: &str = "/mall/v1/";

/// Bounds one etcd call by `limit`.
pub(super) async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ClusterError::Timeout(limit)),
    }
}

/// How long one call may take: a third of the lease, at most 2 s, so that a dead etcd is
/// noticed well before the lease could end.
pub(super) fn call_timeout(ttl: Duration) -> Duration {
    (ttl / 3).clamp(Duration::from_millis(200), Duration::from_secs(2))
}

/// A client for `endpoints`. tonic connects lazily, so this fails only on a malformed endpoint;
/// HTTP/2 pings make a silently dead connection fail instead of hang.
pub async fn connect(endpoints: &[String], timeout: Duration) -> Result<Client, ClusterError> {
    let options = ConnectOptions::new()
        .with_connect_timeout(timeout)
        .with_timeout(timeout)
        .with_keep_alive(timeout, timeout)
        .with_keep_alive_while_idle(true);
    bounded(timeout, Client::connect(endpoints, Some(options))).await
}

/// One registration: the lease and the node number claimed under it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Registration {
    pub lease: i64,
    pub number: u16,
    /// When the grant was sent and the TTL it returned.
    pub granted: (Instant, Duration),
}

/// Grants a lease, claims a node number (trying `preferred` first), then writes the member
/// and service keys, all under the lease. A failure after the grant revokes the lease (best
/// effort: it would expire anyway).
pub(super) async fn register(
    client: &mut Client,
    settings: &Settings,
    preferred: Option<u16>,
) -> Result<Registration, ClusterError> {
    let limit = call_timeout(settings.lease_ttl);
    let sent = Instant::now();
    let ttl_secs = i64::try_from(settings.lease_ttl.as_secs()).unwrap_or(i64::MAX);
    let grant = bounded(limit, client.lease_grant(ttl_secs, None)).await?;
    let lease = grant.id();
    let granted = (
        sent,
        Duration::from_secs(u64::try_from(grant.ttl()).unwrap_or(0)),
    );
    match write_keys(client, settings, lease, preferred, limit).await {
        Ok(number) => Ok(Registration {
            lease,
            number,
            granted,
        }),
        Err(e) => {
            let _ = bounded(limit, client.lease_revoke(lease)).await;
            Err(e)
        }
    }
}

async fn write_keys(
    client: &mut Client,
    settings: &Settings,
    lease: i64,
    preferred: Option<u16>,
    limit: Duration,
) -> Result<u16, ClusterError> {
    let number = claim_number(client, &settings.node_id, lease, preferred, limit).await?;
    let member = Member {
        node_id: settings.node_id.clone(),
        advertise_url: settings.advertise_url.clone(),
        version: settings.version.clone(),
        started_at: settings.started_at.clone(),
    };
    let service = Service {
        node_id: settings.node_id.clone(),
        address: settings.advertise_url.clone(),
    };
    let with_lease = || Some(PutOptions::new().with_lease(lease));
    let mut ops = vec![TxnOp::put(
        keys::member_key(&settings.node_id),
        json(&member),
        with_lease(),
    )];
    for name in keys::SERVICES {
        ops.push(TxnOp::put(
            keys::service_key(name, &settings.node_id),
            json(&service),
            with_lease(),
        ));
    }
    // A member key left by an earlier life of this node id (a crash and a quick restart) is
    // simply taken over: putting it under the new lease detaches it from the old one.
    bounded(limit, client.txn(Txn::new().and_then(ops))).await?;
    Ok(number)
}

/// A registry value as JSON.
fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Our own plain structs of strings: serialising them cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Claims the first free node number among the candidates, each with a transaction that
/// succeeds only if the key does not exist, so two nodes never hold the same number.
async fn claim_number(
    client: &mut Client,
    node_id: &str,
    lease: i64,
    preferred: Option<u16>,
    limit: Duration,
) -> Result<u16, ClusterError> {
    let listing = bounded(
        limit,
        client.get(
            keys::NODE_NUMBERS_PREFIX,
            Some(GetOptions::new().with_prefix().with_keys_only()),
        ),
    )
    .await?;
    let taken: BTreeSet<u16> = listing
        .kvs()
        .iter()
        .filter_map(|kv| kv.key_str().ok().and_then(keys::parse_node_number_key))
        .collect();
    for number in candidates(node_id, preferred, &taken) {
        let key = keys::node_number_key(number);
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                node_id,
                Some(PutOptions::new().with_lease(lease)),
            )]);
        if bounded(limit, client.txn(txn)).await?.succeeded() {
            return Ok(number);
        }
    }
    Err(ClusterError::NoFreeNumber(NODE_NUMBERS))
}

/// Registers at start-up, retrying until `settings.lease_ttl` has passed.
pub(super) async fn join(settings: &Settings) -> Result<(Client, Registration), ClusterError> {
    let started = Instant::now();
    let limit = call_timeout(settings.lease_ttl);
    loop {
        let attempt = async {
            let mut client = connect(&settings.endpoints, limit).await?;
            let registration = register(&mut client, settings, None).await?;
            Ok::<_, ClusterError>((client, registration))
        };
        match attempt.await {
            Ok(done) => return Ok(done),
            Err(ClusterError::NoFreeNumber(n)) => return Err(ClusterError::NoFreeNumber(n)),
            Err(e) if started.elapsed() >= settings.lease_ttl => {
                return Err(ClusterError::Unreachable {
                    endpoints: settings.endpoints.join(","),
                    waited_secs: started.elapsed().as_secs(),
                    last: e.to_string(),
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, endpoints = %settings.endpoints.join(","), "etcd not reachable yet");
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How often the lease is kept alive: a third of its TTL, at most every second, so that a
/// lost etcd is noticed (and `/readyz` says so) within about a second, and a returning one is
/// used long before the lease could end.
fn keep_alive_every(ttl: Duration) -> Duration {
    (ttl / 3).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// Keeps the lease alive (see [`keep_alive_every`]); notices etcd going away (registry down), the
/// lease ending (re-registers with a new lease, the same node id, and preferably the same node
/// number), and etcd coming back. Runs until the node leaves.
pub(super) async fn keep_alive(shared: Arc<Shared>, mut client: Client, first: Registration) {
    let ttl = shared.settings.lease_ttl;
    let every = keep_alive_every(ttl);
    let limit = call_timeout(ttl);
    let mut current: Option<Registration> = Some(first);
    let mut stream: Option<(LeaseKeeper, LeaseKeepAliveStream)> = None;
    let mut number = Some(first.number);
    loop {
        tokio::time::sleep(every).await;
        if shared.leaving.load(Ordering::Acquire) {
            return;
        }
        let Some(registration) = current else {
            match register(&mut client, &shared.settings, number).await {
                Ok(r) => {
                    shared.registered(r);
                    number = Some(r.number);
                    current = Some(r);
                    stream = None;
                    tracing::info!(node_id = %shared.settings.node_id, node_number = r.number, lease = r.lease, "registered again in etcd");
                }
                Err(e) => shared.failed(&e.to_string()),
            }
            continue;
        };
        let round = if stream.is_none() {
            // Opening the stream is itself a keep-alive round: etcd-client sends one and
            // waits for its answer (an unknown lease is an error there, not a TTL of 0).
            let sent = Instant::now();
            match bounded(limit, client.lease_keep_alive(registration.lease)).await {
                Ok(s) => {
                    stream = Some(s);
                    Round::Renewed(sent, registration.granted.1)
                }
                Err(e) if lease_not_found(&e) => Round::Lost,
                Err(e) => Round::Failed(e.to_string()),
            }
        } else if let Some((keeper, responses)) = stream.as_mut() {
            let sent = Instant::now();
            let exchange = async {
                keeper.keep_alive().await?;
                responses.message().await
            };
            match tokio::time::timeout(limit, exchange).await {
                Ok(Ok(Some(resp))) if resp.ttl() > 0 => Round::Renewed(
                    sent,
                    Duration::from_secs(u64::try_from(resp.ttl()).unwrap_or(0)),
                ),
                Ok(Ok(Some(_))) => Round::Lost,
                Ok(Ok(None)) => Round::Failed("the keep-alive stream ended".into()),
                Ok(Err(e)) => Round::Failed(e.to_string()),
                Err(_) => Round::Failed(format!("no keep-alive answer within {limit:?}")),
            }
        } else {
            continue;
        };
        match round {
            Round::Renewed(sent, ttl) => shared.renewed(registration, sent, ttl),
            Round::Lost => {
                // etcd no longer knows the lease (it expired while we were cut off, or etcd
                // lost its data): our keys and number are gone. Register anew at once.
                tracing::warn!(node_id = %shared.settings.node_id, lease = registration.lease, "etcd lease lost; registering again");
                shared.lost();
                current = None;
                stream = None;
                match register(&mut client, &shared.settings, number).await {
                    Ok(r) => {
                        shared.registered(r);
                        number = Some(r.number);
                        current = Some(r);
                        tracing::info!(node_id = %shared.settings.node_id, node_number = r.number, lease = r.lease, "registered again in etcd");
                    }
                    Err(e) => shared.failed(&e.to_string()),
                }
            }
            Round::Failed(why) => {
                stream = None;
                shared.failed(&why);
            }
        }
    }
}

/// What one keep-alive round found.
enum Round {
    /// The lease lives: sent at, TTL answered.
    Renewed(Instant, Duration),
    /// etcd does not know the lease any more.
    Lost,
    /// No answer (etcd unreachable, the stream broke, a timeout).
    Failed(String),
}

/// Whether `e` is etcd-client's way of saying that the lease no longer exists.
fn lease_not_found(e: &ClusterError) -> bool {
    matches!(e, ClusterError::Etcd(etcd_client::Error::LeaseKeepAliveError(why)) if why.contains("not found"))
}

/// Revokes the lease, which deletes every key registered under it at once.
pub(super) async fn revoke(
    client: &mut Client,
    lease: i64,
    limit: Duration,
) -> Result<(), ClusterError> {
    bounded(limit, client.lease_revoke(lease)).await.map(|_| ())
}

/// Lists the members and services and the revision of that listing.
pub(super) async fn list(
    client: &mut Client,
    limit: Duration,
) -> Result<(View, i64), ClusterError> {
    let resp = bounded(
        limit,
        client.get(ROOT, Some(GetOptions::new().with_prefix())),
    )
    .await?;
    let revision = resp.header().map_or(0, |h| h.revision());
    let view = View::from_listing(
        resp.kvs()
            .iter()
            .filter_map(|kv| Some((kv.key_str().ok()?, kv.value()))),
    );
    Ok((view, revision))
}

/// Keeps `shared`'s view live: lists the prefixes, then watches them from the next revision;
/// on any error (etcd gone, history compacted) lists again after a pause.
pub(super) async fn watch(shared: Arc<Shared>, mut client: Client) {
    let limit = call_timeout(shared.settings.lease_ttl);
    // It runs for the life of the process, through a leave too: requests waiting for the new
    // owners of the shards this node hands over learn of them here.
    loop {
        if let Err(e) = watch_once(&shared, &mut client, limit).await {
            tracing::debug!(error = %e, "cluster watch interrupted; listing again");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn watch_once(
    shared: &Shared,
    client: &mut Client,
    limit: Duration,
) -> Result<(), ClusterError> {
    let (view, revision) = list(client, limit).await?;
    shared.replace_view(view);
    let options = || {
        WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1)
    };
    let mut stream = bounded(limit, client.watch(keys::MEMBERS_PREFIX, Some(options()))).await?;
    bounded(limit, stream.watch(keys::SERVICES_PREFIX, Some(options()))).await?;
    bounded(limit, stream.watch(keys::SHARDS_PREFIX, Some(options()))).await?;
    loop {
        let Some(resp) = stream.message().await? else {
            return Err(ClusterError::Watch("the watch stream ended".into()));
        };
        if resp.canceled() {
            return Err(ClusterError::Watch(format!(
                "the watch was cancelled: {}",
                resp.cancel_reason()
            )));
        }
        let changes: Vec<Change> = resp
            .events()
            .iter()
            .filter_map(|event| {
                let key = event.kv()?.key_str().ok()?.to_owned();
                Some(match event.event_type() {
                    EventType::Put => Change::Put {
                        value: event.kv()?.value().to_vec(),
                        key,
                    },
                    EventType::Delete => Change::Delete { key },
                })
            })
            .collect();
        shared.apply(&changes);
    }
}
