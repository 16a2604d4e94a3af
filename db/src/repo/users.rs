//! User accounts and their roles.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use time::PrimitiveDateTime;

use super::{Page, like_escape, page_bounds};
use crate::error::DbError;
use crate::models::{NewUser, UserRow};
use crate::pool::DbConn;
use crate::schema::{roles, sessions, user_roles, users};
use crate::with_conn;

/// What a request needs to know about its caller, read in one go on every authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthState {
    /// The account is banned.
    pub banned: bool,
    /// The account is closed.
    pub closed: bool,
    /// The login (session) the token belongs to has been ended.
    pub session_revoked: bool,
    /// The user's roles now.
    pub roles: Vec<String>,
}

/// Inserts a user with the given roles in one transaction. An email already used by an open
/// account fails with `DbError::UniqueViolation`.
#[tracing::instrument(
    name = "db.transaction",
    level = "info",
    skip_all,
    fields(op = "users.insert")
)]
pub async fn insert(
    conn: &mut DbConn,
    user: NewUser,
    role_names: &[String],
) -> Result<UserRow, DbError> {
    with_conn!(conn, c => c.transaction(async |c| {
        // Grant only roles that still exist (an admin may have deleted a built-in one).
        let existing: Vec<String> = roles::table
            .filter(roles::name.eq_any(role_names))
            .select(roles::name)
            .load(c)
            .await?;
        let row: UserRow = diesel::insert_into(users::table)
            .values(&user)
            .returning(UserRow::as_returning())
            .get_result(c)
            .await?;
        for role in existing {
            diesel::insert_into(user_roles::table)
                .values((user_roles::user_id.eq(row.id), user_roles::role_name.eq(role)))
                .execute(c)
                .await?;
        }
        Ok::<_, DbError>(row)
    }).await)
}

/// A user by id, open or closed.
pub async fn find(conn: &mut DbConn, id: i64) -> Result<Option<UserRow>, DbError> {
    Ok(
        with_conn!(conn, c => users::table.find(id).select(UserRow::as_select()).first(c).await.optional())?,
    )
}

/// The open account with this (already lower-cased) email.
pub async fn find_open_by_email(
    conn: &mut DbConn,
    email_norm: &str,
) -> Result<Option<UserRow>, DbError> {
    let q = users::table
        .filter(users::email_norm.eq(email_norm))
        .filter(users::closed_at.is_null());
    Ok(with_conn!(conn, c => q.select(UserRow::as_select()).first(c).await.optional())?)
}

/// The user's role names, sorted.
pub async fn roles_of(conn: &mut DbConn, user_id: i64) -> Result<Vec<String>, DbError> {
    let q = user_roles::table
        .filter(user_roles::user_id.eq(user_id))
        .select(user_roles::role_name)
        .order(user_roles::role_name.asc());
    Ok(with_conn!(conn, c => q.load(c).await)?)
}

/// The caller's account and login state and roles; `None` when the user does not exist.
pub async fn auth_state(
    conn: &mut DbConn,
    user_id: i64,
    session_id: i64,
) -> Result<Option<AuthState>, DbError> {
    let user_q = users::table.find(user_id).select((
        users::banned_at.is_not_null(),
        users::closed_at.is_not_null(),
    ));
    let session_q = sessions::table
        .find(session_id)
        .filter(sessions::user_id.eq(user_id))
        .select(sessions::revoked_at.is_not_null());
    let roles_q = user_roles::table
        .filter(user_roles::user_id.eq(user_id))
        .select(user_roles::role_name)
        .order(user_roles::role_name.asc());
    let (user, session, roles) = with_conn!(conn, c => {
        let user: Option<(bool, bool)> = user_q.first(c).await.optional()?;
        let session: Option<bool> = session_q.first(c).await.optional()?;
        let roles: Vec<String> = roles_q.load(c).await?;
        Ok::<_, DbError>((user, session, roles))
    })?;
    Ok(user.map(|(banned, closed)| AuthState {
        banned,
        closed,
        // An unknown session (or another user's) counts as ended.
        session_revoked: session.unwrap_or(true),
        roles,
    }))
}

/// Changes the name and/or password hash; a new password also records `password_changed_at`.
pub async fn update_profile(
    conn: &mut DbConn,
    id: i64,
    name: Option<&str>,
    password_hash: Option<&str>,
    now: PrimitiveDateTime,
) -> Result<Option<UserRow>, DbError> {
    let target = users::table.find(id).filter(users::closed_at.is_null());
    let changes = (
        name.map(|n| users::name.eq(n.to_owned())),
        password_hash.map(|h| users::password_hash.eq(h.to_owned())),
        password_hash.map(|_| users::password_changed_at.eq(now)),
        users::updated_at.eq(now),
        users::version.eq(users::version + 1),
    );
    let q = diesel::update(target).set(changes);
    Ok(with_conn!(conn, c => q.returning(UserRow::as_returning()).get_result(c).await.optional())?)
}

/// What [`set_roles`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetRoles {
    /// The roles were replaced.
    Done,
    /// No such user.
    NoSuchUser,
    /// These role names do not exist; nothing was changed.
    UnknownRoles(Vec<String>),
}

/// Replaces the user's roles, all or nothing.
#[tracing::instrument(
    name = "db.transaction",
    level = "info",
    skip_all,
    fields(op = "users.set_roles")
)]
pub async fn set_roles(
    conn: &mut DbConn,
    id: i64,
    role_names: &[String],
    now: PrimitiveDateTime,
) -> Result<SetRoles, DbError> {
    let mut wanted: Vec<String> = role_names.to_vec();
    wanted.sort();
    wanted.dedup();
    with_conn!(conn, c => c.transaction(async |c| {
        let exists: i64 = users::table.find(id).count().get_result(c).await?;
        if exists == 0 {
            return Ok::<_, DbError>(SetRoles::NoSuchUser);
        }
        let known: Vec<String> = roles::table
            .filter(roles::name.eq_any(&wanted))
            .select(roles::name)
            .load(c)
            .await?;
        let unknown: Vec<String> = wanted.iter().filter(|r| !known.contains(r)).cloned().collect();
        if !unknown.is_empty() {
            return Ok(SetRoles::UnknownRoles(unknown));
        }
        diesel::update(users::table.find(id))
            .set((users::updated_at.eq(now), users::version.eq(users::version + 1)))
            .execute(c)
            .await?;
        diesel::delete(user_roles::table.filter(user_roles::user_id.eq(id))).execute(c).await?;
        for role in &wanted {
            diesel::insert_into(user_roles::table)
                .values((user_roles::user_id.eq(id), user_roles::role_name.eq(role)))
                .execute(c)
                .await?;
        }
        Ok(SetRoles::Done)
    }).await)
}

/// Bans (`Some(reason)`) or lifts a ban (`None`). Returns false when the user does not exist or
/// is closed. Banning also ends every login of the user (in the same transaction), so tokens
/// issued before the ban stay dead after it is lifted.
#[tracing::instrument(
    name = "db.transaction",
    level = "info",
    skip_all,
    fields(op = "users.set_ban")
)]
pub async fn set_ban(
    conn: &mut DbConn,
    id: i64,
    reason: Option<&str>,
    now: PrimitiveDateTime,
) -> Result<bool, DbError> {
    let reason = reason.map(str::to_owned);
    with_conn!(conn, c => c.transaction(async |c| {
        let target = users::table.find(id).filter(users::closed_at.is_null());
        let touched = diesel::update(target)
            .set((
                users::banned_at.eq(reason.as_ref().map(|_| now)),
                users::ban_reason.eq(reason.clone()),
                users::updated_at.eq(now),
                users::version.eq(users::version + 1),
            ))
            .execute(c)
            .await?;
        if touched > 0 && reason.is_some() {
            diesel::update(sessions::table.filter(sessions::user_id.eq(id)).filter(sessions::revoked_at.is_null()))
                .set((sessions::revoked_at.eq(Some(now)), sessions::revoke_reason.eq(Some("banned"))))
                .execute(c)
                .await?;
        }
        Ok::<_, DbError>(touched > 0)
    }).await)
}

/// Closes an open account and ends every login of it. Returns false when there is no open
/// account with that id.
#[tracing::instrument(
    name = "db.transaction",
    level = "info",
    skip_all,
    fields(op = "users.close")
)]
pub async fn close(conn: &mut DbConn, id: i64, now: PrimitiveDateTime) -> Result<bool, DbError> {
    with_conn!(conn, c => c.transaction(async |c| {
        let target = users::table.find(id).filter(users::closed_at.is_null());
        let touched = diesel::update(target)
            .set((users::closed_at.eq(Some(now)), users::updated_at.eq(now), users::version.eq(users::version + 1)))
            .execute(c)
            .await?;
        if touched > 0 {
            diesel::update(sessions::table.filter(sessions::user_id.eq(id)).filter(sessions::revoked_at.is_null()))
                .set((sessions::revoked_at.eq(Some(now)), sessions::revoke_reason.eq(Some("account_closed"))))
                .execute(c)
                .await?;
        }
        Ok::<_, DbError>(touched > 0)
    }).await)
}

/// Users whose email contains `email_filter` (case-insensitive), oldest first, with each one's roles.
pub async fn list(
    conn: &mut DbConn,
    email_filter: Option<&str>,
    page: u32,
    page_size: u32,
) -> Result<Page<(UserRow, Vec<String>)>, DbError> {
    let (offset, limit) = page_bounds(page, page_size);
    let pattern = email_filter.map(|f| format!("%{}%", like_escape(&f.to_lowercase())));
    // A macro, not a closure: the boxed query's type names its backend.
    macro_rules! filtered {
        () => {{
            let mut q = users::table.into_boxed();
            if let Some(p) = &pattern {
                q = q.filter(users::email_norm.like(p.clone()).escape('\\'));
            }
            q
        }};
    }
    let (rows, total, links) = with_conn!(conn, c => {
        let total: i64 = filtered!().count().get_result(c).await?;
        let rows: Vec<UserRow> = filtered!()
            .select(UserRow::as_select())
            .order(users::id.asc())
            .offset(offset)
            .limit(limit)
            .load(c)
            .await?;
        let ids: Vec<i64> = rows.iter().map(|u| u.id).collect();
        let links: Vec<(i64, String)> = user_roles::table
            .filter(user_roles::user_id.eq_any(ids))
            .select((user_roles::user_id, user_roles::role_name))
            .order((user_roles::user_id.asc(), user_roles::role_name.asc()))
            .load(c)
            .await?;
        Ok::<_, DbError>((rows, total, links))
    })?;
    let items = rows
        .into_iter()
        .map(|u| {
            let roles = links
                .iter()
                .filter(|(uid, _)| *uid == u.id)
                .map(|(_, r)| r.clone())
                .collect();
            (u, roles)
        })
        .collect();
    Ok(Page { items, total })
}
