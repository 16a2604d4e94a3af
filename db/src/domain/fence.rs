//! The right to write one shard's entities in a cluster (DESIGN.md, "Cluster").

/// The right to write one shard's entities: the shard and the fencing epoch of the claim that
/// gave it. Writes check it against the epoch the database holds (`repo::fences`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Fence {
    /// The shard.
    pub shard: u32,
    /// The epoch of the owner's claim.
    pub epoch: i64,
}
