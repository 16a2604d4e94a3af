//! Bodies of the identity, admin-user and role routes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use mall_db::models::{RoleWithPermissions, UserRow};

use super::{present, stored_time};

/// `POST /users`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Unique, case-insensitively.
    #[schema(max_length = 254, pattern = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]+$")]
    pub email: String,
    /// 8..=128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// 1..=64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
}

/// `POST /auth/login`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The account's email (any case).
    pub email: String,
    /// Its password.
    pub password: String,
}

/// `POST /auth/refresh`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token to spend.
    pub refresh_token: String,
}

/// `POST /auth/logout` (the body is optional)
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// Also end the login this refresh token belongs to (it must be the caller's).
    pub refresh_token: Option<String>,
}

/// A new token pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    /// The JWT to send as `Authorization: Bearer`.
    pub access_token: String,
    /// The opaque token to renew with; single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

/// `GET /auth/verify`
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    /// The token's user.
    pub user_id: String,
    /// The user's roles now.
    pub roles: Vec<String>,
    /// When the token expires (RFC 3339).
    pub expires_at: String,
}

/// `PATCH /users/me`: only the fields given change; `null` is refused (400).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// New display name, 1..=64 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    pub name: Option<Option<String>>,
    /// New password, 8..=128 characters; needs `current_password`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    pub password: Option<Option<String>>,
    /// The current password.
    pub current_password: Option<String>,
}

/// `DELETE /users/me`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseAccountRequest {
    /// The account's password, to confirm.
    pub password: String,
}

/// A user's own view of the account.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Id (a string).
    pub id: String,
    /// Email as registered.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role names.
    pub roles: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl UserView {
    /// The view of a row and its roles.
    pub fn of(u: &UserRow, roles: Vec<String>) -> Self {
        UserView {
            id: u.id.to_string(),
            email: u.email.clone(),
            name: u.name.clone(),
            roles,
            created_at: stored_time(u.created_at),
            updated_at: stored_time(u.updated_at),
        }
    }
}

/// What an admin sees of an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserView {
    /// Id (a string).
    pub id: String,
    /// Email as registered.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role names.
    pub roles: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Banned now.
    pub banned: bool,
    /// Why, when banned.
    pub ban_reason: Option<String>,
    /// Since when, when banned (RFC 3339).
    pub banned_at: Option<String>,
    /// When the account was closed (RFC 3339), if it was.
    pub closed_at: Option<String>,
}

impl AdminUserView {
    /// The admin view of a row and its roles.
    pub fn of(u: &UserRow, roles: Vec<String>) -> Self {
        AdminUserView {
            id: u.id.to_string(),
            email: u.email.clone(),
            name: u.name.clone(),
            roles,
            created_at: stored_time(u.created_at),
            updated_at: stored_time(u.updated_at),
            banned: u.banned_at.is_some(),
            ban_reason: u.ban_reason.clone(),
            banned_at: u.banned_at.map(stored_time),
            closed_at: u.closed_at.map(stored_time),
        }
    }
}

/// `GET /admin/users` query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct UserSearch {
    /// Part of the email, any case.
    pub email: Option<String>,
}

/// `PUT /admin/users/{id}/roles`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRolesRequest {
    /// The complete new list of role names.
    pub roles: Vec<String>,
}

/// `POST /admin/users/{id}/ban`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    /// Why (1..=500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// A permission: `{method, path, effect}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionDto {
    /// An HTTP method or `*`.
    #[schema(pattern = r"^(\*|GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$")]
    pub method: String,
    /// A regular expression matched against the whole request path.
    #[schema(min_length = 1, max_length = 1000)]
    pub path: String,
    /// `allow` or `deny`.
    #[schema(pattern = "^(allow|deny)$")]
    pub effect: String,
}

/// `PUT /admin/roles/{name}`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRoleRequest {
    /// The role's complete list of permissions (at most 100).
    #[schema(max_items = 100)]
    pub permissions: Vec<PermissionDto>,
}

/// A role with its permissions.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    /// Its name.
    pub name: String,
    /// Its permissions, in order.
    pub permissions: Vec<PermissionDto>,
}

impl RoleView {
    /// The view of a stored role.
    pub fn of(r: &RoleWithPermissions) -> Self {
        RoleView {
            name: r.name.clone(),
            permissions: r
                .permissions
                .iter()
                .map(|p| PermissionDto {
                    method: p.method.clone(),
                    path: p.path.clone(),
                    effect: p.effect.clone(),
                })
                .collect(),
        }
    }
}
