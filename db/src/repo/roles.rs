//! Roles and their permissions, and the policy version every node polls.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use time::PrimitiveDateTime;

use crate::error::DbError;
use crate::models::{PermissionRow, RoleWithPermissions};
use crate::pool::DbConn;
use crate::schema::{permissions, policy_state, roles};
use crate::with_conn;

/// A permission to store: `(method, path regex, effect)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPermission {
    /// An HTTP method or `*`.
    pub method: String,
    /// A regular expression over the whole path.
    pub path: String,
    /// `allow` or `deny`.
    pub effect: String,
}

/// Every role with its permissions, roles by name and permissions by position.
pub async fn list_all(conn: &mut DbConn) -> Result<Vec<RoleWithPermissions>, DbError> {
    let names_q = roles::table.select(roles::name).order(roles::name.asc());
    let perms_q =
        permissions::table.order((permissions::role_name.asc(), permissions::position.asc()));
    let (names, perms) = with_conn!(conn, c => {
        let names: Vec<String> = names_q.load(c).await?;
        let perms: Vec<PermissionRow> = perms_q.select(PermissionRow::as_select()).load(c).await?;
        Ok::<_, DbError>((names, perms))
    })?;
    Ok(group(names, perms))
}

fn group(names: Vec<String>, perms: Vec<PermissionRow>) -> Vec<RoleWithPermissions> {
    // By name, in Rust: the database's collation may order names differently from byte order.
    let mut by_name: std::collections::BTreeMap<String, Vec<PermissionRow>> =
        names.into_iter().map(|n| (n, Vec::new())).collect();
    for p in perms {
        if let Some(list) = by_name.get_mut(&p.role_name) {
            list.push(p);
        }
    }
    by_name
        .into_iter()
        .map(|(name, mut permissions)| {
            permissions.sort_by_key(|p| p.position);
            RoleWithPermissions { name, permissions }
        })
        .collect()
}

/// One role with its permissions.
pub async fn find(conn: &mut DbConn, name: &str) -> Result<Option<RoleWithPermissions>, DbError> {
    let name = name.to_owned();
    let exists_q = roles::table.find(name.clone()).select(roles::name);
    let perms_q = permissions::table
        .filter(permissions::role_name.eq(name.clone()))
        .order(permissions::position.asc());
    with_conn!(conn, c => {
        let found: Option<String> = exists_q.first(c).await.optional()?;
        let Some(name) = found else { return Ok(None) };
        let permissions: Vec<PermissionRow> = perms_q.select(PermissionRow::as_select()).load(c).await?;
        Ok(Some(RoleWithPermissions { name, permissions }))
    })
}

/// Creates the role or replaces its permissions, and bumps the policy version, atomically.
/// Returns true when the role was created.
#[tracing::instrument(
    name = "db.transaction",
    level = "info",
    skip_all,
    fields(op = "roles.put")
)]
pub async fn put(
    conn: &mut DbConn,
    name: &str,
    perms: &[NewPermission],
    now: PrimitiveDateTime,
) -> Result<bool, DbError> {
    let name = name.to_owned();
    let rows: Vec<PermissionRow> = perms
        .iter()
        .enumerate()
        .map(|(i, p)| PermissionRow {
            role_name: name.clone(),
            position: i32::try_from(i).unwrap_or(i32::MAX),
            method: p.method.clone(),
            path: p.path.clone(),
            effect: p.effect.clone(),
        })
        .collect();
    with_conn!(conn, c => c.transaction(async |c| {
        let updated = diesel::update(roles::table.find(name.clone()))
            .set(roles::updated_at.eq(now))
            .execute(c)
            .await?;
        if updated == 0 {
            diesel::insert_into(roles::table)
                .values((roles::name.eq(name.clone()), roles::created_at.eq(now), roles::updated_at.eq(now)))
                .execute(c)
                .await?;
        }
        diesel::delete(permissions::table.filter(permissions::role_name.eq(name.clone()))).execute(c).await?;
        for row in &rows {
            diesel::insert_into(permissions::table).values(row).execute(c).await?;
        }
        diesel::update(policy_state::table.find(1))
            .set(policy_state::version.eq(policy_state::version + 1))
            .execute(c)
            .await?;
        Ok::<_, DbError>(updated == 0)
    }).await)
}

/// Deletes a role (its permissions and grants go with it) and bumps the policy version.
/// Returns false when there was no such role.
#[tracing::instrument(
    name = "db.transaction",
    level = "info",
    skip_all,
    fields(op = "roles.delete")
)]
pub async fn delete(conn: &mut DbConn, name: &str) -> Result<bool, DbError> {
    let name = name.to_owned();
    with_conn!(conn, c => c.transaction(async |c| {
        // Explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign_keys on, and the
        // order must not depend on that setting.
        diesel::delete(crate::schema::user_roles::table.filter(crate::schema::user_roles::role_name.eq(name.clone())))
            .execute(c)
            .await?;
        diesel::delete(permissions::table.filter(permissions::role_name.eq(name.clone()))).execute(c).await?;
        let gone = diesel::delete(roles::table.find(name.clone())).execute(c).await?;
        if gone > 0 {
            diesel::update(policy_state::table.find(1))
                .set(policy_state::version.eq(policy_state::version + 1))
                .execute(c)
                .await?;
        }
        Ok::<_, DbError>(gone > 0)
    }).await)
}

/// The current policy version (bumped by every role or permission change).
pub async fn policy_version(conn: &mut DbConn) -> Result<i64, DbError> {
    let q = policy_state::table.find(1).select(policy_state::version);
    Ok(with_conn!(conn, c => q.first(c).await)?)
}
