//! One owner per entity across nodes, on a real etcd and PostgreSQL with real `mall` processes:
//! a user's requests spread over the nodes see their own writes at once and reach one
//! activation; a node killed, paused past its lease, restarted or added under load loses no
//! acknowledged write, writes nothing stale, and fails no request it need not fail.
//!
//! The load clients here behave like a careful client of the API: on a connection error they
//! send the same request (with the same `Idempotency-Key`) to another node; where a node may be
//! dying they also wait out 503 `unavailable` (with its `Retry-After`) and 409
//! `idempotency_key_in_use`. Every test polls for what it waits on and sets short deadlines
//! through configuration (a 2 s lease, 32 or 64 shards, a 3 s payment deadline).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mall_actors::runtime::Deadline;
use mall_db::testing::TestDatabase;
use mall_http::forward;
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::commerce::{
    CHECKOUT, GOOD_CARD, ORDERS, PAYMENTS, add_to_cart, address, all_orders, card, cart_lines,
    check_invariants, checked_order, checked_payment, confirm, customers, get_cart, get_order,
    get_payment, id, order_body, order_lines, order_path, payment_path, post_empty, product, stock,
    time_of, tokens,
};
use crate::etcd_instance::EtcdInstance;
use crate::harness::{
    Backend, Server, ServerBuilder, User, assert_keys, eventually, metric, random_secret,
};

const SHARD_KEYS: &str = "/mall/v1/shards/";
const MEMBER_KEYS: &str = "/mall/v1/members/";
const CART: &str = "/api/v1/cart";
const CART_ITEMS: &str = "/api/v1/cart/items";
/// What a node's warnings have in their log line.
const WARN: &str = "\"level\":\"WARN\"";
const CART_ACTIVATIONS: &str = "actor_activations_total{kind=\"cart\"}";
/// The internal endpoint a request for an entity owned elsewhere is forwarded to.
const FORWARD: &str = "/internal/v1/forward";
/// Headers a forged forward might carry; none of them, with any value, may open the door.
const FORGED_SIGNATURES: &[&str] = &[
    "x-mall-signature",
    "x-mall-forward-signature",
    "x-cluster-signature",
    "x-forward-signature",
    "signature",
];
/// How long a load client keeps trying to get an answer to one request.
const ANSWER_BUDGET: Duration = Duration::from_secs(20);
/// How long a patient client keeps retrying a request whose key is in use.
const IN_USE_BUDGET: Duration = Duration::from_secs(5);

/// The base URL of each node slot (`None`: not running); shared with the load clients, which
/// always use the current ones.
type Urls = Arc<RwLock<Vec<Option<String>>>>;

/// Polls `probe` every 50 ms until it returns `Some` or `within` has passed.
async fn poll<T, F, Fut>(within: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if start.elapsed() >= within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sum of every series of metric `name` (with or without labels) whose labels contain
/// `labels` (e.g. `outcome="ok"`; empty: all series).
async fn metric_sum(server: &Server, name: &str, labels: &str) -> f64 {
    let text = server.get("/metrics", None).await.text;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (series, value) = rest.rsplit_once(' ')?;
            if !(series.is_empty() || series.starts_with('{')) || !series.contains(labels) {
                return None;
            }
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

/// Sends a signal to a running node with kill(1).
fn signal(server: &Server, sig: &str) {
    let pid = server.process.pid().expect("the node was reaped");
    let status = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -{sig} {pid}: {status}");
}

/// Connections waiting in the accept queue of the listening socket on `port` (from
/// `/proc/net/tcp`; 0 when it cannot be read).
fn accept_backlog(port: u16) -> usize {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let queued = usize::from_str_radix(f.get(4)?.split(':').nth(1)?, 16).ok()?;
            (local_port == port && *f.get(3)? == "0A").then_some(queued)
        })
        .sum()
}

/// The last `n` lines of a node's log.
fn tail(server: &Server, n: usize) -> String {
    let out = server.process.stdout();
    let lines: Vec<&str> = out.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A TCP proxy in front of etcd for one node: cut, it drops every connection and refuses new
/// ones (the node cannot reach etcd, its clients still reach it); healed, it passes again.
struct EtcdProxy {
    port: u16,
    cut: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl EtcdProxy {
    async fn start(etcd_endpoint: &str) -> EtcdProxy {
        let target = etcd_endpoint.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let (cut, links) = (cut.clone(), links.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if cut.load(Ordering::Acquire) {
                        continue;
                    }
                    let target = target.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    links.lock().unwrap().push(link);
                }
            }
        });
        EtcdProxy {
            port,
            cut,
            links,
            accept,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::Release);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::Release);
    }
}

impl Drop for EtcdProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// One etcd, one PostgreSQL database, and node slots `n1`, `n2`, ... sharing the JWT secret,
/// the admin and the cluster secret. Dropped in field order: the nodes before the database.
struct Cluster {
    nodes: Vec<Option<Server>>,
    /// Nodes stopped or killed, kept for their logs.
    gone: Vec<Server>,
    ids: Vec<String>,
    urls: Urls,
    env: Vec<(String, String)>,
    jwt_secret: String,
    admin_password: String,
    cluster_secret: String,
    shards: usize,
    ttl: u64,
    /// The bootstrap admin's access token.
    admin: String,
    /// With `proxied`, each node's own way to etcd, which the test can cut.
    proxies: Vec<EtcdProxy>,
    db: TestDatabase,
    etcd: EtcdInstance,
}

impl Cluster {
    /// `size` node slots, the first `running` of them started, each shard claimed and every
    /// node agreeing on who holds what; `env` configures every node.
    async fn start(
        size: usize,
        running: usize,
        shards: usize,
        ttl: u64,
        env: &[(&str, &str)],
    ) -> Cluster {
        Self::start_with(size, running, shards, ttl, env, false).await
    }

    /// Same, each node reaching etcd through a proxy of its own when `proxied`.
    async fn start_with(
        size: usize,
        running: usize,
        shards: usize,
        ttl: u64,
        env: &[(&str, &str)],
        proxied: bool,
    ) -> Cluster {
        let etcd = EtcdInstance::start().await;
        let mut proxies = Vec::new();
        if proxied {
            for _ in 0..size {
                proxies.push(EtcdProxy::start(&etcd.endpoint()).await);
            }
        }
        let db = Backend::Postgres.database().await;
        let mut c = Cluster {
            nodes: (0..size).map(|_| None).collect(),
            gone: Vec::new(),
            ids: (1..=size).map(|i| format!("n{i}")).collect(),
            urls: Arc::new(RwLock::new(vec![None; size])),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            jwt_secret: random_secret("jwt"),
            admin_password: random_secret("admin-pw"),
            cluster_secret: random_secret("cluster-secret"),
            shards,
            ttl,
            admin: String::new(),
            proxies,
            db,
            etcd,
        };
        // The first node makes the bootstrap admin; the others start side by side.
        c.start_node(0).await;
        let builders: Vec<ServerBuilder> = (1..running).map(|i| c.builder(i)).collect();
        let started =
            futures_util::future::join_all(builders.into_iter().map(ServerBuilder::start)).await;
        for (i, server) in (1..running).zip(started) {
            c.put(i, server);
        }
        c.admin = c.node(0).admin().await.access;
        c.wait_settled(&(0..running).collect::<Vec<_>>()).await;
        c
    }

    fn builder(&self, i: usize) -> ServerBuilder {
        let mut b = ServerBuilder::new(self.db.url())
            .secret(&self.jwt_secret)
            .env("MALL__BOOTSTRAP__ADMIN_PASSWORD", &self.admin_password)
            .env(
                "MALL__CLUSTER__ETCD_ENDPOINTS",
                &self
                    .proxies
                    .get(i)
                    .map_or_else(|| self.etcd.endpoint(), EtcdProxy::endpoint),
            )
            .env("MALL__CLUSTER__NODE_ID", &self.ids[i])
            .env("MALL__CLUSTER__LEASE_TTL_SECS", &self.ttl.to_string())
            .env("MALL__CLUSTER__SHARDS", &self.shards.to_string())
            .env("MALL__CLUSTER__SECRET", &self.cluster_secret)
            // Several clusters of three run beside the rest of the suite on one PostgreSQL
            // (`max_connections` 100 by default): small pools, waited on (the harness waits
            // 20 s for a connection), so that no node is refused a connection by the server.
            .env("MALL__DATABASE__MAX_CONNECTIONS", "6");
        for (k, v) in &self.env {
            b = b.env(k, v);
        }
        b
    }

    fn put(&mut self, i: usize, server: Server) {
        self.urls.write().unwrap()[i] = Some(server.base.clone());
        self.nodes[i] = Some(server);
    }

    /// Starts node slot `i` (again, with the same node id; on a new port).
    async fn start_node(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "{} is running", self.ids[i]);
        let server = self.builder(i).start().await;
        self.put(i, server);
    }

    /// SIGTERM to node `i`; waits for it to exit 0, then clients stop using its URL.
    async fn stop_node(&mut self, i: usize) {
        let mut server = self.nodes[i].take().expect("the node is running");
        server.process.terminate();
        let status = server.process.wait_exit(Duration::from_secs(40)).await;
        self.urls.write().unwrap()[i] = None;
        assert!(
            status.success(),
            "{} exited with {status} after SIGTERM\n{}",
            self.ids[i],
            tail(&server, 40)
        );
        self.gone.push(server);
    }

    /// SIGKILL to node `i`. Clients keep its URL (and get connection errors) until
    /// [`forget`](Self::forget).
    fn kill_node(&mut self, i: usize) {
        let mut server = self.nodes[i].take().expect("the node is running");
        server.process.kill();
        self.gone.push(server);
    }

    fn forget(&self, i: usize) {
        self.urls.write().unwrap()[i] = None;
    }

    fn node(&self, i: usize) -> &Server {
        self.nodes[i]
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", self.ids[i]))
    }

    fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_some())
            .collect()
    }

    /// The owner of each claimed shard, from etcd.
    async fn shard_owners(&self) -> BTreeMap<usize, String> {
        self.etcd
            .keys(SHARD_KEYS)
            .await
            .into_iter()
            .filter_map(|(key, stored)| {
                let shard = key.strip_prefix(SHARD_KEYS)?.parse().ok()?;
                Some((shard, stored.value.get("node_id")?.as_str()?.to_owned()))
            })
            .collect()
    }

    /// What `GET /api/v1/admin/cluster` on node `i` says each member holds.
    async fn view(&self, i: usize) -> Option<BTreeMap<String, u64>> {
        let r = self
            .node(i)
            .get("/api/v1/admin/cluster", Some(&self.admin))
            .await;
        if r.status != 200 {
            return None;
        }
        let body = r.json();
        body["members"]
            .as_array()?
            .iter()
            .map(|m| Some((m["node_id"].as_str()?.to_owned(), m["shards"].as_u64()?)))
            .collect()
    }

    /// `Some(shards held by each)` once every shard is claimed in etcd by exactly the nodes
    /// `members`, each holding some, and each of them lists exactly that.
    async fn settled(&self, members: &[usize]) -> Option<BTreeMap<String, u64>> {
        let owners = self.shard_owners().await;
        if owners.len() != self.shards {
            return None;
        }
        let mut held: BTreeMap<String, u64> = BTreeMap::new();
        for owner in owners.values() {
            *held.entry(owner.clone()).or_default() += 1;
        }
        let want: BTreeSet<&str> = members.iter().map(|&i| self.ids[i].as_str()).collect();
        if held.keys().map(String::as_str).collect::<BTreeSet<_>>() != want {
            return None;
        }
        for &i in members {
            if self.view(i).await? != held {
                return None;
            }
        }
        Some(held)
    }

    /// Waits (at most the lease and 10 s) until [`settled`](Self::settled).
    async fn wait_settled(&self, members: &[usize]) -> BTreeMap<String, u64> {
        let within = Duration::from_secs(self.ttl + 10);
        if let Some(held) = poll(within, || self.settled(members)).await {
            return held;
        }
        let mut views = String::new();
        for &i in members {
            if self.nodes[i].is_some() {
                views.push_str(&format!("\n{}: {:?}", self.ids[i], self.view(i).await));
            }
        }
        panic!(
            "the shards did not settle on {:?} within {within:?}\netcd owners: {:?}\nviews:{views}\n{}",
            members.iter().map(|&i| &self.ids[i]).collect::<Vec<_>>(),
            self.shard_owners().await,
            self.logs()
        );
    }

    /// The end of every node's log, for failure messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        for server in self.nodes.iter().flatten().chain(&self.gone) {
            out.push_str(&format!(
                "--- {} (last lines) ---\n{}\n",
                server.base,
                tail(server, 30)
            ));
        }
        out
    }

    /// The log lines of every node (stopped ones too) that contain `needle`, at most 20.
    fn grep(&self, needle: &str) -> String {
        let mut out = Vec::new();
        for server in self.nodes.iter().flatten().chain(&self.gone) {
            let log = server.process.stdout();
            out.extend(
                log.lines()
                    .filter(|l| l.contains(needle))
                    .map(|l| format!("{}: {l}", server.base)),
            );
        }
        out.truncate(20);
        out.join("\n")
    }

    /// Two products with `stock` each, made by the admin.
    async fn products(&self, stock: i64) -> (String, String) {
        let a = product(self.node(0), &self.admin, "Cluster A", 1_250, stock).await;
        let b = product(self.node(0), &self.admin, "Cluster B", 990, stock).await;
        (a, b)
    }
}

/// Cart activations on each running node.
async fn activations(c: &Cluster) -> BTreeMap<usize, f64> {
    let mut out = BTreeMap::new();
    for i in c.running() {
        out.insert(i, metric(c.node(i), CART_ACTIVATIONS).await);
    }
    out
}

/// The node owning each user's cart: the one whose cart activations go up when the cart is
/// first touched (`POST /cart` through the first running node); exactly one must.
async fn owners_of(c: &Cluster, users: &[User]) -> Vec<usize> {
    let first = c.running()[0];
    let mut owners = Vec::new();
    for user in users {
        let before = activations(c).await;
        post_empty(c.node(first), user.access(), CART)
            .await
            .expect(200);
        let after = activations(c).await;
        let grew: Vec<usize> = after
            .iter()
            .filter(|(i, n)| **n > before[*i])
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(
            grew.len(),
            1,
            "touching one cart activated carts on nodes {grew:?} (want exactly one): {before:?} -> {after:?}"
        );
        owners.push(grew[0]);
    }
    owners
}

/// The node owning most of `owners`, and the others.
fn victim_of(owners: &[usize], nodes: usize) -> (usize, Vec<usize>) {
    let victim = (0..nodes)
        .max_by_key(|n| owners.iter().filter(|o| *o == n).count())
        .unwrap();
    (victim, (0..nodes).filter(|&n| n != victim).collect())
}

/// One answer as a client saw it.
struct Raw {
    status: u16,
    retry_after: bool,
    body: Value,
}

impl Raw {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// 503 `unavailable` with `Retry-After`: what the contract allows while an owner changes.
    fn unavailable(&self) -> bool {
        self.status == 503 && self.code() == "unavailable" && self.retry_after
    }
}

async fn raw(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> Result<Raw, reqwest::Error> {
    let mut rb = http.request(method, url).bearer_auth(token);
    if let Some(k) = key {
        rb = rb.header("Idempotency-Key", k);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let resp = rb.send().await?;
    let status = resp.status().as_u16();
    let retry_after = resp.headers().contains_key("retry-after");
    let text = resp.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Raw {
        status,
        retry_after,
        body,
    })
}

/// A client with no connection reuse: every request opens a connection, so a node that stops
/// accepting is a connection error, not a request lost on a stale connection.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .unwrap()
}

/// An answer after failover.
struct Answer {
    what: String,
    node: usize,
    status: u16,
    body: Value,
    /// An earlier attempt failed after it may have reached a node.
    unsure: bool,
    failovers: u64,
    /// 503 `unavailable` and 409 `idempotency_key_in_use` answers waited out.
    waits: u64,
    /// When the answering attempt was sent, and how long it took.
    sent_at: OffsetDateTime,
    took: Duration,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    fn describe(&self) -> String {
        format!(
            "{} via n{} at {} (took {:?}): {} {}",
            self.what,
            self.node + 1,
            self.sent_at,
            self.took,
            self.status,
            self.body
        )
    }
}

/// A client of the whole cluster: on a connection error it sends the same request to the next
/// node; `patient`, it also waits out 503 `unavailable` (with `Retry-After`) and 409
/// `idempotency_key_in_use`.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    urls: Urls,
    patient: bool,
}

impl Client {
    fn new(urls: Urls, patient: bool) -> Client {
        Client {
            http: http_client(),
            urls,
            patient,
        }
    }

    async fn send(
        &self,
        first: usize,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Answer, String> {
        let what = format!("{method} {path}");
        let started = Instant::now();
        let mut errors: Vec<String> = Vec::new();
        let (mut unsure, mut failovers, mut waits) = (false, 0, 0);
        let mut attempt = 0usize;
        let mut in_use_since: Option<Instant> = None;
        loop {
            let urls = self.urls.read().unwrap().clone();
            let node = (first + attempt) % urls.len();
            attempt += 1;
            if let Some(base) = &urls[node] {
                let url = format!("{base}{path}");
                let (sent_at, sent) = (OffsetDateTime::now_utc(), Instant::now());
                match raw(&self.http, method.clone(), &url, token, body, key).await {
                    Ok(r) => {
                        // The owner stopped while serving it: it may have taken effect.
                        unsure |=
                            r.status == 503 && r.body["error"]["details"]["outcome"] == "unknown";
                        let wait = self.patient
                            && (r.unavailable()
                                || (r.status == 409 && r.code() == "idempotency_key_in_use"));
                        if !wait {
                            return Ok(Answer {
                                what,
                                node,
                                status: r.status,
                                body: r.body,
                                unsure,
                                failovers,
                                waits,
                                sent_at,
                                took: sent.elapsed(),
                            });
                        }
                        waits += 1;
                        errors.push(format!("n{}: {} {}", node + 1, r.status, r.code()));
                        if r.status == 409 {
                            // A key claimed by a node that died stays claimed for a while
                            // (`ABANDONED_AFTER`); give up on it sooner than on an owner.
                            let since = *in_use_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > IN_USE_BUDGET {
                                return Err(format!(
                                    "{what}: still 409 idempotency_key_in_use after {IN_USE_BUDGET:?} ({} attempts)",
                                    errors.len()
                                ));
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => {
                        unsure |= !e.is_connect();
                        failovers += 1;
                        errors.push(format!("n{}: {e}", node + 1));
                    }
                }
            }
            if started.elapsed() > ANSWER_BUDGET {
                let last = &errors[errors.len().saturating_sub(8)..];
                return Err(format!(
                    "{what}: no answer within {ANSWER_BUDGET:?} ({} attempts; last: {last:?})",
                    errors.len()
                ));
            }
            if attempt.is_multiple_of(urls.len()) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// What one user's requests did, as the client saw them.
#[derive(Default, Debug)]
struct Ledger {
    /// `POST /cart/items` of one unit of A answered 200.
    adds: i64,
    /// Adds that may have been applied once more than answered (an attempt that failed after
    /// it may have reached a node), or applied without an answer.
    unsure_adds: i64,
    /// Units of A in the orders checkout answered with.
    checked_out: i64,
    /// A checkout got no answer: its order (if any) is unknown to the client.
    lost_checkout: bool,
    /// Orders answered 201 (by checkout or `POST /orders`).
    orders: Vec<String>,
    /// Orders whose payment was answered `succeeded`.
    paid: Vec<String>,
}

/// What a load worker saw.
#[derive(Default, Debug)]
struct Tally {
    requests: u64,
    /// Answers by node slot.
    served: Vec<u64>,
    failovers: u64,
    unsure: u64,
    waits: u64,
    /// Answers the test did not allow, and (strict) requests with no answer.
    failures: Vec<String>,
    /// (Crash) requests with no answer after the whole budget.
    unanswered: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        if self.served.len() < other.served.len() {
            self.served.resize(other.served.len(), 0);
        }
        for (i, n) in other.served.into_iter().enumerate() {
            self.served[i] += n;
        }
        self.failovers += other.failovers;
        self.unsure += other.unsure;
        self.waits += other.waits;
        self.failures.extend(other.failures);
        self.unanswered.extend(other.unanswered);
    }
}

/// How a load treats what it gets back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Nodes leave gracefully or join: every request is answered 2xx, after failover on
    /// connection errors only.
    Strict,
    /// A node dies: 503 `unavailable` and a key in use are waited out, a payment may find its
    /// order expired (409 `invalid_state`), and a request may end unanswered.
    Crash,
}

/// A load of several users, each driven by one worker at a time through every node in turn:
/// add a unit of A to the cart, read the cart back through another node, every third round
/// check out (with a card, or paying after), every other round order a unit of B, read it
/// back, and (three times in four) pay it.
struct Load {
    stop: Arc<AtomicBool>,
    rounds: Vec<Arc<AtomicUsize>>,
    tasks: Vec<tokio::task::JoinHandle<WorkerReport>>,
}

/// The ledgers of a worker's users (by user index) and its tally.
type WorkerReport = (Vec<(usize, Ledger)>, Tally);

struct Worker {
    index: usize,
    client: Client,
    users: Vec<(usize, User)>,
    a: String,
    b: String,
    mode: Mode,
    nodes: usize,
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
}

impl Load {
    fn start(c: &Cluster, users: &[User], a: &str, b: &str, workers: usize, mode: Mode) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut rounds = Vec::new();
        let mut tasks = Vec::new();
        for w in 0..workers {
            let counter = Arc::new(AtomicUsize::new(0));
            rounds.push(counter.clone());
            let worker = Worker {
                index: w,
                client: Client::new(c.urls.clone(), mode == Mode::Crash),
                users: users
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % workers == w)
                    .map(|(i, u)| (i, u.clone()))
                    .collect(),
                a: a.to_owned(),
                b: b.to_owned(),
                mode,
                nodes: c.nodes.len(),
                stop: stop.clone(),
                rounds: counter,
            };
            tasks.push(tokio::spawn(worker.run()));
        }
        Load {
            stop,
            rounds,
            tasks,
        }
    }

    /// Rounds (a step of each of its users) the slowest worker has finished.
    fn rounds(&self) -> usize {
        self.rounds
            .iter()
            .map(|r| r.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// Waits until every worker has finished `more` rounds from now.
    async fn more_rounds(&self, more: usize, c: &Cluster, what: &str) {
        let target = self.rounds() + more;
        let (ok, took) = eventually(Duration::from_secs(30), || async {
            self.rounds() >= target
        })
        .await;
        assert!(
            ok,
            "{what}: the load did not make {more} more rounds within {took:?} (at {} of {target})\n{}",
            self.rounds(),
            c.logs()
        );
    }

    async fn stop(self) -> (HashMap<usize, Ledger>, Tally) {
        self.stop.store(true, Ordering::Release);
        let mut ledgers = HashMap::new();
        let mut tally = Tally::default();
        for task in self.tasks {
            let (l, t) = task.await.expect("a load worker panicked");
            ledgers.extend(l);
            tally.merge(t);
        }
        (ledgers, tally)
    }
}

impl Worker {
    async fn run(self) -> WorkerReport {
        let mut ledgers: Vec<Ledger> = self.users.iter().map(|_| Ledger::default()).collect();
        let mut tally = Tally {
            served: vec![0; self.nodes],
            ..Tally::default()
        };
        let mut turn = self.index;
        let mut step = 0usize;
        while !self.stop.load(Ordering::Acquire) {
            let u = step % self.users.len();
            let round = step / self.users.len();
            let user = self.users[u].1.clone();
            self.step(&user, round, &mut ledgers[u], &mut tally, &mut turn)
                .await;
            step += 1;
            if step.is_multiple_of(self.users.len()) {
                self.rounds
                    .store(step / self.users.len(), Ordering::Release);
            }
        }
        let ledgers = self.users.iter().map(|(i, _)| *i).zip(ledgers).collect();
        (ledgers, tally)
    }

    /// Sends one request through the next node; `None` (recorded) without an answer.
    #[expect(clippy::too_many_arguments, reason = "one request, spelled out")]
    async fn call(
        &self,
        tally: &mut Tally,
        turn: &mut usize,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Option<Answer> {
        *turn += 1;
        tally.requests += 1;
        match self
            .client
            .send(*turn, method, path, token, body, key)
            .await
        {
            Ok(a) => {
                tally.served[a.node] += 1;
                tally.failovers += a.failovers;
                tally.waits += a.waits;
                tally.unsure += u64::from(a.unsure);
                Some(a)
            }
            Err(e) => {
                match self.mode {
                    Mode::Strict => tally.failures.push(e),
                    Mode::Crash => tally.unanswered.push(e),
                }
                None
            }
        }
    }

    /// Whether `a` is one of `allowed` (status, error code or "" for any); records a failure
    /// otherwise.
    /// Confirms payment `payment_id` with the good card under `key`: true when it succeeded
    /// (an answer outside `ok`, or a 200 that is not a success, is a failure of the tally).
    async fn confirm(
        &self,
        tally: &mut Tally,
        turn: &mut usize,
        t: &str,
        payment_id: &str,
        key: &str,
        ok: &[(u16, &str)],
    ) -> bool {
        let path = format!("{}/confirm", payment_path(payment_id));
        let body = card(GOOD_CARD);
        let Some(a) = self
            .call(tally, turn, Method::POST, &path, t, Some(&body), Some(key))
            .await
        else {
            return false;
        };
        if !self.allowed(tally, &a, ok) || a.status != 200 {
            return false;
        }
        if a.body["status"] == "succeeded" {
            return true;
        }
        tally.failures.push(a.describe());
        false
    }

    fn allowed(&self, tally: &mut Tally, a: &Answer, allowed: &[(u16, &str)]) -> bool {
        let ok = allowed
            .iter()
            .any(|(s, code)| a.status == *s && (code.is_empty() || a.code() == *code));
        if !ok {
            tally.failures.push(a.describe());
        }
        ok
    }

    /// Units of A in a cart.
    fn a_in(&self, cart: &Value) -> i64 {
        cart_lines(cart)
            .into_iter()
            .filter(|(p, _)| *p == self.a)
            .map(|(_, q)| q)
            .sum()
    }

    /// Records a failure unless `cart` reflects every acknowledged add.
    fn check_cart(&self, tally: &mut Tally, l: &Ledger, cart: &Value, what: &str) {
        if l.lost_checkout {
            return;
        }
        let seen = self.a_in(cart) + l.checked_out;
        if seen < l.adds || seen > l.adds + l.unsure_adds {
            tally.failures.push(format!(
                "{what}: {seen} units of A in the cart and checked out, after {} acknowledged adds ({} unsure): {cart}",
                l.adds, l.unsure_adds
            ));
        }
    }

    async fn step(
        &self,
        user: &User,
        round: usize,
        l: &mut Ledger,
        tally: &mut Tally,
        turn: &mut usize,
    ) {
        let t = user.access();
        let crash = self.mode == Mode::Crash;
        let add = json!({"product_id": self.a, "quantity": 1});
        match self
            .call(tally, turn, Method::POST, CART_ITEMS, t, Some(&add), None)
            .await
        {
            Some(a) if self.allowed(tally, &a, &[(200, "")]) => {
                l.adds += 1;
                l.unsure_adds += i64::from(a.unsure);
                self.check_cart(tally, l, &a.body, &a.describe());
            }
            Some(_) => {}
            None => l.unsure_adds += 1,
        }
        // Read your writes, through another node.
        if let Some(a) = self
            .call(tally, turn, Method::GET, CART, t, None, None)
            .await
            && self.allowed(tally, &a, &[(200, "")])
        {
            self.check_cart(tally, l, &a.body, &a.describe());
        }

        if round % 3 == 2 {
            let mut body = json!({"address": address()});
            if round.is_multiple_of(2) {
                body["card"] = card(GOOD_CARD);
            }
            let key = format!("checkout-{round}");
            let Some(a) = self
                .call(
                    tally,
                    turn,
                    Method::POST,
                    CHECKOUT,
                    t,
                    Some(&body),
                    Some(&key),
                )
                .await
            else {
                l.lost_checkout = true;
                return;
            };
            if !self.allowed(tally, &a, &[(201, "")]) {
                return;
            }
            let order = &a.body["order"];
            let order_id = id(order);
            l.orders.push(order_id.clone());
            l.checked_out += order_lines(order)
                .into_iter()
                .filter(|(p, _)| *p == self.a)
                .map(|(_, q)| q)
                .sum::<i64>();
            let payment = &a.body["payment"];
            if payment["status"] == "succeeded" {
                l.paid.push(order_id);
            } else {
                let key = format!("checkout-confirm-{round}");
                let mut ok: Vec<(u16, &str)> = vec![(200, "")];
                if crash {
                    ok.push((409, "invalid_state"));
                }
                if self.confirm(tally, turn, t, &id(payment), &key, &ok).await {
                    l.paid.push(order_id);
                }
            }
        }

        if round % 2 == 1 {
            let key = format!("order-{round}");
            let body = order_body(&[(&self.b, 1)]);
            let Some(a) = self
                .call(
                    tally,
                    turn,
                    Method::POST,
                    ORDERS,
                    t,
                    Some(&body),
                    Some(&key),
                )
                .await
            else {
                return;
            };
            if !self.allowed(tally, &a, &[(201, "")]) {
                return;
            }
            let order_id = id(&a.body);
            l.orders.push(order_id.clone());
            // The order, at once, through another node.
            if let Some(a) = self
                .call(
                    tally,
                    turn,
                    Method::GET,
                    &order_path(&order_id),
                    t,
                    None,
                    None,
                )
                .await
                && self.allowed(tally, &a, &[(200, "")])
                && a.body["status"] != "pending_payment"
                && !(crash && a.body["status"] == "cancelled")
            {
                tally
                    .failures
                    .push(format!("a new order is not pending: {}", a.describe()));
            }
            if round % 4 == 3 {
                return;
            }
            let mut ok: Vec<(u16, &str)> = vec![(200, ""), (201, "")];
            if crash {
                ok.push((409, "invalid_state"));
            }
            let key = format!("pay-{round}");
            let open = json!({"order_id": order_id});
            let Some(a) = self
                .call(
                    tally,
                    turn,
                    Method::POST,
                    PAYMENTS,
                    t,
                    Some(&open),
                    Some(&key),
                )
                .await
            else {
                return;
            };
            if !self.allowed(tally, &a, &ok) || a.status == 409 {
                return;
            }
            let key = format!("confirm-{round}");
            ok.retain(|(s, _)| *s != 201);
            if self.confirm(tally, turn, t, &id(&a.body), &key, &ok).await {
                l.paid.push(order_id);
            }
        }
    }
}

/// Checks through `server` that no acknowledged write of the load is lost: every order answered
/// 201 exists, every one answered paid is paid, every acknowledged add is in the cart or in an
/// order; and the stock and payment invariants over every order of `users`.
async fn verify(
    server: &Server,
    users: &[User],
    ledgers: &HashMap<usize, Ledger>,
    products: &[(String, i64)],
) {
    let a = &products[0].0;
    for (i, user) in users.iter().enumerate() {
        let l = &ledgers[&i];
        let orders = all_orders(server, user.access()).await;
        let status: HashMap<String, String> = orders
            .iter()
            .map(|o| (id(o), o["status"].as_str().unwrap().to_owned()))
            .collect();
        for order in &l.orders {
            assert!(
                status.contains_key(order),
                "{}: acknowledged order {order} is gone; orders: {status:?}",
                user.email
            );
        }
        for order in &l.paid {
            assert_eq!(
                status[order], "paid",
                "{}: order {order} was answered paid",
                user.email
            );
        }
        let in_orders: i64 = orders
            .iter()
            .flat_map(order_lines)
            .filter(|(p, _)| p == a)
            .map(|(_, q)| q)
            .sum();
        let in_cart: i64 = cart_lines(&get_cart(server, user.access()).await)
            .into_iter()
            .filter(|(p, _)| p == a)
            .map(|(_, q)| q)
            .sum();
        let seen = in_orders + in_cart;
        assert!(
            l.adds <= seen && seen <= l.adds + l.unsure_adds,
            "{}: {seen} units of A in orders ({in_orders}) and cart ({in_cart}) after {} acknowledged adds ({} unsure): {l:?}",
            user.email,
            l.adds,
            l.unsure_adds
        );
    }
    check_invariants(server, products, &tokens(users)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_spread_over_three_nodes_sees_their_own_writes_at_once() {
    let c = Cluster::start(3, 3, 32, 2, &[]).await;
    let (n1, n2, n3) = (c.node(0), c.node(1), c.node(2));

    // Each shard is claimed under its owner's lease, and each node counts what it holds.
    let members = c.etcd.keys(MEMBER_KEYS).await;
    let mut held: BTreeMap<String, f64> = BTreeMap::new();
    for (key, stored) in c.etcd.keys(SHARD_KEYS).await {
        assert_keys(&stored.value, &["node_id"], &key);
        let owner = stored.value["node_id"].as_str().unwrap().to_owned();
        let member = members
            .get(&format!("{MEMBER_KEYS}{owner}"))
            .unwrap_or_else(|| panic!("{key} is held by {owner}, not a member: {members:?}"));
        assert_eq!(
            stored.lease, member.lease,
            "{key} is not held under {owner}'s lease"
        );
        *held.entry(owner).or_default() += 1.0;
    }
    for i in 0..3 {
        assert_eq!(
            metric(c.node(i), "cluster_shards_owned").await,
            held[&c.ids[i]],
            "cluster_shards_owned on {}",
            c.ids[i]
        );
    }

    let p = product(n1, &c.admin, "Spread", 1_250, 50).await;
    let user = n1.new_user("spread").await;
    let t = user.access();
    let want = |q: i64| vec![(p.clone(), q)];

    let added = add_to_cart(n2, t, &p, 2).await;
    assert_eq!(cart_lines(&added), want(2), "n2's answer to the add");
    assert_eq!(
        cart_lines(&get_cart(n3, t).await),
        want(2),
        "n3, right after n2's add"
    );
    let set = n3
        .put(
            &format!("{CART_ITEMS}/{p}"),
            Some(t),
            &json!({"quantity": 3}),
        )
        .await
        .expect(200);
    assert_eq!(cart_lines(&set), want(3), "n3's answer to the change");
    assert_eq!(
        cart_lines(&get_cart(n1, t).await),
        want(3),
        "n1, right after n3's change"
    );

    let placed = n1
        .post(CHECKOUT, Some(t), &json!({"address": address()}))
        .await
        .expect(201);
    let order = checked_order(placed["order"].clone());
    let payment = checked_payment(placed["payment"].clone());
    let order_id = id(&order);
    assert_eq!(order["status"], "pending_payment");
    assert_eq!(order_lines(&order), want(3));
    assert_eq!(payment["status"], "pending");
    for n in [n2, n3] {
        let seen = get_order(n, t, &order_id).await;
        assert_eq!(seen["status"], "pending_payment", "{}: {seen}", n.base);
        assert_eq!(order_lines(&seen), want(3), "{}: {seen}", n.base);
        assert_eq!(
            cart_lines(&get_cart(n, t).await),
            vec![],
            "{}: the cart checkout emptied",
            n.base
        );
    }
    let paid = confirm(n3, t, &id(&payment), &card(GOOD_CARD))
        .await
        .expect(200);
    assert_eq!(paid["status"], "succeeded", "{paid}");
    assert_eq!(get_order(n1, t, &order_id).await["status"], "paid");
    assert_eq!(
        get_payment(n2, t, &id(&payment)).await["status"],
        "succeeded"
    );
    assert_eq!(stock(n2, &p).await, 47);
    // An admin reads the order through every node: it lives on its buyer's shard, not the
    // admin's, wherever the request lands.
    for i in 0..3 {
        let seen = c
            .node(i)
            .get(&order_path(&order_id), Some(&c.admin))
            .await
            .expect(200);
        assert_eq!(
            seen["status"],
            "paid",
            "the admin's read through n{}",
            i + 1
        );
    }

    // At least one of the three was not the owner, so requests were forwarded, and none failed.
    let mut ok = 0.0;
    for i in 0..3 {
        ok += metric_sum(c.node(i), "cluster_forwards_total", "outcome=\"ok\"").await;
        assert_eq!(
            metric_sum(c.node(i), "cluster_forwards_total", "outcome=\"failed\"").await,
            0.0,
            "failed forwards on {}",
            c.ids[i]
        );
    }
    assert!(ok > 0.0, "no node forwarded anything\n{}", c.logs());

    // The internal endpoint wants the cluster's signature, whatever the user's token: none,
    // garbage, or one made with another secret is 403 and changes nothing.
    let add = json!({"product_id": p, "quantity": 5});
    let add_bytes = serde_json::to_vec(&add).unwrap();
    let deadline = serde_json::to_string(&Deadline::after(Duration::from_secs(30))).unwrap();
    let sign = |secret: &str, method: &Method, path: &str, body: &[u8]| {
        let method = actix_web::http::Method::from_bytes(method.as_str().as_bytes()).unwrap();
        forward::sign(secret.as_bytes(), &method, path, &deadline, body)
    };
    let forged = sign(
        "another-secret-entirely",
        &Method::POST,
        CART_ITEMS,
        &add_bytes,
    );
    for n in [n1, n2, n3] {
        let post = || {
            n.request(Method::POST, &format!("{FORWARD}{CART_ITEMS}"))
                .bearer(t)
                .json(&add)
        };
        let mut attempts = vec![
            post(),
            n.request(Method::GET, &format!("{FORWARD}{CART}"))
                .bearer(t),
            post()
                .header(forward::DEADLINE_HEADER, &deadline)
                .header(forward::SIGNATURE_HEADER, &forged),
            post()
                .header(forward::DEADLINE_HEADER, &deadline)
                .header(forward::SIGNATURE_HEADER, "not hex at all"),
        ];
        for header in FORGED_SIGNATURES {
            attempts.push(
                post()
                    .header(forward::DEADLINE_HEADER, &deadline)
                    .header(header, "0123456789abcdef0123456789abcdef"),
            );
        }
        for req in attempts {
            req.send().await.expect_error(403, "forbidden");
        }
    }
    // The same door opens with the cluster's own signature: the owner serves the read (a node
    // that does not own the cart says so with 421 instead of forwarding again).
    let signed = sign(&c.cluster_secret, &Method::GET, CART, b"");
    let mut served = 0;
    for n in [n1, n2, n3] {
        let r = n
            .request(Method::GET, &format!("{FORWARD}{CART}"))
            .bearer(t)
            .header(forward::DEADLINE_HEADER, &deadline)
            .header(forward::SIGNATURE_HEADER, &signed)
            .send()
            .await;
        match r.status {
            200 => served += 1,
            421 => {}
            other => panic!("{}: a signed forward got {other} {}", r.what, r.text),
        }
    }
    assert_eq!(served, 1, "exactly the owner serves a signed forward");
    for n in [n1, n2, n3] {
        assert_eq!(
            cart_lines(&get_cart(n, t).await),
            vec![],
            "{}: an unsigned forward changed the cart",
            n.base
        );
        assert_eq!(all_orders(n, t).await.len(), 1);
    }
    assert_eq!(stock(n3, &p).await, 47);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_hammered_through_every_node_is_served_by_one_activation() {
    let c = Cluster::start(3, 3, 32, 2, &[]).await;
    let p = product(c.node(0), &c.admin, "Hammer", 500, 1_000).await;
    let user = c.node(0).new_user("hammer").await;
    let t = user.access();
    let per_node = 20;
    let body = json!({"product_id": p, "quantity": 1});
    let adds = (0..3).flat_map(|n| (0..per_node).map(move |_| n)).map(|n| {
        let (server, body) = (c.node(n), &body);
        async move { (n, server.post(CART_ITEMS, Some(t), body).await) }
    });
    let answers = futures_util::future::join_all(adds).await;
    let bad: Vec<String> = answers
        .iter()
        .filter(|(_, r)| r.status != 200)
        .map(|(n, r)| format!("via n{}: {} {}", n + 1, r.status, r.text))
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} adds were not 200: {bad:#?}\n{}",
        bad.len(),
        answers.len(),
        c.grep(WARN)
    );
    let total = i64::try_from(answers.len()).unwrap();
    for i in 0..3 {
        assert_eq!(
            cart_lines(&get_cart(c.node(i), t).await),
            vec![(p.clone(), total)],
            "the cart through {}",
            c.ids[i]
        );
    }
    let activations = activations(&c).await;
    assert_eq!(
        activations.values().filter(|n| **n > 0.0).count(),
        1,
        "the cart was activated on more than one node (or none): {activations:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_no_acknowledged_write() {
    let ttl = 2;
    let stock_each = 1_000_000;
    let mut c = Cluster::start(3, 3, 32, ttl, &[("MALL__ORDER__PAYMENT_TIMEOUT_SECS", "3")]).await;
    let (a, b) = c.products(stock_each).await;
    let users = customers(c.node(0), "crash", 9).await;
    let owners = owners_of(&c, &users).await;
    let (victim, survivors) = victim_of(&owners, 3);

    let load = Load::start(&c, &users, &a, &b, 3, Mode::Crash);
    load.more_rounds(2, &c, "before the kill").await;
    // Unpaid orders of every user, each placed on its owner, due in 3 s; then the kill.
    let mut due = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let order = checked_order(
            c.node(owners[i])
                .post(ORDERS, Some(user.access()), &order_body(&[(&b, 1)]))
                .await
                .expect(201),
        );
        let expires_at = time_of(&order["expires_at"], "expires_at");
        due.push((i, id(&order), expires_at));
    }
    c.kill_node(victim);

    // The survivors take the dead node's shards once its lease ends, under load.
    c.wait_settled(&survivors).await;
    load.more_rounds(1, &c, "after the takeover").await;

    // Every order due before the kill is cancelled as expired within the lease and 5 s of
    // its deadline, as seen through the survivors.
    let promise = time::Duration::seconds(i64::try_from(ttl).unwrap() + 5);
    let http = http_client();
    let mut open: Vec<(usize, String, OffsetDateTime)> = due.clone();
    let mut late = Vec::new();
    let mut delays = Vec::new();
    let mut k = 0usize;
    while !open.is_empty() {
        let mut still = Vec::new();
        for (i, order_id, expires_at) in open {
            k += 1;
            let server = c.node(survivors[k % survivors.len()]);
            let url = server.url(&order_path(&order_id));
            let r = raw(&http, Method::GET, &url, users[i].access(), None, None)
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            let now = OffsetDateTime::now_utc();
            if r.status == 200 && r.body["status"] == "cancelled" {
                assert_eq!(r.body["cancel_reason"], "expired", "{}", r.body);
                let cancelled_at = time_of(&r.body["cancelled_at"], "cancelled_at");
                if owners[i] == victim {
                    delays.push((now - expires_at).as_seconds_f64());
                }
                if cancelled_at - expires_at > promise {
                    late.push(format!(
                        "{order_id} (owner n{}): cancelled {:.1} s after its deadline",
                        owners[i] + 1,
                        (cancelled_at - expires_at).as_seconds_f64()
                    ));
                }
                continue;
            }
            assert!(
                (r.status == 200 && r.body["status"] == "pending_payment") || r.unavailable(),
                "{order_id} through {}: {} {} (want the order, or 503 unavailable with Retry-After)",
                server.base,
                r.status,
                r.body
            );
            if now - expires_at > promise + time::Duration::milliseconds(500) {
                late.push(format!(
                    "{order_id} (owner n{}, victim n{}): still {} {} s after its deadline",
                    owners[i] + 1,
                    victim + 1,
                    r.body["status"],
                    promise.whole_seconds()
                ));
                continue;
            }
            still.push((i, order_id, expires_at));
        }
        open = still;
        if !open.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(
        late.is_empty(),
        "orders not expired in time: {late:#?}\n{}",
        c.logs()
    );

    let (ledgers, tally) = load.stop().await;
    c.forget(victim);
    eprintln!(
        "crash load: {tally:?}; the dead node's orders were seen cancelled {delays:.1?} s after their deadlines"
    );
    assert!(
        tally.failures.is_empty(),
        "answers no client should get ({} of {} requests): {:#?}\nwarnings:\n{}\n{}",
        tally.failures.len(),
        tally.requests,
        tally.failures,
        c.grep(WARN),
        c.logs()
    );
    assert!(
        tally.failovers > 0,
        "the load never met the dead node: {tally:?}"
    );

    // Let every unpaid order reach its end before counting stock.
    let server = c.node(survivors[0]);
    let (settled, took) = eventually(Duration::from_secs(3 + ttl + 8), || async {
        for user in &users {
            let page = server
                .get(
                    &format!("{ORDERS}?status=pending_payment&page_size=1"),
                    Some(user.access()),
                )
                .await;
            if page.status != 200 || page.json()["total"] != 0 {
                return false;
            }
        }
        true
    })
    .await;
    assert!(
        settled,
        "orders still pending {took:?} after the load\n{}",
        c.logs()
    );
    verify(
        server,
        &users,
        &ledgers,
        &[(a, stock_each), (b, stock_each)],
    )
    .await;
}

/// What a user's cart and orders must be after the survivors' writes.
struct Expected {
    cart: Vec<(String, i64)>,
    orders: BTreeMap<String, String>,
}

/// The statuses of the orders on one page of `GET /orders`.
fn statuses(page: &Value) -> BTreeMap<String, String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|o| (id(o), o["status"].as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The cart's lines without product `d`, and `d`'s quantity.
fn split_cart(cart: &Value, d: &str) -> (Vec<(String, i64)>, Option<i64>) {
    let lines = cart_lines(cart);
    let extra = lines.iter().find(|(p, _)| p == d).map(|(_, q)| *q);
    (lines.into_iter().filter(|(p, _)| p != d).collect(), extra)
}

/// How the owner under test is kept from its lease.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Isolation {
    /// SIGSTOP, then SIGCONT: requests sent meanwhile wait in its accept queue.
    Pause,
    /// Its connections to etcd are cut (clients still reach it), then restored.
    Cut,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_paused_past_its_lease_writes_nothing_stale_and_rejoins() {
    isolated_owner(Isolation::Pause).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_etcd_serves_nothing_stale_and_rejoins() {
    isolated_owner(Isolation::Cut).await;
}

/// An owner kept from its lease for two and a half leases (`how`) while the others take over
/// and write: what it answers meanwhile and after is current or 503 `unavailable`, never
/// stale and never another 5xx; it rejoins by itself; every node then agrees.
async fn isolated_owner(how: Isolation) {
    let ttl = 2;
    let c = Cluster::start_with(3, 3, 32, ttl, &[], how == Isolation::Cut).await;
    let (a, b) = c.products(1_000).await;
    let extra = product(c.node(0), &c.admin, "Cluster C", 300, 1_000).await;
    let d = product(c.node(0), &c.admin, "Cluster D", 200, 1_000).await;
    let users = customers(c.node(0), "pause", 9).await;
    let owners = owners_of(&c, &users).await;
    let (victim, survivors) = victim_of(&owners, 3);
    let v = c.node(victim);

    // Through the victim: each user's cart and a first order are in use there (the victim's
    // actors hold those of its own shards).
    let mut first_orders = Vec::new();
    for user in &users {
        let t = user.access();
        add_to_cart(v, t, &a, 1).await;
        let order = checked_order(
            v.post(ORDERS, Some(t), &order_body(&[(&b, 1)]))
                .await
                .expect(201),
        );
        get_order(v, t, &id(&order)).await;
        get_cart(v, t).await;
        first_orders.push(id(&order));
    }

    match how {
        Isolation::Pause => signal(v, "STOP"),
        Isolation::Cut => c.proxies[victim].cut(),
    }
    let stopped = Instant::now();
    let held = c.wait_settled(&survivors).await;
    assert_eq!(held.values().sum::<u64>(), 32);

    // Through the survivors, for every user: a new quantity, a new line, the first order
    // cancelled, a second order.
    let mut expected = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let t = user.access();
        let s = c.node(survivors[i % 2]);
        let o = c.node(survivors[(i + 1) % 2]);
        s.put(
            &format!("{CART_ITEMS}/{a}"),
            Some(t),
            &json!({"quantity": 7}),
        )
        .await
        .expect(200);
        add_to_cart(o, t, &extra, 2).await;
        let cancelled = post_empty(s, t, &format!("{}/cancel", order_path(&first_orders[i])))
            .await
            .expect(200);
        assert_eq!(cancelled["status"], "cancelled");
        let second = checked_order(
            o.post(ORDERS, Some(t), &order_body(&[(&b, 1)]))
                .await
                .expect(201),
        );
        let mut cart = vec![(a.clone(), 7), (extra.clone(), 2)];
        cart.sort();
        expected.push(Expected {
            cart,
            orders: BTreeMap::from([
                (first_orders[i].clone(), "cancelled".to_owned()),
                (id(&second), "pending_payment".to_owned()),
            ]),
        });
    }

    // Requests for every user through the isolated node. Paused, it sees them the moment it
    // resumes, before anything else; cut off, it answers them now.
    let http = http_client();
    let mut queued = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let cancel = format!("{}/cancel", order_path(&first_orders[i]));
        let requests: [(Method, String, Option<Value>); 4] = [
            (Method::GET, CART.to_owned(), None),
            (Method::GET, order_path(&first_orders[i]), None),
            (Method::POST, cancel, None),
            (
                Method::POST,
                CART_ITEMS.to_owned(),
                Some(json!({"product_id": d, "quantity": 1})),
            ),
        ];
        for (method, path, body) in requests {
            let (http, url, token) = (http.clone(), v.url(&path), user.access().to_owned());
            let what = format!("{method} {path}");
            let task =
                tokio::spawn(
                    async move { raw(&http, method, &url, &token, body.as_ref(), None).await },
                );
            queued.push((i, what, task));
        }
    }
    let mut all_queued = false;
    if how == Isolation::Pause {
        let port: u16 = v.addr.rsplit(':').next().unwrap().parse().unwrap();
        let waiting = queued.len();
        (all_queued, _) = eventually(Duration::from_secs(3), || async {
            accept_backlog(port) >= waiting
        })
        .await;
        // The scenario: a pause of two and a half leases, well past the lease (the
        // survivors' take-over above already waited for it to end).
        let pause = Duration::from_secs(ttl * 5 / 2);
        tokio::time::sleep(pause.saturating_sub(stopped.elapsed())).await;
        signal(v, "CONT");
    }

    let mut violations = Vec::new();
    let mut answered: BTreeMap<String, usize> = BTreeMap::new();
    let mut d_added = vec![false; users.len()];
    for (i, what, task) in queued {
        let r = match task.await.unwrap() {
            Ok(r) => r,
            Err(e) => {
                violations.push(format!("{what}: no answer from the isolated node: {e}"));
                continue;
            }
        };
        *answered
            .entry(format!("{what:.24} {}", r.status))
            .or_insert(0) += 1;
        if r.unavailable() {
            continue;
        }
        let e = &expected[i];
        let fine = match (what.split(' ').next().unwrap(), r.status) {
            ("GET", 200) if what.ends_with(CART) => split_cart(&r.body, &d).0 == e.cart,
            ("GET", 200) => r.body["status"] == "cancelled",
            ("POST", 409) if what.ends_with("/cancel") => r.code() == "invalid_state",
            ("POST", 200) if what.ends_with(CART_ITEMS) => {
                d_added[i] = true;
                split_cart(&r.body, &d) == (e.cart.clone(), Some(1))
            }
            _ => false,
        };
        if !fine {
            violations.push(format!(
                "{what} (user {i}, owner n{}): {} {}",
                owners[i] + 1,
                r.status,
                r.body
            ));
        }
    }

    let isolated_for = stopped.elapsed();
    if how == Isolation::Cut {
        c.proxies[victim].heal();
    }
    eprintln!(
        "{how:?} for {isolated_for:?}; requests to the isolated node (all seen queued: {all_queued}): {answered:?}"
    );

    // Until it has rejoined, whatever it answers is current or 503 (each user's reads side by
    // side: a request for a shard with no owner may wait a few seconds for one).
    let within = Duration::from_secs(ttl + 15);
    let restored = Instant::now();
    let mut rejoined = None;
    while rejoined.is_none() && restored.elapsed() < within {
        let reads = users.iter().enumerate().flat_map(|(i, user)| {
            [CART.to_owned(), format!("{ORDERS}?page_size=100")].map(|path| {
                let (http, e, d) = (&http, &expected[i], &d);
                async move {
                    match raw(http, Method::GET, &v.url(&path), user.access(), None, None).await {
                        Ok(r) if r.unavailable() => None,
                        Ok(r) if r.status == 200 => {
                            let fine = if path == CART {
                                split_cart(&r.body, d).0 == e.cart
                            } else {
                                statuses(&r.body) == e.orders
                            };
                            (!fine).then(|| format!("GET {path} (user {i}): stale {}", r.body))
                        }
                        Ok(r) => Some(format!("GET {path} (user {i}): {} {}", r.status, r.body)),
                        Err(e) => Some(format!("GET {path} (user {i}): {e}")),
                    }
                }
            })
        });
        violations.extend(
            futures_util::future::join_all(reads)
                .await
                .into_iter()
                .flatten(),
        );
        rejoined = c.settled(&[0, 1, 2]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        violations.is_empty(),
        "the isolated node ({how:?}) answered with stale data or an error other than 503 (requests seen queued while paused: {all_queued}): {violations:#?}\n{}",
        c.logs()
    );
    let Some(held) = rejoined else {
        panic!(
            "the isolated node ({how:?}) did not rejoin (three members, each with shards) within {within:?}\netcd owners: {:?}\n{}",
            c.shard_owners().await,
            c.logs()
        )
    };
    assert!(held.values().all(|n| *n > 0), "{held:?}");

    // Every node agrees with the latest acknowledged writes.
    for (i, user) in users.iter().enumerate() {
        let t = user.access();
        let mut extra_seen = BTreeSet::new();
        for n in 0..3 {
            let r = c.node(n).get(CART, Some(t)).await;
            assert_eq!(
                r.status,
                200,
                "user {i}'s cart through n{} after the rejoin: {}\nwarnings:\n{}\n{}",
                n + 1,
                r.json(),
                c.grep(WARN),
                c.logs()
            );
            let (cart, d_line) = split_cart(&r.json(), &d);
            assert_eq!(cart, expected[i].cart, "user {i}'s cart through n{}", n + 1);
            extra_seen.insert(d_line);
            let page = c
                .node(n)
                .get(&format!("{ORDERS}?page_size=100"), Some(t))
                .await
                .expect(200);
            assert_eq!(
                statuses(&page),
                expected[i].orders,
                "user {i}'s orders through n{}",
                n + 1
            );
        }
        assert_eq!(extra_seen.len(), 1, "the nodes disagree on user {i}'s cart");
        if d_added[i] {
            assert_eq!(
                extra_seen.pop_first().unwrap(),
                Some(1),
                "user {i}: an add the resumed node answered 200 is gone"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_fails_no_request() {
    let stock_each = 100_000;
    let mut c = Cluster::start(3, 3, 32, 2, &[]).await;
    let (a, b) = c.products(stock_each).await;
    let users = customers(c.node(0), "rolling", 6).await;
    let load = Load::start(&c, &users, &a, &b, 3, Mode::Strict);
    load.more_rounds(1, &c, "before the restarts").await;
    // What happened when, for failure messages.
    let mut events = Vec::new();
    let now = OffsetDateTime::now_utc;
    for i in 0..3 {
        events.push(format!(
            "{} SIGTERM to {} at {}",
            now(),
            c.ids[i],
            c.node(i).base
        ));
        c.stop_node(i).await;
        events.push(format!("{} {} exited", now(), c.ids[i]));
        load.more_rounds(1, &c, &format!("with {} stopped", c.ids[i]))
            .await;
        c.start_node(i).await;
        events.push(format!(
            "{} {} listening at {}",
            now(),
            c.ids[i],
            c.node(i).base
        ));
        c.wait_settled(&[0, 1, 2]).await;
        events.push(format!("{} settled", now()));
        load.more_rounds(1, &c, &format!("after {} came back", c.ids[i]))
            .await;
    }
    let (ledgers, tally) = load.stop().await;
    eprintln!("rolling load: {tally:?}");
    assert!(
        tally.failures.is_empty(),
        "{} of {} requests failed: {:#?}\nevents: {events:#?}\nwarnings:\n{}\n{}",
        tally.failures.len(),
        tally.requests,
        tally.failures,
        c.grep(WARN),
        c.logs()
    );
    verify(
        c.node(0),
        &users,
        &ledgers,
        &[(a, stock_each), (b, stock_each)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_added_under_load_takes_its_share() {
    let shards = 64;
    let stock_each = 100_000;
    let mut c = Cluster::start(3, 2, shards, 2, &[]).await;
    let (a, b) = c.products(stock_each).await;
    let users = customers(c.node(0), "join", 24).await;
    let load = Load::start(&c, &users, &a, &b, 6, Mode::Strict);
    load.more_rounds(1, &c, "before the third node").await;

    c.start_node(2).await;
    let held = c.wait_settled(&[0, 1, 2]).await;
    let joined = held[&c.ids[2]];
    assert!(
        (shards as u64 / 8..=shards as u64 / 2).contains(&joined),
        "the new node holds {joined} of {shards} shards, not about a third: {held:?}"
    );
    // Every user is served again, through all three nodes.
    load.more_rounds(2, &c, "after the third node joined").await;
    let (ledgers, tally) = load.stop().await;
    eprintln!("join load: {tally:?}");
    assert!(
        tally.failures.is_empty(),
        "{} of {} requests failed: {:#?}\nwarnings:\n{}\n{}",
        tally.failures.len(),
        tally.requests,
        tally.failures,
        c.grep(WARN),
        c.logs()
    );
    assert!(
        tally.served[2] > 0,
        "no request reached the new node: {tally:?}"
    );
    let n3 = c.node(2);
    assert!(
        metric(n3, CART_ACTIVATIONS).await > 0.0,
        "the new node serves no cart of its own shards"
    );
    assert_eq!(
        metric(n3, "cluster_shards_owned").await,
        joined as f64,
        "cluster_shards_owned on the new node"
    );
    verify(
        c.node(0),
        &users,
        &ledgers,
        &[(a, stock_each), (b, stock_each)],
    )
    .await;
}
