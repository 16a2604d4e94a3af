//! Roles and permissions: management, evaluation (deny wins, whole-path match), live changes,
//! and path tricks that must not slip past the checks.

use serde_json::{Value, json};

use crate::harness::{App, Backend, Server, User, assert_keys};

both_backends!(
    builtin_roles_are_listed,
    put_role_creates_and_replaces,
    invalid_permissions_change_nothing,
    role_names_are_validated,
    admin_role_cannot_be_changed,
    delete_role,
    rbac_changes_apply_to_existing_tokens,
    permissions_match_whole_path_and_method,
    deny_in_any_role_wins,
    builtin_customer_role_can_be_restricted,
    path_tricks_do_not_bypass_rbac,
);

const ROLES: &str = "/api/v1/admin/roles";

fn perm(method: &str, path: &str, effect: &str) -> Value {
    json!({"method": method, "path": path, "effect": effect})
}

async fn list_roles(app: &Server, admin: &str) -> Value {
    app.get(&format!("{ROLES}?page=1&page_size=100"), Some(admin))
        .await
        .expect(200)
}

/// The role called `name` in the list, if any.
async fn find_role(app: &Server, admin: &str, name: &str) -> Option<Value> {
    list_roles(app, admin).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
}

async fn put_role(app: &Server, admin: &str, name: &str, permissions: Value) -> Value {
    app.put(
        &format!("{ROLES}/{name}"),
        Some(admin),
        &json!({"permissions": permissions}),
    )
    .await
    .expect(200)
}

async fn set_roles(app: &Server, admin: &str, user: &User, roles: &[&str]) {
    app.put(
        &format!("/api/v1/admin/users/{}/roles", user.id),
        Some(admin),
        &json!({"roles": roles}),
    )
    .await
    .expect(200);
}

async fn builtin_roles_are_listed(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let list = list_roles(&app, &admin.access).await;
    assert_keys(&list, &["items", "page", "page_size", "total"], "role list");
    assert_eq!(list["page"], 1);
    assert_eq!(list["page_size"], 100);
    let items = list["items"].as_array().unwrap();
    assert_eq!(list["total"], items.len(), "{list}");
    let names: Vec<&str> = items.iter().map(|r| r["name"].as_str().unwrap()).collect();
    for builtin in ["admin", "customer", "merchant"] {
        assert!(
            names.contains(&builtin),
            "role {builtin} missing: {names:?}"
        );
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "roles are sorted by name");
    for role in items {
        assert_keys(role, &["name", "permissions"], "role");
        for p in role["permissions"].as_array().unwrap() {
            assert_keys(p, &["method", "path", "effect"], "permission");
            assert!(p["effect"] == "allow" || p["effect"] == "deny", "{p}");
        }
    }
    for builtin in ["customer", "merchant"] {
        let role = items.iter().find(|r| r["name"] == builtin).unwrap();
        assert!(
            !role["permissions"].as_array().unwrap().is_empty(),
            "{builtin} has no permissions: {role}"
        );
    }

    // Paging works on roles too.
    let first = app
        .get(&format!("{ROLES}?page=1&page_size=1"), Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    assert_eq!(first["items"][0]["name"], names[0]);
    assert_eq!(first["total"], items.len());
}

async fn put_role_creates_and_replaces(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let v1 = json!([perm("GET", "/api/v1/admin/users(/.*)?", "allow")]);
    let created = put_role(&app, &admin.access, "auditor", v1.clone()).await;
    assert_eq!(created, json!({"name": "auditor", "permissions": v1}));
    assert_eq!(
        find_role(&app, &admin.access, "auditor").await,
        Some(json!({"name": "auditor", "permissions": v1}))
    );

    let v2 = json!([
        perm("GET", "/api/v1/admin/users", "allow"),
        perm("*", "/api/v1/admin/users/.*", "deny"),
    ]);
    let replaced = put_role(&app, &admin.access, "auditor", v2.clone()).await;
    assert_eq!(replaced, json!({"name": "auditor", "permissions": v2}));
    assert_eq!(
        find_role(&app, &admin.access, "auditor").await,
        Some(json!({"name": "auditor", "permissions": v2})),
        "PUT replaces the permissions"
    );
    let names: Vec<Value> = list_roles(&app, &admin.access).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(
        names.iter().filter(|n| **n == "auditor").count(),
        1,
        "replacing must not duplicate the role: {names:?}"
    );

    // A role may have no permissions at all, and can be granted.
    let empty = put_role(&app, &admin.access, "nobody", json!([])).await;
    assert_eq!(empty, json!({"name": "nobody", "permissions": []}));
    let user = app.new_user("nobody").await;
    set_roles(
        &app,
        &admin.access,
        &user,
        &["customer", "nobody", "auditor"],
    )
    .await;
}

async fn invalid_permissions_change_nothing(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let good = json!([perm("GET", "/api/v1/admin/users", "allow")]);
    put_role(&app, &admin.access, "stable", good.clone()).await;
    let before = list_roles(&app, &admin.access).await;

    let bad_bodies = [
        json!({"permissions": [perm("GET", "(", "allow")]}),
        json!({"permissions": [perm("GET", "/api/v1/[a-", "allow")]}),
        json!({"permissions": [
            perm("GET", "/api/v1/admin/roles", "allow"),
            perm("GET", "/api/v1/(unclosed", "deny"),
        ]}),
        json!({"permissions": [perm("G E T", "/api/v1/admin/users", "allow")]}),
        json!({"permissions": [perm("", "/api/v1/admin/users", "allow")]}),
        json!({"permissions": [perm("GET", "/api/v1/admin/users", "maybe")]}),
        json!({"permissions": [{"method": "GET", "path": "/api/v1/admin/users"}]}),
        json!({"permissions": [{"method": "GET", "path": "/x", "effect": "allow", "priority": 1}]}),
        json!({"permissions": "all"}),
        json!({}),
    ];
    for body in &bad_bodies {
        for name in ["stable", "fresh"] {
            let resp = app
                .put(&format!("{ROLES}/{name}"), Some(&admin.access), body)
                .await;
            assert_eq!(resp.status, 400, "PUT {name} {body}: {}", resp.text);
            resp.expect_error(400, "invalid_request");
        }
    }
    assert_eq!(
        list_roles(&app, &admin.access).await,
        before,
        "an invalid PUT changed the roles"
    );
    assert!(find_role(&app, &admin.access, "fresh").await.is_none());
}

async fn role_names_are_validated(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let body = json!({"permissions": [perm("GET", "/api/v1/admin/users", "allow")]});
    let long_ok = "r".repeat(64);
    for name in ["a", "ops_team-2", long_ok.as_str()] {
        let resp = app
            .put(&format!("{ROLES}/{name}"), Some(&admin.access), &body)
            .await;
        assert_eq!(resp.status, 200, "role name {name:?}: {}", resp.text);
        assert_eq!(resp.json()["name"], name);
    }
    let too_long = "r".repeat(65);
    for name in [
        "Auditor",
        "has%20space",
        "dot.ted",
        "%C3%A9t%C3%A9",
        too_long.as_str(),
    ] {
        let resp = app
            .put(&format!("{ROLES}/{name}"), Some(&admin.access), &body)
            .await;
        assert_eq!(resp.status, 400, "role name {name:?}: {}", resp.text);
        resp.expect_error(400, "invalid_request");
    }
    let list = list_roles(&app, &admin.access).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        3 + 3,
        "only the three valid roles were added: {list}"
    );
}

async fn admin_role_cannot_be_changed(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let before = find_role(&app, &admin.access, "admin")
        .await
        .expect("admin role");

    app.put(
        &format!("{ROLES}/admin"),
        Some(&admin.access),
        &json!({"permissions": [perm("*", ".*", "deny")]}),
    )
    .await
    .expect_error(403, "forbidden");
    app.delete(&format!("{ROLES}/admin"), Some(&admin.access), None)
        .await
        .expect_error(403, "forbidden");

    assert_eq!(find_role(&app, &admin.access, "admin").await, Some(before));
    app.get("/api/v1/admin/users", Some(&admin.access))
        .await
        .expect(200);
}

async fn delete_role(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    put_role(
        &app,
        &admin.access,
        "temp",
        json!([perm("GET", "/api/v1/admin/users", "allow")]),
    )
    .await;
    let resp = app
        .delete(&format!("{ROLES}/temp"), Some(&admin.access), None)
        .await;
    resp.expect(204);
    assert!(find_role(&app, &admin.access, "temp").await.is_none());
    app.delete(&format!("{ROLES}/temp"), Some(&admin.access), None)
        .await
        .expect_error(404, "not_found");
    app.delete(&format!("{ROLES}/never-existed"), Some(&admin.access), None)
        .await
        .expect_error(404, "not_found");

    // A deleted role can no longer be granted.
    let user = app.new_user("deleted-role").await;
    app.put(
        &format!("/api/v1/admin/users/{}/roles", user.id),
        Some(&admin.access),
        &json!({"roles": ["customer", "temp"]}),
    )
    .await
    .expect_error(400, "invalid_request");
}

async fn rbac_changes_apply_to_existing_tokens(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let user = app.new_user("auditor").await;
    let t = user.access();
    let detail = format!("/api/v1/admin/users/{}", user.id);

    app.get("/api/v1/admin/users", Some(t))
        .await
        .expect_error(403, "forbidden");

    put_role(
        &app,
        &admin.access,
        "auditor",
        json!([perm("GET", "/api/v1/admin/users(/.*)?", "allow")]),
    )
    .await;
    set_roles(&app, &admin.access, &user, &["customer", "auditor"]).await;

    // The token issued before the change now carries the new permission.
    app.get("/api/v1/admin/users", Some(t)).await.expect(200);
    app.get(&detail, Some(t)).await.expect(200);
    // Only what the role allows.
    app.get(ROLES, Some(t)).await.expect_error(403, "forbidden");
    app.put(
        &format!("{detail}/roles"),
        Some(t),
        &json!({"roles": ["admin"]}),
    )
    .await
    .expect_error(403, "forbidden");
    assert_eq!(app.me_status(t).await, 200, "customer rights are kept");

    // Deny wins over allow, at once.
    put_role(
        &app,
        &admin.access,
        "auditor",
        json!([
            perm("GET", "/api/v1/admin/users(/.*)?", "allow"),
            perm("GET", "/api/v1/admin/users/.*", "deny"),
        ]),
    )
    .await;
    app.get(&detail, Some(t))
        .await
        .expect_error(403, "forbidden");
    app.get("/api/v1/admin/users", Some(t)).await.expect(200);

    // Taking the role away takes the permission away.
    set_roles(&app, &admin.access, &user, &["customer"]).await;
    app.get("/api/v1/admin/users", Some(t))
        .await
        .expect_error(403, "forbidden");
    assert_eq!(app.me_status(t).await, 200);

    // Granting it again, then deleting the role, takes it away too.
    set_roles(&app, &admin.access, &user, &["customer", "auditor"]).await;
    app.get("/api/v1/admin/users", Some(t)).await.expect(200);
    app.delete(&format!("{ROLES}/auditor"), Some(&admin.access), None)
        .await
        .expect(204);
    app.get("/api/v1/admin/users", Some(t))
        .await
        .expect_error(403, "forbidden");
}

async fn permissions_match_whole_path_and_method(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let user = app.new_user("lister").await;
    let t = user.access();
    put_role(
        &app,
        &admin.access,
        "lister",
        json!([
            perm("GET", "/api/v1/admin/users", "allow"),
            perm("*", "/api/v1/admin/roles/scratch", "allow"),
        ]),
    )
    .await;
    set_roles(&app, &admin.access, &user, &["customer", "lister"]).await;

    app.get("/api/v1/admin/users", Some(t)).await.expect(200);
    // The regex must match the whole path, not a prefix.
    app.get(&format!("/api/v1/admin/users/{}", user.id), Some(t))
        .await
        .expect_error(403, "forbidden");
    // And the method must match.
    app.delete(&format!("/api/v1/admin/users/{}", user.id), Some(t), None)
        .await
        .expect_error(403, "forbidden");
    // The query string is not part of the path.
    app.get("/api/v1/admin/users?email=x", Some(t))
        .await
        .expect(200);

    // `*` matches any method on exactly that path.
    let scratch = json!({"permissions": [perm("GET", "/nothing", "allow")]});
    app.put(&format!("{ROLES}/scratch"), Some(t), &scratch)
        .await
        .expect(200);
    app.delete(&format!("{ROLES}/scratch"), Some(t), None)
        .await
        .expect(204);
    app.put(&format!("{ROLES}/scratch2"), Some(t), &scratch)
        .await
        .expect_error(403, "forbidden");
    app.get(ROLES, Some(t)).await.expect_error(403, "forbidden");
}

async fn deny_in_any_role_wins(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let user = app.new_user("conflict").await;
    let t = user.access();
    put_role(
        &app,
        &admin.access,
        "lister",
        json!([perm("GET", "/api/v1/admin/users", "allow")]),
    )
    .await;
    put_role(
        &app,
        &admin.access,
        "blocker",
        json!([perm("*", "/api/v1/admin/.*", "deny")]),
    )
    .await;

    set_roles(&app, &admin.access, &user, &["customer", "lister"]).await;
    app.get("/api/v1/admin/users", Some(t)).await.expect(200);
    set_roles(
        &app,
        &admin.access,
        &user,
        &["customer", "lister", "blocker"],
    )
    .await;
    app.get("/api/v1/admin/users", Some(t))
        .await
        .expect_error(403, "forbidden");
    set_roles(&app, &admin.access, &user, &["lister", "customer"]).await;
    app.get("/api/v1/admin/users", Some(t)).await.expect(200);
}

async fn builtin_customer_role_can_be_restricted(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let user = app.new_user("restricted").await;
    let t = user.access();
    let original = find_role(&app, &admin.access, "customer")
        .await
        .expect("customer role")["permissions"]
        .clone();

    let mut restricted = original.as_array().unwrap().clone();
    restricted.push(perm("PATCH", "/api/v1/users/me", "deny"));
    put_role(&app, &admin.access, "customer", Value::Array(restricted)).await;

    app.patch("/api/v1/users/me", Some(t), &json!({"name": "New name"}))
        .await
        .expect_error(403, "forbidden");
    assert_eq!(app.me_status(t).await, 200, "only PATCH is denied");

    put_role(&app, &admin.access, "customer", original.clone()).await;
    app.patch("/api/v1/users/me", Some(t), &json!({"name": "New name"}))
        .await
        .expect(200);
    assert_eq!(
        find_role(&app, &admin.access, "customer").await.unwrap()["permissions"],
        original
    );
}

async fn path_tricks_do_not_bypass_rbac(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let customer = app.new_user("tricks").await;
    let t = customer.access();

    // Controls: the raw client works and sees what reqwest sees.
    assert_eq!(app.raw_get_status("/api/v1/users/me", Some(t)).await, 200);
    assert_eq!(
        app.raw_get_status("/api/v1/admin/users", Some(t)).await,
        403
    );
    assert_eq!(
        app.raw_get_status("/api/v1/admin/users", Some(&admin.access))
            .await,
        200
    );

    let tricks = [
        "/api/v1/admin%2Fusers",
        "/api/v1/admin%2fusers",
        "/api/v1//admin/users",
        "//api/v1/admin/users",
        "/api/v1/./admin/users",
        "/api/v1/users/../admin/users",
        "/api/v1/users/me/../../admin/users",
        "/api/v1/users/%2e%2e/admin/users",
        "/api/v1/users/me/..%2f..%2fadmin/users",
        "/api/v1/%61dmin/users",
        "/api/v1/admin/%75sers",
        "/api/v1/admin/users/",
        "/api/v1/admin/users%00",
        "/api/v1/admin/users;/api/v1/users/me",
        "/api/v1/ADMIN/users",
        "/API/v1/admin/users",
        "/api/v1/admin/users?/api/v1/users/me",
        "/api/v1/admin/users#/api/v1/users/me",
        "/api/v1/orders/../admin/users",
        "/api/v1/products/../admin/users",
        "/api/v1/products/%2e%2e/admin/users",
        "/api/v1/products/..%2Fadmin%2Fusers",
        "/api/v1/products/1/../../admin/users",
        "/healthz/../api/v1/admin/users",
        "/docs/../api/v1/admin/users",
    ];
    for path in tricks {
        let status = app.raw_get_status(path, Some(t)).await;
        assert!(
            matches!(status, 400 | 403 | 404),
            "customer GET {path}: must not pass RBAC, got {status}"
        );
    }
    // A whitelisted prefix must not open other routes to anonymous callers either.
    for path in tricks {
        let status = app.raw_get_status(path, None).await;
        assert!(
            matches!(status, 400 | 401 | 403 | 404),
            "anonymous GET {path}: must not pass the whitelist, got {status}"
        );
    }

    // A deny rule must not be sidestepped by another spelling of the same route either.
    let auditor = app.new_user("trick-auditor").await;
    put_role(
        &app,
        &admin.access,
        "auditor",
        json!([
            perm("GET", "/api/v1/admin/users(/.*)?", "allow"),
            perm("GET", "/api/v1/admin/users/.*", "deny"),
        ]),
    )
    .await;
    set_roles(&app, &admin.access, &auditor, &["customer", "auditor"]).await;
    let a = auditor.access();
    let id = &customer.id;
    assert_eq!(
        app.raw_get_status("/api/v1/admin/users", Some(a)).await,
        200
    );
    assert_eq!(
        app.raw_get_status(&format!("/api/v1/admin/users/{id}"), Some(a))
            .await,
        403
    );
    let detail_tricks = [
        format!("/api/v1//admin/users/{id}"),
        format!("/api/v1/admin//users/{id}"),
        format!("/api/v1/admin/users//{id}"),
        format!("/api/v1/admin/users/./{id}"),
        format!("/api/v1/admin/users/x/../{id}"),
        format!("/api/v1/admin/%75sers/{id}"),
        format!("/api/v1/%61dmin/users/{id}"),
        format!("/api/v1/admin/users%2F{id}"),
        format!("/api/v1/admin/users/{id}/"),
        format!("/API/v1/admin/users/{id}"),
    ];
    for path in &detail_tricks {
        let status = app.raw_get_status(path, Some(a)).await;
        assert!(
            matches!(status, 400 | 403 | 404),
            "auditor GET {path}: the deny rule must hold, got {status}"
        );
    }
}
