//! The cluster's write gate: a node that cannot confirm its lease refuses writes.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;

use crate::error::ApiError;
use crate::state::AppState;

/// Refuses writes with 503 `unavailable` while this node cannot confirm its lease: its node
/// number may then belong to another node, so it must neither mint ids nor write (API.md: a
/// node that lost its lease writes nothing more until it has rejoined). Reads go on.
pub async fn write_gate<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe
        && req.path().starts_with("/api/")
        && let Some(state) = req.app_data::<web::Data<AppState>>()
        && !state.cluster.may_write()
    {
        let refusal =
            ApiError::unavailable("this node is re-registering in the cluster, retry shortly");
        return Ok(req.error_response(refusal).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
