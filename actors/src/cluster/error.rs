//! `ClusterError`: why joining, or reading, the registry failed.

/// Errors of the cluster layer (the HTTP layer decides what a caller sees).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// etcd did not answer in time: names the endpoints and the last error seen.
    #[error("etcd unreachable at {endpoints} after {waited_secs} s: {last}")]
    Unreachable {
        /// The configured endpoints, comma-separated.
        endpoints: String,
        /// How long we tried.
        waited_secs: u64,
        /// The last error seen.
        last: String,
    },
    /// All 1024 node numbers are held by live nodes.
    #[error("no free node number: all {0} are held")]
    NoFreeNumber(u16),
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
    /// An etcd call failed.
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// The watch of the registry ended.
    #[error("watch: {0}")]
    Watch(String),
    /// An etcd call took longer than allowed.
    #[error("etcd: no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// Metrics could not be registered (a programming error: duplicate names).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}
