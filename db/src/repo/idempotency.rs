//! Idempotency-Key records: claim a key for a request, bind it to what the request created
//! (inside that effect's own transaction), and store the response to replay.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use time::PrimitiveDateTime;

use crate::domain::placement::IdempotencyBinding;
use crate::error::DbError;
use crate::pool::DbConn;
use crate::schema::idempotency_keys;
use crate::with_conn;

/// `UPDATE idempotency_keys SET resource = $resource WHERE (user, key) = $binding AND resource
/// IS NULL`, expanded inside another repository's transaction (`$c` a concrete connection);
/// yields the number of rows bound. 0 means the key no longer waits for this effect (its caller
/// gave up and released it, or another attempt bound it first): the effect must roll back, so
/// a released key never has an effect behind it.
macro_rules! bind {
    ($c:expr, $binding:expr, $resource:expr) => {
        diesel::update(
            $crate::schema::idempotency_keys::table
                .filter($crate::schema::idempotency_keys::user_id.eq($binding.user_id))
                .filter($crate::schema::idempotency_keys::idem_key.eq($binding.key.clone()))
                .filter($crate::schema::idempotency_keys::resource.is_null()),
        )
        .set($crate::schema::idempotency_keys::resource.eq(Some($resource)))
        .execute($c)
        .await
    };
}
pub(crate) use bind;

/// Binds the caller's key to `resource` (what the request made, `order:ID`), inside the
/// transaction of the effect. `Ok(false)`: the key no longer waits for it (its caller gave up
/// and it was released, or another attempt bound it first); the caller must roll back.
pub async fn bind_key(
    conn: &mut DbConn,
    binding: &IdempotencyBinding,
    resource: String,
) -> Result<bool, DbError> {
    Ok(with_conn!(conn, c => bind!(c, binding, resource))? == 1)
}

/// How old a record without a stored response must be before its request counts as dead.
pub const ABANDONED_AFTER: time::Duration = time::Duration::seconds(60);

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: go ahead, then [`complete`] it.
    Fresh,
    /// The same request was done: replay this.
    Replay {
        /// The first response's status.
        status: i32,
        /// The first response's body.
        body: String,
    },
    /// The same request made `resource` but died before its response was stored.
    Made {
        /// `order:ID` or `payment:ID`.
        resource: String,
    },
    /// The same request is still being processed (or died less than a minute ago).
    InProgress,
    /// The key was used for a different request.
    Mismatch,
}

/// Claims `key` for the request with `fingerprint` (an expired record is replaced).
pub async fn claim(
    conn: &mut DbConn,
    user_id: i64,
    key: &str,
    fingerprint: &str,
    now: PrimitiveDateTime,
    expires_at: PrimitiveDateTime,
) -> Result<Claim, DbError> {
    let row = (
        idempotency_keys::user_id.eq(user_id),
        idempotency_keys::idem_key.eq(key.to_owned()),
        idempotency_keys::fingerprint.eq(fingerprint.to_owned()),
        idempotency_keys::created_at.eq(now),
        idempotency_keys::expires_at.eq(expires_at),
    );
    type Found = (
        String,
        Option<String>,
        Option<i32>,
        Option<String>,
        PrimitiveDateTime,
        PrimitiveDateTime,
    );
    for _ in 0..2 {
        let inserted = with_conn!(conn, c => diesel::insert_into(idempotency_keys::table).values(row.clone()).execute(c).await);
        match inserted.map_err(DbError::from) {
            Ok(_) => return Ok(Claim::Fresh),
            Err(DbError::UniqueViolation(_)) => {}
            Err(e) => return Err(e),
        }
        let found: Option<Found> = with_conn!(conn, c => idempotency_keys::table
            .find((user_id, key.to_owned()))
            .select((
                idempotency_keys::fingerprint,
                idempotency_keys::resource,
                idempotency_keys::response_status,
                idempotency_keys::response_body,
                idempotency_keys::expires_at,
                idempotency_keys::created_at,
            ))
            .first(c)
            .await
            .optional())?;
        let Some((stored_fp, resource, status, body, expires, created)) = found else {
            continue;
        };
        if expires <= now {
            with_conn!(conn, c => diesel::delete(idempotency_keys::table.find((user_id, key.to_owned()))).execute(c).await)?;
            continue;
        }
        if stored_fp != fingerprint {
            return Ok(Claim::Mismatch);
        }
        // No request runs this long (every wait in it has a shorter timeout): a record still
        // without a response is one whose request died.
        let abandoned = created <= now - ABANDONED_AFTER;
        return Ok(match (status, body, resource) {
            (Some(status), Some(body), _) => Claim::Replay { status, body },
            (_, _, Some(resource)) if abandoned => Claim::Made { resource },
            (_, _, None) if abandoned => {
                // It died before its effect (the effect binds the key in its own transaction).
                with_conn!(conn, c => diesel::delete(idempotency_keys::table.find((user_id, key.to_owned()))).execute(c).await)?;
                continue;
            }
            _ => Claim::InProgress,
        });
    }
    Ok(Claim::InProgress)
}

/// Stores the response to replay for `key`.
pub async fn complete(
    conn: &mut DbConn,
    user_id: i64,
    key: &str,
    status: i32,
    body: &str,
) -> Result<(), DbError> {
    let q = diesel::update(idempotency_keys::table.find((user_id, key.to_owned()))).set((
        idempotency_keys::response_status.eq(Some(status)),
        idempotency_keys::response_body.eq(Some(body.to_owned())),
    ));
    with_conn!(conn, c => q.execute(c).await)?;
    Ok(())
}

/// The message of the error an effect fails with when its key was no longer held.
pub const KEY_NOT_HELD: &str = "the Idempotency-Key was released before the effect committed";

/// Forgets `key` so a retry can run, unless an effect is already bound to it: then its
/// resource (`order:ID`, `payment:ID`) is returned and the record kept, so the retry finds
/// what was made instead of making it again.
pub async fn release(
    conn: &mut DbConn,
    user_id: i64,
    key: &str,
) -> Result<Option<String>, DbError> {
    let q = diesel::delete(
        idempotency_keys::table
            .find((user_id, key.to_owned()))
            .filter(idempotency_keys::resource.is_null()),
    );
    if with_conn!(conn, c => q.execute(c).await)? > 0 {
        return Ok(None);
    }
    bound_to(conn, user_id, key).await
}

/// What an effect bound to `key` (`order:ID`, `payment:ID`), if anything.
pub async fn bound_to(
    conn: &mut DbConn,
    user_id: i64,
    key: &str,
) -> Result<Option<String>, DbError> {
    let q = idempotency_keys::table
        .find((user_id, key.to_owned()))
        .select(idempotency_keys::resource);
    Ok(with_conn!(conn, c => q.first::<Option<String>>(c).await.optional())?.flatten())
}

/// Deletes expired records (housekeeping).
pub async fn purge_expired(conn: &mut DbConn, now: PrimitiveDateTime) -> Result<usize, DbError> {
    let q = diesel::delete(idempotency_keys::table.filter(idempotency_keys::expires_at.le(now)));
    Ok(with_conn!(conn, c => q.execute(c).await)?)
}
