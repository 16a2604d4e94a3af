//! `repo::roles`: creating, replacing and deleting roles, listing them, and the policy version.

use mall_db::models::{PermissionRow, RoleWithPermissions};
use mall_db::repo::roles::{self, NewPermission};
use mall_db::repo::users;
use mall_db::{Db, DbError, clock};

use crate::common::{add_user, auth, login, rd, strings, wr};

on_both_backends!(
    put_creates_then_replaces,
    put_is_atomic,
    delete_removes_grants_and_bumps_the_version,
    list_all_sorted_by_name_with_permissions_by_position,
);

fn new_perm(method: &str, path: &str, effect: &str) -> NewPermission {
    NewPermission {
        method: method.to_owned(),
        path: path.to_owned(),
        effect: effect.to_owned(),
    }
}

/// The rows `perms` should be stored as for role `name`.
fn stored(name: &str, perms: &[NewPermission]) -> Vec<PermissionRow> {
    perms
        .iter()
        .zip(0..)
        .map(|(p, position)| PermissionRow {
            role_name: name.to_owned(),
            position,
            method: p.method.clone(),
            path: p.path.clone(),
            effect: p.effect.clone(),
        })
        .collect()
}

async fn version(db: &Db) -> i64 {
    roles::policy_version(&mut rd(db).await)
        .await
        .expect("policy_version")
}

async fn find(db: &Db, name: &str) -> Option<RoleWithPermissions> {
    roles::find(&mut rd(db).await, name).await.expect("find")
}

async fn put(db: &Db, name: &str, perms: &[NewPermission]) -> Result<bool, DbError> {
    roles::put(&mut wr(db).await, name, perms, clock::now()).await
}

async fn put_creates_then_replaces(db: &Db) {
    let v0 = version(db).await;
    assert_eq!(find(db, "auditor").await, None);

    let first = [
        new_perm("GET", "/api/v1/admin/users", "allow"),
        new_perm("*", "/api/v1/admin/.*", "deny"),
    ];
    assert!(put(db, "auditor", &first).await.expect("put"), "created");
    assert_eq!(version(db).await, v0 + 1);
    assert_eq!(
        find(db, "auditor").await,
        Some(RoleWithPermissions {
            name: "auditor".to_owned(),
            permissions: stored("auditor", &first),
        })
    );

    // Replacing, in a different order and with more entries: the old list is gone.
    let second = [
        new_perm("*", "/api/v1/admin/.*", "deny"),
        new_perm("GET", "/api/v1/orders(/.*)?", "allow"),
        new_perm("GET", "/api/v1/admin/users", "allow"),
    ];
    assert!(!put(db, "auditor", &second).await.expect("put"), "replaced");
    assert_eq!(version(db).await, v0 + 2);
    let found = find(db, "auditor").await.expect("still there");
    assert_eq!(found.permissions, stored("auditor", &second));

    assert!(!put(db, "auditor", &[]).await.expect("put"));
    assert_eq!(version(db).await, v0 + 3);
    assert!(
        find(db, "auditor")
            .await
            .expect("kept")
            .permissions
            .is_empty()
    );

    // Built-in roles are replaced the same way, leaving the others alone.
    let merchant = find(db, "merchant").await;
    assert!(merchant.as_ref().is_some_and(|m| !m.permissions.is_empty()));
    let customer = [new_perm("GET", "/api/v1/products", "allow")];
    assert!(!put(db, "customer", &customer).await.expect("put"));
    assert_eq!(version(db).await, v0 + 4);
    assert_eq!(
        find(db, "customer").await.expect("kept").permissions,
        stored("customer", &customer)
    );
    assert_eq!(
        find(db, "merchant").await,
        merchant,
        "other roles untouched"
    );
}

async fn put_is_atomic(db: &Db) {
    let v0 = version(db).await;
    let bad = [
        new_perm("GET", "/api/v1/reports", "allow"),
        new_perm("GET", "/api/v1/secrets", "maybe"),
    ];

    let err = put(db, "reporter", &bad).await.expect_err("invalid effect");
    assert!(matches!(err, DbError::CheckViolation(_)), "got {err:?}");
    assert_eq!(find(db, "reporter").await, None, "the role was not created");

    let before = find(db, "customer").await.expect("seeded");
    let err = put(db, "customer", &bad).await.expect_err("invalid effect");
    assert!(matches!(err, DbError::CheckViolation(_)), "got {err:?}");
    assert_eq!(
        find(db, "customer").await,
        Some(before),
        "the old permissions survive a failed replace"
    );
    assert_eq!(
        version(db).await,
        v0,
        "a failed put does not bump the version"
    );

    let err = put(db, "", &[]).await.expect_err("empty role name");
    assert!(matches!(err, DbError::CheckViolation(_)), "got {err:?}");
    assert_eq!(version(db).await, v0);
}

async fn delete_removes_grants_and_bumps_the_version(db: &Db) {
    let perms = [new_perm("GET", "/api/v1/reports", "allow")];
    assert!(put(db, "auditor", &perms).await.expect("put"));
    let user = add_user(db, "yuri@example.com", &["customer", "auditor"]).await;
    let other = add_user(db, "zoe@example.com", &["auditor"]).await;
    let (sid, _) = login(db, user.id).await;
    assert_eq!(auth(db, user.id, sid).await.roles, ["auditor", "customer"]);
    let v0 = version(db).await;

    assert!(
        roles::delete(&mut wr(db).await, "auditor")
            .await
            .expect("delete")
    );
    assert_eq!(version(db).await, v0 + 1);
    assert_eq!(find(db, "auditor").await, None);
    assert_eq!(
        users::roles_of(&mut rd(db).await, user.id)
            .await
            .expect("roles_of"),
        ["customer"]
    );
    assert!(
        users::roles_of(&mut rd(db).await, other.id)
            .await
            .expect("roles_of")
            .is_empty()
    );
    assert_eq!(auth(db, user.id, sid).await.roles, ["customer"]);
    let names: Vec<String> = roles::list_all(&mut rd(db).await)
        .await
        .expect("list_all")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["admin", "customer", "merchant"]);

    assert!(
        !roles::delete(&mut wr(db).await, "auditor")
            .await
            .expect("delete"),
        "already gone"
    );
    assert!(
        !roles::delete(&mut wr(db).await, "nonexistent")
            .await
            .expect("delete")
    );
    assert_eq!(version(db).await, v0 + 1, "deleting nothing bumps nothing");

    // A deleted role can be created afresh, without its old permissions or grants.
    assert!(put(db, "auditor", &[]).await.expect("put"));
    assert!(
        find(db, "auditor")
            .await
            .expect("created")
            .permissions
            .is_empty()
    );
    assert_eq!(
        users::roles_of(&mut rd(db).await, user.id)
            .await
            .expect("roles_of"),
        ["customer"]
    );
    assert_eq!(
        users::set_roles(
            &mut wr(db).await,
            other.id,
            &strings(&["auditor"]),
            clock::now()
        )
        .await
        .expect("set_roles"),
        users::SetRoles::Done
    );
}

async fn list_all_sorted_by_name_with_permissions_by_position(db: &Db) {
    let zeta = [
        new_perm("DELETE", "/z/3", "deny"),
        new_perm("PUT", "/z/1", "allow"),
        new_perm("GET", "/z/2", "allow"),
    ];
    let beta = [new_perm("GET", "/b", "allow"), new_perm("*", "/.*", "deny")];
    let alpha = [new_perm("POST", "/a", "allow")];
    // Created out of order, with a capital letter among them.
    assert!(put(db, "zeta", &zeta).await.expect("put"));
    assert!(put(db, "Beta", &beta).await.expect("put"));
    assert!(put(db, "alpha", &alpha).await.expect("put"));
    assert!(put(db, "merchant-lite", &[]).await.expect("put"));

    let all = roles::list_all(&mut rd(db).await).await.expect("list_all");
    let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "sorted by name");
    assert_eq!(
        names,
        [
            "Beta",
            "admin",
            "alpha",
            "customer",
            "merchant",
            "merchant-lite",
            "zeta"
        ]
    );

    let by_name = |name: &str| {
        all.iter()
            .find(|r| r.name == name)
            .expect("listed")
            .permissions
            .clone()
    };
    assert_eq!(
        by_name("zeta"),
        stored("zeta", &zeta),
        "by position, not by path"
    );
    assert_eq!(by_name("Beta"), stored("Beta", &beta));
    assert_eq!(by_name("alpha"), stored("alpha", &alpha));
    assert!(by_name("merchant-lite").is_empty());
    assert!(!by_name("merchant").is_empty());
    assert!(!by_name("customer").is_empty());
    // Every role's list agrees with `find`.
    for role in &all {
        assert_eq!(find(db, &role.name).await.as_ref(), Some(role));
    }
}
