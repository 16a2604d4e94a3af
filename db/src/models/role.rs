//! The `roles` and `permissions` rows.

use diesel::prelude::*;

use crate::schema::permissions;

/// One permission of a role, in the role's order.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = permissions)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct PermissionRow {
    /// The role it belongs to.
    pub role_name: String,
    /// Its place in the role's list.
    pub position: i32,
    /// An HTTP method or `*`.
    pub method: String,
    /// A regular expression over the whole request path.
    pub path: String,
    /// `allow` or `deny`.
    pub effect: String,
}

/// A role with its permissions in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleWithPermissions {
    /// The role's name.
    pub name: String,
    /// Its permissions, by position.
    pub permissions: Vec<PermissionRow>,
}
