//! The `users` row.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::schema::users;

/// A user account as stored (the password only as an argon2id hash).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct UserRow {
    /// Application-generated id.
    pub id: i64,
    /// The email as the user typed it.
    pub email: String,
    /// Lower-cased email, unique among open accounts.
    pub email_norm: String,
    /// Display name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Set while the account is banned.
    pub banned_at: Option<PrimitiveDateTime>,
    /// Why it was banned.
    pub ban_reason: Option<String>,
    /// Set once the account is closed.
    pub closed_at: Option<PrimitiveDateTime>,
    /// Last password change (or creation).
    pub password_changed_at: PrimitiveDateTime,
    /// Creation time (UTC).
    pub created_at: PrimitiveDateTime,
    /// Last change (UTC).
    pub updated_at: PrimitiveDateTime,
    /// Bumped on every change.
    pub version: i64,
}

/// What registration writes.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser {
    /// Application-generated id.
    pub id: i64,
    /// The email as typed.
    pub email: String,
    /// Lower-cased email.
    pub email_norm: String,
    /// Display name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Same as `created_at` at first.
    pub password_changed_at: PrimitiveDateTime,
    /// Creation time.
    pub created_at: PrimitiveDateTime,
    /// Same as `created_at` at first.
    pub updated_at: PrimitiveDateTime,
}
