//! Roles and their permissions: listing, creating or replacing, deleting; the built-in roles
//! are protected. A change is in force on every node within a second (the policy version is
//! bumped in the same write; [`Announce`] makes this node and, through Redis, the others
//! reload at once).

use std::sync::{Arc, LazyLock};

use regex::Regex;

use mall_db::models::RoleWithPermissions;
use mall_db::repo::roles::NewPermission;
use mall_db::{Db, clock, repo};

use super::{Announce, Notice, Problems, ServiceError};

/// The role every new account gets.
pub const DEFAULT_ROLE: &str = "customer";
/// The role that may do everything; it cannot be changed or deleted through the API.
pub const ADMIN_ROLE: &str = "admin";
/// The roles seeded at first start. None can be deleted: every new account gets `customer`,
/// merchants' products name `merchant` in the policy, and `admin` can do everything. The
/// permissions of `customer` and `merchant` can be replaced.
pub const BUILT_IN_ROLES: [&str; 3] = [ADMIN_ROLE, DEFAULT_ROLE, "merchant"];
/// Most permissions one role may hold.
pub const MAX_PERMISSIONS: usize = 100;

static ROLE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9_-]{1,64}$").unwrap_or_else(|e| panic!("role regex: {e}"))
});

/// Checks one permission as given and answers it as stored, or the part at fault (`""` for
/// the rule as a whole, `".effect"`, ...) and why. The RBAC policy owns the rule language
/// (it compiles the rules), so it supplies this check.
pub type RuleCheck = fn(&NewPermission) -> Result<NewPermission, (&'static str, String)>;

/// The role service.
#[derive(Clone)]
pub struct Roles {
    db: Db,
    check_rule: RuleCheck,
    notices: Arc<dyn Announce>,
}

/// Checks a role name: the admin role is built in and cannot be written.
pub fn check_role_name(name: &str) -> Result<(), ServiceError> {
    if !ROLE_NAME.is_match(name) {
        return Err(ServiceError::invalid_field(
            "name",
            "must match [a-z0-9_-]{1,64}",
        ));
    }
    if name == ADMIN_ROLE {
        return Err(ServiceError::Forbidden(
            "the admin role is built in and cannot be changed".into(),
        ));
    }
    Ok(())
}

impl Roles {
    /// The service over `db`, checking each rule with `check_rule` and telling `notices` of
    /// every change.
    pub fn new(db: Db, check_rule: RuleCheck, notices: Arc<dyn Announce>) -> Self {
        Roles {
            db,
            check_rule,
            notices,
        }
    }

    /// A page of the roles, by name.
    pub async fn list(
        &self,
        page: u32,
        page_size: u32,
    ) -> Result<repo::Page<RoleWithPermissions>, ServiceError> {
        let mut conn = self.db.read().await?;
        let all = repo::roles::list_all(&mut conn).await?;
        let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
        let skip = (page.max(1) as usize - 1).saturating_mul(page_size as usize);
        let items = all
            .into_iter()
            .skip(skip)
            .take(page_size as usize)
            .collect();
        Ok(repo::Page { items, total })
    }

    /// Creates or replaces the role `name` with `permissions` (in order).
    pub async fn put(
        &self,
        name: &str,
        permissions: &[NewPermission],
    ) -> Result<RoleWithPermissions, ServiceError> {
        check_role_name(name)?;
        if permissions.len() > MAX_PERMISSIONS {
            return Err(ServiceError::invalid_field(
                "permissions",
                format!("at most {MAX_PERMISSIONS} permissions"),
            ));
        }
        let mut problems = Problems::default();
        let mut checked = Vec::with_capacity(permissions.len());
        for (i, given) in permissions.iter().enumerate() {
            match (self.check_rule)(given) {
                Ok(p) => checked.push(p),
                Err((part, why)) => problems.note(format!("permissions[{i}]{part}"), Some(why)),
            }
        }
        problems.finish()?;
        let stored = {
            let mut conn = self.db.write().await?;
            repo::roles::put(&mut conn, name, &checked, clock::now()).await?;
            repo::roles::find(&mut conn, name)
                .await?
                .ok_or(ServiceError::NotFound("role"))?
        };
        self.notices.announce(Notice::Policy).await;
        tracing::info!(role = name, permissions = checked.len(), "role written");
        Ok(stored)
    }

    /// Deletes the role `name` (not a built-in one); its holders lose it.
    pub async fn delete(&self, name: &str) -> Result<(), ServiceError> {
        if BUILT_IN_ROLES.contains(&name) {
            return Err(ServiceError::Forbidden(format!(
                "the {name} role is built in and cannot be deleted"
            )));
        }
        let gone = {
            let mut conn = self.db.write().await?;
            repo::roles::delete(&mut conn, name).await?
        };
        if !gone {
            return Err(ServiceError::NotFound("role"));
        }
        self.notices.announce(Notice::AllUsers).await;
        self.notices.announce(Notice::Policy).await;
        tracing::info!(role = name, "role deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use mall_db::testing::TestDatabase;

    use super::*;
    use crate::services::testing::{Heard, fields, on_both, pool};

    #[test]
    fn role_names_are_checked_and_admin_is_protected() {
        assert!(check_role_name("auditor").is_ok());
        assert!(matches!(
            check_role_name("Auditor"),
            Err(ServiceError::Invalid(_))
        ));
        assert!(matches!(
            check_role_name("a/b"),
            Err(ServiceError::Invalid(_))
        ));
        assert!(matches!(
            check_role_name("admin"),
            Err(ServiceError::Forbidden(_))
        ));
    }

    /// Upper-cases the method; refuses an effect other than allow/deny and an empty path.
    fn check(p: &NewPermission) -> Result<NewPermission, (&'static str, String)> {
        if !["allow", "deny"].contains(&p.effect.as_str()) {
            return Err((".effect", "must be allow or deny".into()));
        }
        if p.path.is_empty() {
            return Err(("", "empty path".into()));
        }
        Ok(NewPermission {
            method: p.method.to_ascii_uppercase(),
            ..p.clone()
        })
    }

    fn perm(method: &str, path: &str, effect: &str) -> NewPermission {
        NewPermission {
            method: method.into(),
            path: path.into(),
            effect: effect.into(),
        }
    }

    struct Fixture {
        _db: TestDatabase,
        roles: Roles,
        heard: Arc<Heard>,
    }

    async fn fixture(db: TestDatabase) -> Fixture {
        let heard = Arc::new(Heard::default());
        let roles = Roles::new(pool(&db).await, check, heard.clone());
        Fixture {
            _db: db,
            roles,
            heard,
        }
    }

    #[tokio::test]
    async fn roles_are_written_checked_and_announced() {
        on_both(fixture, async |f: Fixture| {
            let bad = [perm("get", "", "allow"), perm("GET", "/x", "maybe")];
            let err = f.roles.put("auditor", &bad).await.unwrap_err();
            assert_eq!(fields(err), ["permissions[0]", "permissions[1].effect"]);
            let too_many = vec![perm("GET", "/x", "allow"); MAX_PERMISSIONS + 1];
            let err = f.roles.put("auditor", &too_many).await.unwrap_err();
            assert_eq!(fields(err), ["permissions"]);
            assert!(
                f.heard.all().is_empty(),
                "nothing written, nothing announced"
            );

            let good = [
                perm("get", "/api/v1/orders.*", "allow"),
                perm("*", "/api/v1/admin/.*", "deny"),
            ];
            let stored = f.roles.put("auditor", &good).await.unwrap();
            assert_eq!(stored.name, "auditor");
            let methods: Vec<&str> = stored
                .permissions
                .iter()
                .map(|p| p.method.as_str())
                .collect();
            assert_eq!(methods, ["GET", "*"]);
            assert_eq!(f.heard.all(), [Notice::Policy]);

            let built_in = f.roles.put("admin", &good).await;
            assert!(matches!(built_in, Err(ServiceError::Forbidden(_))));
            let page = f.roles.list(1, 100).await.unwrap();
            assert!(page.items.iter().any(|r| r.name == "auditor"));
            let total = page.total;
            let second = f.roles.list(2, 1).await.unwrap();
            assert_eq!((second.total, second.items.len()), (total, 1));

            for name in BUILT_IN_ROLES {
                let refused = f.roles.delete(name).await;
                assert!(matches!(refused, Err(ServiceError::Forbidden(_))), "{name}");
            }
            f.roles.delete("auditor").await.unwrap();
            assert_eq!(
                f.heard.all(),
                [Notice::Policy, Notice::AllUsers, Notice::Policy]
            );
            let again = f.roles.delete("auditor").await;
            assert!(matches!(again, Err(ServiceError::NotFound("role"))));
        })
        .await;
    }
}
