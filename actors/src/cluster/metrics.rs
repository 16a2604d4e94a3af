//! The cluster's Prometheus metrics (registered only when the node is part of a cluster, so a
//! single node's `/metrics` stays as it was).

use prometheus::{IntCounter, IntGauge, Registry};

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
