//! Logins (sessions) and their refresh tokens: rotation, reuse detection, revocation.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use time::PrimitiveDateTime;

use crate::error::DbError;
use crate::models::{RefreshTokenRow, SessionRow};
use crate::pool::DbConn;
use crate::schema::{refresh_tokens, sessions};
use crate::with_conn;

/// `UPDATE sessions SET revoked_at, revoke_reason WHERE <filter> AND revoked_at IS NULL`.
macro_rules! revoke_sessions_query {
    ($filter:expr, $reason:expr, $now:expr) => {
        diesel::update(
            sessions::table
                .filter($filter)
                .filter(sessions::revoked_at.is_null()),
        )
        .set((
            sessions::revoked_at.eq(Some($now)),
            sessions::revoke_reason.eq(Some($reason.to_owned())),
        ))
    };
}

/// Records a new login and its first refresh token, atomically.
#[tracing::instrument(
    name = "db.transaction",
    level = "info",
    skip_all,
    fields(op = "sessions.create")
)]
pub async fn create(
    conn: &mut DbConn,
    session: SessionRow,
    first_token: RefreshTokenRow,
) -> Result<(), DbError> {
    with_conn!(conn, c => c.transaction(async |c| {
        diesel::insert_into(sessions::table).values(&session).execute(c).await?;
        diesel::insert_into(refresh_tokens::table).values(&first_token).execute(c).await?;
        Ok::<_, DbError>(())
    }).await)
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid and is now spent; `next` was stored in its place.
    Rotated {
        /// The login's session id.
        session_id: i64,
        /// The user it belongs to.
        user_id: i64,
    },
    /// The token was already spent: the whole login has now been revoked.
    Reused {
        /// Whose login it was.
        user_id: i64,
    },
    /// Unknown, expired, or its login was already ended.
    Invalid,
}

/// Spends the refresh token whose hash is `token_hash` and stores `next` (whose `session_id` is
/// filled in here) in the same transaction. A token already spent revokes its whole login.
/// Two concurrent presentations of one token: one rotates, the other counts as reuse.
#[tracing::instrument(
    name = "db.transaction",
    level = "info",
    skip_all,
    fields(op = "sessions.rotate")
)]
pub async fn rotate(
    conn: &mut DbConn,
    token_hash: &str,
    mut next: RefreshTokenRow,
    now: PrimitiveDateTime,
) -> Result<Rotation, DbError> {
    let hash = token_hash.to_owned();
    let outcome = with_conn!(conn, c => c.transaction(async |c| {
        let found: Option<(RefreshTokenRow, SessionRow)> = refresh_tokens::table
            .inner_join(sessions::table)
            .filter(refresh_tokens::token_hash.eq(&hash))
            .select((RefreshTokenRow::as_select(), SessionRow::as_select()))
            .first(c)
            .await
            .optional()?;
        let Some((token, session)) = found else {
            return Ok::<_, DbError>(Rotation::Invalid);
        };
        if session.revoked_at.is_some() {
            return Ok(Rotation::Invalid);
        }
        if token.spent_at.is_some() {
            revoke_sessions_query!(sessions::id.eq(session.id), "refresh_token_reused", now).execute(c).await?;
            return Ok(Rotation::Reused { user_id: session.user_id });
        }
        if token.expires_at <= now {
            return Ok(Rotation::Invalid);
        }
        // Conditional: of two racing requests only one sees the token unspent.
        let spent = diesel::update(refresh_tokens::table.find(&hash).filter(refresh_tokens::spent_at.is_null()))
            .set(refresh_tokens::spent_at.eq(Some(now)))
            .execute(c)
            .await?;
        if spent == 0 {
            revoke_sessions_query!(sessions::id.eq(session.id), "refresh_token_reused", now).execute(c).await?;
            return Ok(Rotation::Reused { user_id: session.user_id });
        }
        next.session_id = session.id;
        diesel::insert_into(refresh_tokens::table).values(&next).execute(c).await?;
        Ok(Rotation::Rotated { session_id: session.id, user_id: session.user_id })
    }).await)?;
    Ok(outcome)
}

/// Ends one login of `user_id`. Returns false when it does not exist, is another user's, or
/// was already ended.
pub async fn revoke(
    conn: &mut DbConn,
    user_id: i64,
    session_id: i64,
    reason: &str,
    now: PrimitiveDateTime,
) -> Result<bool, DbError> {
    let q = revoke_sessions_query!(
        sessions::id
            .eq(session_id)
            .and(sessions::user_id.eq(user_id)),
        reason,
        now
    );
    Ok(with_conn!(conn, c => q.execute(c).await)? > 0)
}

/// Ends every login of `user_id` except `keep` (when given). Returns how many were ended.
pub async fn revoke_all(
    conn: &mut DbConn,
    user_id: i64,
    keep: Option<i64>,
    reason: &str,
    now: PrimitiveDateTime,
) -> Result<usize, DbError> {
    let keep = keep.unwrap_or(-1);
    let q = revoke_sessions_query!(
        sessions::user_id.eq(user_id).and(sessions::id.ne(keep)),
        reason,
        now
    );
    Ok(with_conn!(conn, c => q.execute(c).await)?)
}

/// The session that a refresh token belongs to, if the token is known.
pub async fn session_of_token(
    conn: &mut DbConn,
    token_hash: &str,
) -> Result<Option<SessionRow>, DbError> {
    let q = refresh_tokens::table
        .inner_join(sessions::table)
        .filter(refresh_tokens::token_hash.eq(token_hash.to_owned()));
    Ok(with_conn!(conn, c => q.select(SessionRow::as_select()).first(c).await.optional())?)
}

/// Deletes refresh tokens that expired before `before` (housekeeping).
pub async fn purge_expired_tokens(
    conn: &mut DbConn,
    before: PrimitiveDateTime,
) -> Result<usize, DbError> {
    let q = diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(before)));
    Ok(with_conn!(conn, c => q.execute(c).await)?)
}
