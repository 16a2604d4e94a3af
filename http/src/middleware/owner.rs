//! One owner per entity across nodes, at the HTTP edge. [`internal`] wraps the application:
//! a request to the internal endpoint (`/internal/v1/forward/...`) with a valid signature is
//! unwrapped into the original request, marked [`Forwarded`], and routed as usual; anything
//! else there is 403. [`by_caller`] and [`by_path_user`] wrap the routes of carts, orders,
//! checkout and payments: the request's shard (the caller's user, or the user the path names)
//! decides where it runs. Owned here: it runs here. Owned by another node: it is forwarded
//! there once; a 421 back (that node no longer owns it, or the entity lives on another shard,
//! as an order an admin reads) is retried once where the answer points. No owner right now
//! (a hand-over or a failover): it waits for one, within the request's deadline, then
//! answers 503 `unavailable` with `Retry-After`. A client never sees 421.

use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;

use mall_actors::cluster::Route;

use crate::error::ApiError;
use crate::forward::{self, FORWARDED_DEADLINE, ForwardError, Forwarded};
use crate::state::AppState;

/// The most a body may weigh (API.md: over 64 KiB is 413).
const BODY_LIMIT: usize = 64 * 1024;
/// How long a request sent to its owner waits for the owner's claim in progress.
const CLAIM_WAIT: Duration = Duration::from_secs(2);
/// How long a request waits for a shard to get an owner before it answers 503.
const OWNER_WAIT: Duration = Duration::from_secs(5);

type Reply<B> = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

fn state(req: &ServiceRequest) -> Option<web::Data<AppState>> {
    req.app_data::<web::Data<AppState>>().cloned()
}

fn refuse<B>(req: ServiceRequest, error: ApiError) -> Reply<B> {
    Ok(req.error_response(error).map_into_right_body())
}

/// Reads the whole body (at most [`BODY_LIMIT`]) and puts it back for the handler.
async fn buffer(req: &mut ServiceRequest) -> Result<Bytes, ApiError> {
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(ApiError::new(
                crate::error::ErrorCode::PayloadTooLarge,
                "the body is over 64 KiB",
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    req.set_payload(payload_of(body.clone()));
    Ok(body)
}

fn payload_of(body: Bytes) -> Payload {
    Payload::from(body)
}

/// The internal endpoint: checks the signature and unwraps the original request.
pub async fn internal<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Reply<B> {
    let Some(tail) = req.path().strip_prefix(forward::PREFIX).map(str::to_owned) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let Some(state) = state(&req) else {
        return refuse(req, ApiError::internal(&"application state missing"));
    };
    if !state.cluster.clustered() {
        return refuse(req, ApiError::not_found("route"));
    }
    let body = match buffer(&mut req).await {
        Ok(body) => body,
        Err(e) => return refuse(req, e),
    };
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let original = format!("{tail}{query}");
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let verified = forward::verify(
        state.forwarder.secret(),
        req.method(),
        &original,
        header(forward::DEADLINE_HEADER).as_deref(),
        header(forward::SIGNATURE_HEADER).as_deref(),
        &body,
    );
    let shard = header(forward::SHARD_HEADER).and_then(|s| s.parse().ok());
    let Some(deadline) = verified else {
        return refuse(
            req,
            ApiError::forbidden("the internal endpoint needs a valid cluster signature"),
        );
    };
    let Ok(uri) = original.parse::<actix_web::http::Uri>() else {
        return refuse(req, ApiError::bad_request("malformed forwarded path"));
    };
    req.head_mut().uri = uri.clone();
    req.match_info_mut().get_mut().update(&uri);
    req.extensions_mut().insert(Forwarded { deadline, shard });
    let served = FORWARDED_DEADLINE.scope(deadline, next.call(req)).await?;
    Ok(served.map_into_left_body())
}

/// Routes a request for the caller's own entities (cart, orders, checkout, payments).
pub async fn by_caller<B: MessageBody + 'static>(req: ServiceRequest, next: Next<B>) -> Reply<B> {
    let user = req
        .extensions()
        .get::<crate::auth::AuthUser>()
        .map(|u| u.id);
    route(req, next, user).await
}

/// Routes a request acting on the user the path's `{id}` names (an admin closing an account).
pub async fn by_path_user<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Reply<B> {
    let user = req.match_info().get("id").and_then(|id| id.parse().ok());
    route(req, next, user).await
}

async fn route<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
    user: Option<i64>,
) -> Reply<B> {
    let Some(state) = state(&req) else {
        return refuse(req, ApiError::internal(&"application state missing"));
    };
    let ownership = state.cluster.ownership().clone();
    let Some(user) = user.filter(|_| ownership.is_clustered()) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let mut shard = ownership.shard_of(user);
    let forwarded = req.extensions().get::<Forwarded>().copied();
    if let Some(forwarded) = forwarded {
        let shard = forwarded.shard.unwrap_or(shard);
        // Sent here as the owner: served here (once a claim in progress is done), or refused
        // so that the sender looks again.
        let until = Instant::now() + CLAIM_WAIT;
        while ownership.acquiring(shard) && Instant::now() < until {
            ownership.changed_within(Duration::from_millis(50)).await;
        }
        return match ownership.enter(shard) {
            Some(entered) => {
                let served = next.call(req).await;
                drop(entered);
                Ok(served?.map_into_left_body())
            }
            None => refuse(req, ApiError::misdirected(shard)),
        };
    }
    let deadline = state.deadline();
    let body = match buffer(&mut req).await {
        Ok(body) => body,
        Err(e) => return refuse(req, e),
    };
    let head = req.request().clone();
    let request_id = req
        .extensions()
        .get::<crate::middleware::observe::RequestId>()
        .map(|id| id.0.clone());
    let wait_until = Instant::now() + OWNER_WAIT.min(deadline.remaining());
    // One run here, and one forward plus one retry after a 421, at most.
    let mut local = Some((req, next));
    let mut forwards = 0;
    loop {
        match ownership.route(shard) {
            Route::Local => {
                let Some((req, next)) = local.take() else {
                    return give_up(&head, shard, "refused here twice");
                };
                let Some(entered) = ownership.enter(shard) else {
                    local = Some((req, next));
                    continue;
                };
                let served = next.call(req).await?;
                drop(entered);
                match misdirected_to(served.status(), served.headers()) {
                    Some(elsewhere) => shard = elsewhere,
                    None => return Ok(served.map_into_left_body()),
                }
            }
            Route::Remote(node) => {
                if forwards == 2 {
                    return give_up(&head, shard, "refused by two owners");
                }
                let Some(url) = state.cluster.url_of(&node) else {
                    // Claimed by a node that has just left: its successor comes.
                    if !wait(&ownership, wait_until).await {
                        return give_up(&head, shard, "its owner left and none came");
                    }
                    continue;
                };
                forwards += 1;
                match state
                    .forwarder
                    .send(
                        &url,
                        &head,
                        body.clone(),
                        shard,
                        deadline,
                        request_id.as_deref(),
                    )
                    .await
                {
                    Ok(response) => {
                        match misdirected_to(response.status(), response.headers()) {
                            Some(elsewhere) => {
                                ownership.count_misdirected();
                                if elsewhere == shard {
                                    // It is handing the shard over, or lost it: look again
                                    // once the view shows another owner.
                                    let stale = Route::Remote(node.clone());
                                    while ownership.route(shard) == stale {
                                        if !wait(&ownership, wait_until).await {
                                            return give_up(&head, shard, "its owner refuses it");
                                        }
                                    }
                                }
                                shard = elsewhere;
                            }
                            None => {
                                ownership.count_forward("ok");
                                return answer(&head, response);
                            }
                        }
                    }
                    Err(ForwardError::Connect(why)) => {
                        // Nothing reached it: it is stopping or dead, and its shards move.
                        ownership.count_forward("failed");
                        tracing::debug!(error = %why, node = %node, "owner unreachable; waiting for a new owner");
                        forwards -= 1;
                        if !wait(&ownership, wait_until).await {
                            return give_up(&head, shard, "its owner cannot be reached");
                        }
                    }
                    Err(e @ ForwardError::NoAnswer { .. }) => {
                        // It may have acted: never send it twice, and say so.
                        ownership.count_forward("failed");
                        tracing::warn!(error = %e, node = %node, "forwarded request got no answer");
                        return answer(&head, outcome_unknown());
                    }
                }
            }
            Route::Unclaimed => {
                if !wait(&ownership, wait_until).await {
                    return give_up(&head, shard, "no node claimed it");
                }
            }
        }
    }
}

/// Waits for a change of the shard table, until `until`; false once it passed.
async fn wait(ownership: &mall_actors::cluster::Ownership, until: Instant) -> bool {
    let left = until.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return false;
    }
    // Short rounds: a claim seen through the watch wakes it, and so does time.
    ownership
        .changed_within(left.min(Duration::from_millis(100)))
        .await;
    true
}

/// The shard a 421 answer names.
fn misdirected_to(status: StatusCode, headers: &actix_web::http::header::HeaderMap) -> Option<u32> {
    if status != StatusCode::MISDIRECTED_REQUEST {
        return None;
    }
    headers
        .get(forward::SHARD_HEADER)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// 503 for a request its owner received but never answered (it stopped meanwhile): unlike
/// every other 503, this one may have taken effect. `details.outcome` says so, for a client
/// deciding whether to send again a request that is not idempotent.
fn outcome_unknown() -> HttpResponse {
    actix_web::ResponseError::error_response(
        &ApiError::unavailable(
            "the node owning this data stopped while serving the request: it may have taken \
             effect; read it back before sending it again",
        )
        .with_detail("outcome", "unknown"),
    )
}

fn unavailable() -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::unavailable(
        "the owner of this data is being replaced, retry shortly",
    ))
}

/// Answers 503: the shard had no owner that would serve the request within its wait.
fn give_up<B>(head: &HttpRequest, shard: u32, why: &str) -> Reply<B> {
    tracing::warn!(
        shard,
        why,
        "no owner served the request in time; answering 503"
    );
    answer(head, unavailable())
}

fn answer<B>(head: &HttpRequest, response: HttpResponse<BoxBody>) -> Reply<B> {
    Ok(ServiceResponse::new(head.clone(), response).map_into_right_body())
}
