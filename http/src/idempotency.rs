//! `Idempotency-Key` (API.md): the same key with the same method, path and body within 24 h
//! returns the first response again with `Idempotent-Replayed: true` and does nothing twice;
//! with a different request, 422 `idempotency_key_reused`; while the first is still running,
//! 409 `idempotency_key_in_use`. Scope: the user.
//!
//! The key is claimed before the effect; the effect binds the key to what it created inside its
//! own transaction (`order:ID`, `payment:ID`), so a crash between the effect and storing the
//! response cannot make a retry repeat the effect: the retry renders what was made instead.
//! The binding takes only a key still bound to nothing, and a failure releases the key only
//! while nothing is bound to it: an effect whose caller gave up either rolls back or is what
//! the retry replays, never a second effect.

use std::future::Future;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use mall_db::repo::idempotency::{self, Claim};
use mall_db::repo::orders::IdempotencyBinding;
use mall_db::{Db, clock};

use crate::error::{ApiError, ErrorCode};

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// The response header on a replay.
pub const REPLAYED: &str = "Idempotent-Replayed";
/// How long a key is remembered.
pub const TTL: Duration = Duration::from_secs(24 * 3600);

/// A response to store and replay.
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its JSON body.
    pub body: serde_json::Value,
}

impl Reply {
    /// A reply with a serialisable body.
    pub fn new(status: StatusCode, body: impl serde::Serialize) -> Self {
        Reply {
            status,
            body: serde_json::to_value(body).unwrap_or(serde_json::Value::Null),
        }
    }

    fn into_response(self, replayed: bool) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if replayed {
            res.insert_header((REPLAYED, "true"));
        }
        res.json(self.body)
    }
}

/// The request's key: absent, or 1..=255 visible ASCII characters (else 400).
pub fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(ApiError::invalid_field(
            HEADER,
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The id in a resource an earlier attempt made (`order:ID`, `payment:ID`).
pub fn resource_id(resource: &str, kind: &str) -> Result<i64, ApiError> {
    resource
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| {
            ApiError::internal(&format!(
                "idempotency record names {resource:?}, not a {kind}"
            ))
        })
}

fn fingerprint(req: &HttpRequest, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(req.method().as_str().as_bytes());
    h.update(b"\n");
    h.update(req.path().as_bytes());
    h.update(b"\n");
    h.update(body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `effect` at most once per key. `recover` renders what an earlier attempt made when it
/// crashed before its response was stored.
pub async fn guard<F, Fut, R, RFut>(
    db: &Db,
    user_id: i64,
    req: &HttpRequest,
    body: &[u8],
    effect: F,
    recover: R,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(Option<IdempotencyBinding>) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
    R: FnOnce(String) -> RFut,
    RFut: Future<Output = Result<Reply, ApiError>>,
{
    let Some(key) = key_of(req)? else {
        return Ok(effect(None).await?.into_response(false));
    };
    let now = clock::now();
    let claim = {
        let mut conn = db.write().await?;
        idempotency::claim(
            &mut conn,
            user_id,
            &key,
            &fingerprint(req, body),
            now,
            mall_db::clock::after(now, TTL),
        )
        .await?
    };
    match claim {
        Claim::Replay { status, body } => {
            let status = u16::try_from(status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
            Ok(Reply { status, body }.into_response(true))
        }
        Claim::Made { resource } => {
            let reply = recover(resource).await?;
            store(db, user_id, &key, &reply).await;
            Ok(reply.into_response(true))
        }
        Claim::InProgress => Err(ApiError::new(
            ErrorCode::IdempotencyKeyInUse,
            "a request with this Idempotency-Key is still being processed",
        )),
        Claim::Mismatch => Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used for a different request",
        )),
        Claim::Fresh => {
            let binding = IdempotencyBinding {
                user_id,
                key: key.clone(),
            };
            let failure = match effect(Some(binding)).await {
                Ok(reply) => {
                    store(db, user_id, &key, &reply).await;
                    return Ok(reply.into_response(false));
                }
                Err(e) => e,
            };
            // This attempt failed, but an earlier attempt of the same request (whose caller gave
            // up while its effect was still running) may have bound the key meanwhile: then what
            // it made is the answer, not this failure (a checkout would otherwise answer
            // `cart_empty` for the purchase that emptied the cart).
            match made_or_released(db, user_id, &key, failure.is_retryable()).await {
                Some(resource) => {
                    let reply = recover(resource).await?;
                    store(db, user_id, &key, &reply).await;
                    Ok(reply.into_response(true))
                }
                // Nothing was done: the key is free again and a retry runs.
                None if failure.is_retryable() => Err(failure),
                None => {
                    // A refusal is an answer too: the same request gets the same refusal.
                    let reply = Reply {
                        status: failure.status,
                        body: failure.body(),
                    };
                    store(db, user_id, &key, &reply).await;
                    Err(failure)
                }
            }
        }
    }
}

/// After a failed effect: what is bound to the key, if anything. When the failure is worth a
/// retry (`release`), the key is also freed, but only while nothing is bound to it.
async fn made_or_released(db: &Db, user_id: i64, key: &str, release: bool) -> Option<String> {
    let found = async {
        let mut conn = db.write().await?;
        if release {
            idempotency::release(&mut conn, user_id, key).await
        } else {
            idempotency::bound_to(&mut conn, user_id, key).await
        }
    };
    found.await.unwrap_or_else(|e| {
        // Unknown: the record stays and its age decides (see `ABANDONED_AFTER`).
        tracing::warn!(error = %e, "idempotency record not settled after a failure");
        None
    })
}

async fn store(db: &Db, user_id: i64, key: &str, reply: &Reply) {
    let stored = async {
        let mut conn = db.write().await?;
        idempotency::complete(
            &mut conn,
            user_id,
            key,
            i32::from(reply.status.as_u16()),
            &reply.body.to_string(),
        )
        .await
    };
    if let Err(e) = stored.await {
        // The binding made inside the effect's transaction still prevents a second effect.
        tracing::warn!(error = %e, "idempotent response not stored");
    }
}
