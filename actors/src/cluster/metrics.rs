//! The cluster's Prometheus metrics: membership ([`ClusterMetrics`], registered only when the
//! node is part of a cluster) and ownership and routing ([`OwnershipMetrics`], on every node: a
//! single node owns every shard and forwards nothing).

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Members seen, keep-alive failures, registration state.
#[derive(Clone)]
pub struct ClusterMetrics {
    /// `cluster_members`: live members in this node's view (itself included).
    pub members: IntGauge,
    /// `cluster_lease_keepalive_failures_total`: keep-alive rounds that failed.
    pub keepalive_failures: IntCounter,
    /// `cluster_registered`: 1 while this node's lease is confirmed and its keys written, else 0.
    pub registered: IntGauge,
    /// `cluster_node_number`: the node number ids are minted with (-1 while none is held).
    pub node_number: IntGauge,
}

impl ClusterMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = ClusterMetrics {
            members: IntGauge::new("cluster_members", "Live cluster members seen by this node")?,
            keepalive_failures: IntCounter::new(
                "cluster_lease_keepalive_failures_total",
                "Lease keep-alive rounds that failed (etcd unreachable or the lease lost)",
            )?,
            registered: IntGauge::new(
                "cluster_registered",
                "1 while this node is registered in etcd with a live lease, else 0",
            )?,
            node_number: IntGauge::new(
                "cluster_node_number",
                "The node number this node mints ids with; -1 while it holds none",
            )?,
        };
        registry.register(Box::new(m.members.clone()))?;
        registry.register(Box::new(m.keepalive_failures.clone()))?;
        registry.register(Box::new(m.registered.clone()))?;
        registry.register(Box::new(m.node_number.clone()))?;
        Ok(m)
    }
}

/// Counts what ownership does, for `/metrics`.
#[derive(Clone)]
pub struct OwnershipMetrics {
    /// `cluster_shards_owned`.
    pub owned: IntGauge,
    /// `cluster_fenced_total`: turns or writes refused because another node owns the shard.
    pub fenced: IntCounter,
    /// `cluster_forwards_total{outcome}`: requests this node forwarded to a shard's owner.
    pub forwards: IntCounterVec,
    /// `cluster_misdirected_total`: 421 answers this node got from a node that no longer
    /// owned the shard, each followed by a retry.
    pub misdirected: IntCounter,
}

impl OwnershipMetrics {
    /// Creates and registers the metrics.
    pub fn new(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let m = OwnershipMetrics {
            owned: IntGauge::new("cluster_shards_owned", "Shards this node owns and serves")?,
            fenced: IntCounter::new(
                "cluster_fenced_total",
                "Turns and writes refused because this node no longer owned the shard (a newer epoch exists)",
            )?,
            forwards: IntCounterVec::new(
                Opts::new(
                    "cluster_forwards_total",
                    "Requests forwarded to the owner of their shard, by outcome",
                ),
                &["outcome"],
            )?,
            misdirected: IntCounter::new(
                "cluster_misdirected_total",
                "Forwarded requests answered 421 by a node that was not the owner, then retried",
            )?,
        };
        // Both outcomes from the start, so a dashboard finds the series before any forward.
        for outcome in ["ok", "failed"] {
            m.forwards.with_label_values(&[outcome]);
        }
        registry.register(Box::new(m.owned.clone()))?;
        registry.register(Box::new(m.fenced.clone()))?;
        registry.register(Box::new(m.forwards.clone()))?;
        registry.register(Box::new(m.misdirected.clone()))?;
        Ok(m)
    }
}
