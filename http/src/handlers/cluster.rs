//! `GET /api/v1/admin/cluster`: the cluster as this node sees it.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ErrorBody;
use crate::state::AppState;

/// One live member.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterMemberView {
    /// The node's id.
    pub node_id: String,
    /// The base URL other nodes reach it at.
    pub advertise_url: String,
    /// The `mall` version it runs.
    pub version: String,
    /// When it started (RFC 3339).
    #[schema(format = DateTime)]
    pub started_at: String,
    /// How many shards it owns (rendezvous hashing over the live members).
    pub shards: u32,
}

/// The cluster: the answering node, the live members, and the number of shards.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterView {
    /// The node that answered.
    pub node_id: String,
    /// Live members, by node id (a single node lists itself).
    pub members: Vec<ClusterMemberView>,
    /// `cluster.shards`.
    pub shards: u32,
}

/// The cluster's members and how many shards each owns, as this node sees them.
#[utoipa::path(get, path = "/api/v1/admin/cluster", tag = "admin",
    responses((status = 200, body = ClusterView), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn cluster(st: web::Data<AppState>) -> HttpResponse {
    let snapshot = st.cluster.snapshot();
    HttpResponse::Ok().json(ClusterView {
        node_id: snapshot.node_id,
        members: snapshot
            .members
            .into_iter()
            .map(|m| ClusterMemberView {
                node_id: m.member.node_id,
                advertise_url: m.member.advertise_url,
                version: m.member.version,
                started_at: m.member.started_at,
                shards: m.shards,
            })
            .collect(),
        shards: snapshot.shards,
    })
}
