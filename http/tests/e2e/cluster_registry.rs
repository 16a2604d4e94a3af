//! The service registry on a real etcd (started by each test on free ports): real `mall`
//! processes on one PostgreSQL database register under their leases, see each other, leave at
//! once on SIGTERM and within the lease on SIGKILL, ride out an etcd restart without a failed
//! request, never share a node number, and refuse to start against a closed port.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::etcd_instance::EtcdInstance;
use crate::harness::{
    ADMIN_EMAIL, Backend, MALL, Server, ServerBuilder, assert_keys, assert_rfc3339, eventually,
    random_secret, unique_email,
};
use crate::redis_instance::free_port;

const MEMBERS: &str = "/mall/v1/members/";
const SERVICES: &str = "/mall/v1/services/";
const NUMBERS: &str = "/mall/v1/node_numbers/";

/// A node of the cluster under test: the standard server with the registry configured.
fn node(db_url: &str, etcd: &EtcdInstance, node_id: &str, ttl_secs: u64) -> ServerBuilder {
    ServerBuilder::new(db_url)
        .env("MALL__CLUSTER__ETCD_ENDPOINTS", &etcd.endpoint())
        .env("MALL__CLUSTER__NODE_ID", node_id)
        .env("MALL__CLUSTER__LEASE_TTL_SECS", &ttl_secs.to_string())
}

/// Starts `ids.len()` nodes one after the other (the first makes the bootstrap admin), sharing
/// the JWT secret and the admin password.
async fn nodes(db_url: &str, etcd: &EtcdInstance, ids: &[&str], ttl_secs: u64) -> Vec<Server> {
    let secret = random_secret("jwt");
    let admin_password = random_secret("admin-pw");
    let mut started = Vec::new();
    for id in ids {
        started.push(
            node(db_url, etcd, id, ttl_secs)
                .secret(&secret)
                .env("MALL__BOOTSTRAP__ADMIN_PASSWORD", &admin_password)
                .start()
                .await,
        );
    }
    started
}

/// The node ids of the member keys in etcd.
async fn member_ids(etcd: &EtcdInstance) -> BTreeSet<String> {
    etcd.keys(MEMBERS)
        .await
        .keys()
        .map(|k| k.trim_start_matches(MEMBERS).to_owned())
        .collect()
}

/// Every key (members, services, node numbers) that belongs to `node_id`.
async fn keys_of(etcd: &EtcdInstance, node_id: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for prefix in [MEMBERS, SERVICES, NUMBERS] {
        for (key, stored) in etcd.keys(prefix).await {
            let owner = stored
                .value
                .get("node_id")
                .and_then(Value::as_str)
                .or(stored.value.as_str());
            if owner == Some(node_id) {
                keys.push(key);
            }
        }
    }
    keys
}

/// How many shards the members `GET /api/v1/admin/cluster` lists on `server` hold together.
async fn claimed_shards(server: &Server, token: &str) -> u64 {
    let body = server
        .get("/api/v1/admin/cluster", Some(token))
        .await
        .expect(200);
    body["members"]
        .as_array()
        .map_or(0, |ms| ms.iter().filter_map(|m| m["shards"].as_u64()).sum())
}

/// The node ids `GET /api/v1/admin/cluster` lists on `server`.
async fn listed(server: &Server, token: &str) -> BTreeSet<String> {
    let body = server
        .get("/api/v1/admin/cluster", Some(token))
        .await
        .expect(200);
    body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["node_id"].as_str().unwrap().to_owned())
        .collect()
}

/// `registry` in `/readyz`.
async fn registry(server: &Server) -> String {
    let body = server.get("/readyz", None).await.json();
    body["registry"].as_str().unwrap_or_default().to_owned()
}

/// The value of an unlabelled metric in `/metrics`.
async fn metric(server: &Server, name: &str) -> Option<f64> {
    let text = server.get("/metrics", None).await.text;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn ids_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_register_see_each_other_and_leave() {
    let etcd = EtcdInstance::start().await;
    let db = Backend::Postgres.database().await;
    // A lease long enough that keys vanishing within a second after SIGTERM can only be the
    // revocation, yet short enough to wait out after SIGKILL.
    let ttl = 4;
    let mut servers = nodes(db.url(), &etcd, &["n1", "n2", "n3"], ttl).await;
    let all = ids_of(&["n1", "n2", "n3"]);

    // Member keys: exactly the contract's values, under a lease.
    let members = etcd.keys(MEMBERS).await;
    assert_eq!(member_ids(&etcd).await, all, "member keys: {members:?}");
    let mut leases = BTreeMap::new();
    for (server, id) in servers.iter().zip(["n1", "n2", "n3"]) {
        let m = &members[&format!("{MEMBERS}{id}")];
        assert_keys(
            &m.value,
            &["node_id", "advertise_url", "version", "started_at"],
            id,
        );
        assert_eq!(m.value["node_id"], id);
        assert_eq!(m.value["advertise_url"], server.base.as_str());
        assert_eq!(m.value["version"], env!("CARGO_PKG_VERSION"));
        assert_rfc3339(&m.value["started_at"], "started_at");
        assert_ne!(m.lease, 0, "{id}'s member key has no lease");
        leases.insert(id, m.lease);
    }
    // One key per service, under the same lease, exactly `{node_id, address}`.
    let services = etcd.keys(SERVICES).await;
    assert_eq!(services.len(), 12, "service keys: {services:?}");
    for (server, id) in servers.iter().zip(["n1", "n2", "n3"]) {
        for service in ["api", "cart", "order", "payment"] {
            let s = services
                .get(&format!("{SERVICES}{service}/{id}"))
                .unwrap_or_else(|| panic!("no {service} key for {id}: {services:?}"));
            assert_eq!(s.value, json!({"node_id": id, "address": server.base}));
            assert_eq!(
                s.lease, leases[id],
                "{id}'s {service} key is under another lease"
            );
        }
    }
    // Distinct node numbers, each held under its node's lease.
    let numbers = etcd.keys(NUMBERS).await;
    assert_eq!(numbers.len(), 3, "node numbers: {numbers:?}");
    for stored in numbers.values() {
        let holder = stored.value.as_str().unwrap();
        assert_eq!(stored.lease, leases[holder]);
    }

    // Every node sees every node, and the shards are split among them.
    let admin = servers[0].admin().await;
    for server in &servers {
        let (ok, took) = eventually(Duration::from_secs(2), || async {
            listed(server, &admin.access).await == all
        })
        .await;
        assert!(
            ok,
            "{} did not list all three nodes within {took:?}",
            server.base
        );
        // Each shard gets its owner's claim as the members see one another.
        let (claimed, took) = eventually(Duration::from_secs(10), || async {
            claimed_shards(server, &admin.access).await == 256
        })
        .await;
        assert!(
            claimed,
            "{}: shards not all claimed after {took:?}",
            server.base
        );
        let body = server
            .get("/api/v1/admin/cluster", Some(&admin.access))
            .await
            .expect(200);
        assert_keys(&body, &["node_id", "members", "shards"], "cluster view");
        assert_eq!(body["shards"], 256);
        let shards: u64 = body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                assert_keys(
                    m,
                    &[
                        "node_id",
                        "advertise_url",
                        "version",
                        "started_at",
                        "shards",
                    ],
                    "member",
                );
                m["shards"].as_u64().unwrap()
            })
            .sum();
        assert_eq!(shards, 256, "{body}");
        assert_eq!(registry(server).await, "up");
        assert_eq!(metric(server, "cluster_members").await, Some(3.0));
        assert_eq!(metric(server, "cluster_registered").await, Some(1.0));
    }
    // A customer may not look.
    let user = servers[1].new_user("cluster-peek").await;
    servers[1]
        .get("/api/v1/admin/cluster", Some(user.access()))
        .await
        .expect_error(403, "forbidden");

    // `mall cluster status` reads etcd alone: no token, no server.
    let out = Command::new(MALL)
        .current_dir(std::env::temp_dir())
        .args(["cluster", "status"])
        .env("MALL__CLUSTER__ETCD_ENDPOINTS", etcd.endpoint())
        .env("MALL__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cluster status failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (server, id) in servers.iter().zip(["n1", "n2", "n3"]) {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("{id} is not listed:\n{stdout}"));
        assert!(line.contains(&server.base), "{line}");
        assert!(line.contains("api,cart,order,payment"), "{line}");
    }
    assert!(stdout.contains("members: 3"), "{stdout}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .count(),
        256,
        "one owner line per shard:\n{stdout}"
    );

    // SIGTERM: the node's keys go at once (well before its 4 s lease could end).
    let n3 = servers.pop().unwrap();
    n3.process.terminate();
    let (gone, took) = eventually(Duration::from_millis(1500), || async {
        keys_of(&etcd, "n3").await.is_empty()
    })
    .await;
    assert!(
        gone,
        "n3's keys are still there {took:?} after SIGTERM: {:?}",
        keys_of(&etcd, "n3").await
    );
    let (seen, took) = eventually(Duration::from_secs(1), || async {
        listed(&servers[0], &admin.access).await == ids_of(&["n1", "n2"])
    })
    .await;
    assert!(seen, "n1 still lists n3 {took:?} after it left");

    // SIGKILL: nothing is revoked; the keys go when the lease ends.
    let mut n2 = servers.pop().unwrap();
    let killed = Instant::now();
    n2.process.kill();
    let (gone, _) = eventually(Duration::from_secs(ttl + 3), || async {
        keys_of(&etcd, "n2").await.is_empty()
    })
    .await;
    let took = killed.elapsed();
    assert!(
        gone,
        "n2's keys outlived its {ttl} s lease after SIGKILL ({took:?})"
    );
    // The last keep-alive went out at most a second before the kill.
    assert!(
        took >= Duration::from_secs(ttl - 1) - Duration::from_millis(500),
        "n2's keys went after {took:?}: sooner than its lease could end"
    );
    let (seen, _) = eventually(Duration::from_secs(1), || async {
        listed(&servers[0], &admin.access).await == ids_of(&["n1"])
    })
    .await;
    assert!(seen, "n1 still lists n2 after its lease ended");
    // The survivor claims the shards of the node whose lease ended.
    let (all_claimed, took) = eventually(Duration::from_secs(10), || async {
        let body = servers[0]
            .get("/api/v1/admin/cluster", Some(&admin.access))
            .await
            .expect(200);
        body["members"][0]["shards"] == 256
    })
    .await;
    assert!(
        all_claimed,
        "the last node did not own every shard after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_killed_and_restarted_under_traffic_fails_no_request() {
    let mut etcd = EtcdInstance::start().await;
    let db = Backend::Postgres.database().await;
    // Keep-alives every second: etcd's outage below (until every node has noticed, plus a
    // restart) fits well within the lease, so every node keeps its number and keeps writing.
    let ttl = 9;
    let servers = Arc::new(nodes(db.url(), &etcd, &["t1", "t2", "t3"], ttl).await);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let traffic = {
        let (servers, stop, done) = (servers.clone(), stop.clone(), done.clone());
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Acquire) {
                let server = &servers[i % servers.len()];
                // A write that mints an id, and a read.
                let email = unique_email("traffic");
                let r = server
                    .try_register(&email, "correct horse", "Traffic")
                    .await;
                if r.status != 201 {
                    failures.push(format!("{}: {} {}", r.what, r.status, r.text));
                }
                let r = server.get("/api/v1/products", None).await;
                if r.status != 200 {
                    failures.push(format!("{}: {} {}", r.what, r.status, r.text));
                }
                i += 1;
                done.store(i, Ordering::Release);
            }
            failures
        })
    };

    etcd.kill();
    for server in servers.iter() {
        let (down, took) = eventually(Duration::from_secs(8), || async {
            registry(server).await == "down"
        })
        .await;
        assert!(
            down,
            "{} did not report registry: down within {took:?}",
            server.base
        );
    }
    let before = done.load(Ordering::Acquire);
    etcd.restart().await;
    for server in servers.iter() {
        let (up, took) = eventually(Duration::from_secs(8), || async {
            registry(server).await == "up"
        })
        .await;
        assert!(
            up,
            "{} did not report registry: up within {took:?} of etcd's return",
            server.base
        );
    }
    let (back, took) = eventually(Duration::from_secs(3), || async {
        member_ids(&etcd).await == ids_of(&["t1", "t2", "t3"])
            && etcd.keys(SERVICES).await.len() == 12
    })
    .await;
    assert!(
        back,
        "the keys did not come back within {took:?}: {:?}",
        member_ids(&etcd).await
    );
    // Some traffic after the return too.
    let (_, _) = eventually(Duration::from_secs(5), || async {
        done.load(Ordering::Acquire) >= before + 3
    })
    .await;
    stop.store(true, Ordering::Release);
    let failures = traffic.await.unwrap();
    let total = done.load(Ordering::Acquire);
    assert!(
        total >= 5,
        "too little traffic to mean anything: {total} rounds"
    );
    assert!(
        failures.is_empty(),
        "{} of {total} rounds failed: {failures:#?}",
        failures.len()
    );

    for server in servers.iter() {
        assert!(
            metric(server, "cluster_lease_keepalive_failures_total")
                .await
                .unwrap_or(0.0)
                >= 1.0,
            "{}: no keep-alive failure counted",
            server.base
        );
        let log = server.process.stdout();
        assert!(
            log.contains("registry down"),
            "{}: no log line says the registry is down",
            server.base
        );
        assert!(
            log.contains("registry up"),
            "{}: no log line says the registry is back",
            server.base
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_past_its_lease_stops_writing_and_rejoins_by_itself() {
    let mut etcd = EtcdInstance::start().await;
    let db = Backend::Postgres.database().await;
    let ttl = 3;
    let servers = nodes(db.url(), &etcd, &["solo"], ttl).await;
    let server = &servers[0];
    let lease_before = etcd.keys(MEMBERS).await[&format!("{MEMBERS}solo")].lease;

    etcd.kill();
    // Past the lease its node number may be someone else's: writes stop, reads go on.
    let (refused, took) = eventually(Duration::from_secs(ttl + 5), || async {
        server
            .try_register(&unique_email("cut"), "correct horse", "Cut")
            .await
            .status
            == 503
    })
    .await;
    assert!(
        refused,
        "writes still accepted {took:?} after etcd went away"
    );
    let r = server
        .try_register(&unique_email("cut"), "correct horse", "Cut")
        .await;
    r.expect_error(503, "unavailable");
    assert!(r.header("retry-after").is_some(), "503 without Retry-After");
    server.get("/api/v1/products", None).await.expect(200);
    assert_eq!(registry(server).await, "down");
    assert_eq!(metric(server, "cluster_registered").await, Some(0.0));

    // etcd comes back with nothing: the lease is unknown, so the node registers anew, with a
    // new lease and the same node id, and writes again.
    etcd.restart_empty().await;
    let (rejoined, took) = eventually(Duration::from_secs(ttl + 5), || async {
        member_ids(&etcd).await == ids_of(&["solo"])
    })
    .await;
    assert!(
        rejoined,
        "the node did not register again within {took:?}\n{}",
        server.process.output_report()
    );
    let member = &etcd.keys(MEMBERS).await[&format!("{MEMBERS}solo")];
    assert_ne!(
        member.lease, lease_before,
        "re-registered under the old lease"
    );
    assert_eq!(etcd.keys(SERVICES).await.len(), 4);
    assert_eq!(etcd.keys(NUMBERS).await.len(), 1);
    let (writes, took) = eventually(Duration::from_secs(ttl + 2), || async {
        server
            .try_register(&unique_email("back"), "correct horse", "Back")
            .await
            .status
            == 201
    })
    .await;
    assert!(writes, "writes still refused {took:?} after rejoining");
    assert_eq!(registry(server).await, "up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_started_at_once_never_share_a_node_number() {
    let etcd = EtcdInstance::start().await;
    let db = Backend::Postgres.database().await;
    // Migrate once, so that the ten do not race over the schema, and with no bootstrap admin
    // to race over either.
    let mut migrate = ServerBuilder::new(db.url()).args(&["migrate"]).spawn();
    assert!(migrate.wait_exit(Duration::from_secs(60)).await.success());
    let ids: Vec<String> = (0..10).map(|i| format!("ten-{i}")).collect();
    let mut processes: Vec<_> = ids
        .iter()
        .map(|id| {
            node(db.url(), &etcd, id, 10)
                .env("MALL__DATABASE__AUTO_MIGRATE", "false")
                .without("MALL__BOOTSTRAP__ADMIN_EMAIL")
                .without("MALL__BOOTSTRAP__ADMIN_PASSWORD")
                .env("MALL__SERVER__WORKERS", "1")
                .env("MALL__ACTORS__ARBITERS", "1")
                .env("MALL__DATABASE__MAX_CONNECTIONS", "3")
                .spawn()
        })
        .collect();
    for p in &mut processes {
        p.wait_listening().await;
    }
    let numbers = etcd.keys(NUMBERS).await;
    let holders: BTreeSet<String> = numbers
        .values()
        .map(|s| s.value.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(numbers.len(), 10, "node numbers: {numbers:?}");
    assert_eq!(
        holders,
        ids.iter().cloned().collect(),
        "holders: {numbers:?}"
    );
    // Each process mints with the number it holds (its log says which).
    let mut logged = BTreeSet::new();
    for (p, id) in processes.iter().zip(&ids) {
        let line = p
            .stdout()
            .lines()
            .find(|l| l.contains("registered in etcd"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("{id} did not log its registration"));
        let v: Value = serde_json::from_str(&line).unwrap();
        let n = v["node_number"].as_u64().unwrap();
        assert_eq!(numbers[&format!("{NUMBERS}{n}")].value, id.as_str());
        logged.insert(n);
    }
    assert_eq!(
        logged.len(),
        10,
        "two processes logged the same node number"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_against_a_closed_port_exits_non_zero_naming_the_endpoint() {
    let db = Backend::Sqlite.database().await;
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let mut p = ServerBuilder::new(db.url())
        .env("MALL__CLUSTER__ETCD_ENDPOINTS", &endpoint)
        .env("MALL__CLUSTER__LEASE_TTL_SECS", "2")
        .spawn();
    let status = p.wait_exit(Duration::from_secs(20)).await;
    let took = started.elapsed();
    assert!(
        !status.success(),
        "mall started without etcd\n{}",
        p.output_report()
    );
    assert!(
        p.stderr().contains(&endpoint),
        "the error does not name {endpoint}\n{}",
        p.output_report()
    );
    assert!(
        p.listening_addr().is_none(),
        "it served before it registered"
    );
    // It retried for the lease's 2 s, not much longer.
    assert!(took >= Duration::from_secs(2), "gave up after {took:?}");
    assert!(took < Duration::from_secs(15), "took {took:?} to give up");

    // `mall cluster status` against the same closed port fails the same way.
    let out = Command::new(MALL)
        .current_dir(std::env::temp_dir())
        .args(["cluster", "status"])
        .env("MALL__CLUSTER__ETCD_ENDPOINTS", &endpoint)
        .env("MALL__CLUSTER__LEASE_TTL_SECS", "2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&endpoint));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_lists_itself() {
    let app = crate::harness::App::start(Backend::Sqlite).await;
    let admin = app.login(ADMIN_EMAIL, &app.process.admin_password).await;
    let body = app
        .get("/api/v1/admin/cluster", Some(&admin.access))
        .await
        .expect(200);
    let node_id = body["node_id"].as_str().unwrap();
    assert_eq!(body["shards"], 256);
    assert_eq!(body["members"].as_array().unwrap().len(), 1, "{body}");
    let me = &body["members"][0];
    assert_eq!(me["node_id"], node_id);
    assert_eq!(me["advertise_url"], app.base.as_str());
    assert_eq!(me["shards"], 256);
    // No registry, and none of its metrics.
    assert_eq!(registry(&app).await, "disabled");
    assert_eq!(metric(&app, "cluster_members").await, None);
}
