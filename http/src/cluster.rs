//! The HTTP layer's side of the cluster: the node's registration settings from the
//! configuration, joining at start-up, leaving on SIGTERM/SIGINT, the write gate (a node that
//! cannot confirm its lease answers writes 503 `unavailable`), and `mall cluster status`.
//! Membership itself lives in `mall_actors::cluster`; this layer only holds its handle.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use mall_actors::cluster::{ClusterError, ClusterHandle, Settings};
use mall_db::IdGenerator;

use crate::config::Config;

/// The node's settings: `cluster.*`, with the node id generated and the advertise URL taken
/// from the bound address when they are not configured.
pub fn settings(config: &Config, bound: SocketAddr) -> Settings {
    let c = &config.cluster;
    let node_id = if c.node_id.is_empty() {
        format!("mall-{:08x}", rand::random::<u32>())
    } else {
        c.node_id.clone()
    };
    let advertise_url = if c.advertise_url.is_empty() {
        // An unspecified address (0.0.0.0, ::) cannot be dialled; loopback at least works for
        // nodes on one machine, and `cluster.advertise_url` says where others are.
        let ip = if bound.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            bound.ip()
        };
        format!("http://{}", SocketAddr::new(ip, bound.port()))
    } else {
        c.advertise_url.trim_end_matches('/').to_owned()
    };
    let started_at = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    Settings {
        endpoints: c.etcd_endpoints.clone(),
        node_id,
        advertise_url,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at,
        lease_ttl: Duration::from_secs(c.lease_ttl_secs),
        shards: c.shards,
    }
}

/// Joins the cluster (with endpoints) or describes the single node (without). Joining claims
/// the node number `ids` mints with, so it must finish before anything mints an id.
pub async fn start(
    config: &Config,
    bound: SocketAddr,
    ids: Arc<IdGenerator>,
    db: mall_db::Db,
    registry: &prometheus::Registry,
) -> Result<ClusterHandle, ClusterError> {
    let settings = settings(config, bound);
    if settings.endpoints.is_empty() {
        return ClusterHandle::single(settings, registry);
    }
    ClusterHandle::join(settings, ids, db, registry).await
}

/// `mall cluster status`: prints the members and the owner of each shard, read from etcd alone
/// (no token, nothing written).
pub fn status_command(config: &Config) -> ExitCode {
    let c = &config.cluster;
    if c.etcd_endpoints.is_empty() {
        eprintln!(
            "mall: cluster.etcd_endpoints is empty: this is a single node, with no registry to read"
        );
        return ExitCode::from(2);
    }
    let timeout = Duration::from_secs(c.lease_ttl_secs.clamp(1, 5));
    let read = actix_web::rt::System::new().block_on(mall_actors::cluster::read_status(
        &c.etcd_endpoints,
        c.shards,
        timeout,
    ));
    match read {
        Ok((snapshot, services)) => {
            print!("{}", render_status(&c.etcd_endpoints, &snapshot, &services));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mall: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The text `mall cluster status` prints.
pub fn render_status(
    endpoints: &[String],
    snapshot: &mall_actors::cluster::Snapshot,
    services: &std::collections::BTreeMap<String, Vec<String>>,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "etcd: {}\nmembers: {}\nshards: {}\n",
        endpoints.join(","),
        snapshot.members.len(),
        snapshot.shards
    );
    let _ = writeln!(
        out,
        "{:<24} {:<28} {:<10} {:<22} {:>6}  SERVICES",
        "NODE_ID", "ADVERTISE_URL", "VERSION", "STARTED_AT", "SHARDS"
    );
    for m in &snapshot.members {
        let svc = services
            .get(&m.member.node_id)
            .map(|s| s.join(","))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<24} {:<28} {:<10} {:<22} {:>6}  {}",
            m.member.node_id,
            m.member.advertise_url,
            m.member.version,
            m.member.started_at,
            m.shards,
            svc
        );
    }
    let _ = writeln!(out, "\nSHARD  OWNER");
    for (shard, owner) in snapshot.owners.iter().enumerate() {
        let _ = writeln!(out, "{shard:<6} {}", owner.as_deref().unwrap_or("-"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mall_actors::cluster::{Member, MemberShards, Snapshot};

    #[test]
    fn the_advertise_url_defaults_to_the_bound_address_and_an_id_is_generated() {
        let config = Config::default();
        let s = settings(&config, "0.0.0.0:8081".parse().unwrap());
        assert_eq!(s.advertise_url, "http://127.0.0.1:8081");
        assert!(
            mall_actors::cluster::keys::valid_node_id(&s.node_id),
            "{}",
            s.node_id
        );
        assert_eq!(s.lease_ttl, Duration::from_secs(10));
        assert_eq!(s.shards, 256);
        let s = settings(&config, "10.1.2.3:80".parse().unwrap());
        assert_eq!(s.advertise_url, "http://10.1.2.3:80");
        let mut config = Config::default();
        config.cluster.node_id = "n1".into();
        config.cluster.advertise_url = "http://mall-1:8080/".into();
        let s = settings(&config, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(
            (s.node_id.as_str(), s.advertise_url.as_str()),
            ("n1", "http://mall-1:8080")
        );
        assert!(
            time::OffsetDateTime::parse(
                &s.started_at,
                &time::format_description::well_known::Rfc3339
            )
            .is_ok()
        );
    }

    #[test]
    fn the_status_lists_members_then_one_owner_per_shard() {
        let member = |id: &str| Member {
            node_id: id.into(),
            advertise_url: format!("http://{id}:8080"),
            version: "0.1.0".into(),
            started_at: "2026-12-02T05:00:00Z".into(),
        };
        let snapshot = Snapshot {
            node_id: String::new(),
            members: vec![
                MemberShards {
                    member: member("a"),
                    shards: 1,
                },
                MemberShards {
                    member: member("b"),
                    shards: 2,
                },
            ],
            shards: 3,
            owners: vec![Some("b".into()), Some("a".into()), Some("b".into())],
        };
        let services = [("a".to_owned(), vec!["api".to_owned(), "cart".to_owned()])].into();
        let text = render_status(&["http://e:2379".into()], &snapshot, &services);
        assert!(
            text.starts_with("etcd: http://e:2379\nmembers: 2\nshards: 3\n"),
            "{text}"
        );
        let a = text.lines().find(|l| l.starts_with("a ")).unwrap();
        assert!(a.contains("http://a:8080") && a.contains("api,cart"), "{a}");
        let owners: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("SHARD"))
            .skip(1)
            .collect();
        assert_eq!(owners, ["0      b", "1      a", "2      b"]);
    }
}
