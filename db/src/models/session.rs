//! The `sessions` (one per login) and `refresh_tokens` rows.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use crate::schema::{refresh_tokens, sessions};

/// A login: the family of refresh tokens issued from one sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct SessionRow {
    /// Session id (the access token's `sid`).
    pub id: i64,
    /// Whose login it is.
    pub user_id: i64,
    /// When the user signed in.
    pub created_at: PrimitiveDateTime,
    /// Set once the login is ended (logout, reuse, password change, ban, account closed).
    pub revoked_at: Option<PrimitiveDateTime>,
    /// Why it was ended.
    pub revoke_reason: Option<String>,
}

/// One refresh token, stored only as its hash.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct RefreshTokenRow {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// The login it belongs to.
    pub session_id: i64,
    /// When it was issued.
    pub issued_at: PrimitiveDateTime,
    /// When it stops being accepted.
    pub expires_at: PrimitiveDateTime,
    /// Set once it has been exchanged for a new pair.
    pub spent_at: Option<PrimitiveDateTime>,
}
