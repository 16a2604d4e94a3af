//! Administration of users: lookup, roles, bans, closing accounts, and who may do it.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{
    ADMIN_EMAIL, App, Backend, Server, assert_keys, assert_rfc3339, random_secret, sorted_strings,
};

const ADMIN_VIEW_FIELDS: &[&str] = &[
    "id",
    "email",
    "name",
    "roles",
    "created_at",
    "updated_at",
    "banned",
    "ban_reason",
    "banned_at",
    "closed_at",
];

both_backends!(
    bootstrap_admin_is_an_admin,
    admin_finds_users_by_email,
    admin_search_takes_wildcards_literally,
    admin_replaces_roles,
    ban_and_lift,
    admin_closes_an_account,
    non_admins_are_forbidden_admin_routes,
);

/// An id that no user has, of the same form as `existing`.
fn unknown_id_like(existing: &str) -> String {
    match existing.parse::<i64>() {
        Ok(_) => i64::MAX.to_string(),
        Err(_) if Uuid::parse_str(existing).is_ok() => Uuid::new_v4().to_string(),
        Err(_) => format!("{existing}0"),
    }
}

fn user_path(id: &str) -> String {
    format!("/api/v1/admin/users/{id}")
}

async fn admin_view(app: &Server, admin: &str, id: &str) -> Value {
    let view = app.get(&user_path(id), Some(admin)).await.expect(200);
    assert_keys(&view, ADMIN_VIEW_FIELDS, "admin user view");
    view
}

async fn bootstrap_admin_is_an_admin(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let me = app
        .get("/api/v1/users/me", Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(me["email"], ADMIN_EMAIL);
    assert!(
        sorted_strings(&me["roles"]).contains(&"admin".to_owned()),
        "bootstrap admin roles: {me}"
    );
    let verify = app
        .get("/api/v1/auth/verify", Some(&admin.access))
        .await
        .expect(200);
    assert!(
        sorted_strings(&verify["roles"]).contains(&"admin".to_owned()),
        "verify: {verify}"
    );
    app.get("/api/v1/admin/users", Some(&admin.access))
        .await
        .expect(200);
    app.get("/api/v1/admin/roles", Some(&admin.access))
        .await
        .expect(200);
}

async fn admin_finds_users_by_email(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let tag = Uuid::new_v4().simple().to_string()[..12].to_owned();
    let mut ids = Vec::new();
    for suffix in ["one", "two"] {
        let email = format!("{tag}-{suffix}@example.com");
        let created = app.register(&email, &random_secret("pw"), suffix).await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    app.new_user("unrelated").await;
    ids.sort();

    // Substring, case-insensitive.
    let query = tag.to_uppercase();
    let list = app
        .get(
            &format!("/api/v1/admin/users?email={query}&page=1&page_size=100"),
            Some(&admin.access),
        )
        .await
        .expect(200);
    assert_keys(&list, &["items", "page", "page_size", "total"], "user list");
    assert_eq!(list["total"], 2, "search by {query}: {list}");
    assert_eq!(list["page"], 1);
    assert_eq!(list["page_size"], 100);
    let items = list["items"].as_array().unwrap();
    let mut found: Vec<String> = items
        .iter()
        .map(|u| u["id"].as_str().expect("id is a string").to_owned())
        .collect();
    found.sort();
    assert_eq!(found, ids);
    for item in items {
        assert_keys(item, ADMIN_VIEW_FIELDS, "admin user view");
        assert_eq!(sorted_strings(&item["roles"]), ["customer"]);
        assert_eq!(item["banned"], false);
        assert!(item["ban_reason"].is_null(), "{item}");
        assert!(item["banned_at"].is_null(), "{item}");
        assert!(item["closed_at"].is_null(), "{item}");
        assert_rfc3339(&item["created_at"], "created_at");
    }

    // Paging.
    let mut paged = Vec::new();
    for page in 1..=3 {
        let list = app
            .get(
                &format!("/api/v1/admin/users?email={tag}&page={page}&page_size=1"),
                Some(&admin.access),
            )
            .await
            .expect(200);
        assert_eq!(list["total"], 2, "page {page}: {list}");
        assert_eq!(list["page"], page, "page {page}: {list}");
        assert_eq!(list["page_size"], 1, "page {page}: {list}");
        let items = list["items"].as_array().unwrap();
        assert_eq!(
            items.len(),
            if page <= 2 { 1 } else { 0 },
            "page {page}: {list}"
        );
        paged.extend(items.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
    }
    paged.sort();
    assert_eq!(paged, ids, "pages must not overlap or skip");

    // Without a filter, everyone (2 + unrelated + admin) is listed.
    let all = app
        .get("/api/v1/admin/users?page_size=100", Some(&admin.access))
        .await
        .expect(200);
    assert!(all["total"].as_u64().unwrap() >= 4, "{all}");

    for bad in ["page_size=0", "page_size=101", "page=0"] {
        let resp = app
            .get(&format!("/api/v1/admin/users?{bad}"), Some(&admin.access))
            .await;
        assert_eq!(resp.status, 400, "?{bad}: {}", resp.text);
        resp.expect_error(400, "invalid_request");
    }

    // One user by id, and an unknown one.
    let one = admin_view(&app, &admin.access, &ids[0]).await;
    assert_eq!(one["id"], ids[0].as_str());
    app.get(&user_path(&unknown_id_like(&ids[0])), Some(&admin.access))
        .await
        .expect_error(404, "not_found");
}

async fn admin_search_takes_wildcards_literally(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let tag = Uuid::new_v4().simple().to_string()[..12].to_owned();
    let underscored = format!("{tag}_x@example.com");
    app.register(&underscored, &random_secret("pw"), "Under")
        .await;
    app.new_user("plain").await;

    // Defaults: page 1, page_size 20.
    let all = app
        .get("/api/v1/admin/users", Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(all["page"], 1, "{all}");
    assert_eq!(all["page_size"], 20, "{all}");
    assert_eq!(all["total"], 3, "admin + 2 users: {all}");

    // `%` and `_` are characters to find, not patterns.
    let percent = app
        .get("/api/v1/admin/users?email=%25", Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(
        percent["total"], 0,
        "nobody has a % in the e-mail: {percent}"
    );
    let underscore = app
        .get("/api/v1/admin/users?email=_", Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(underscore["total"], 1, "one e-mail has an _: {underscore}");
    assert_eq!(underscore["items"][0]["email"], underscored.as_str());
}

async fn admin_replaces_roles(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let user = app.new_user("roles").await;
    let roles_path = format!("{}/roles", user_path(&user.id));

    let view = app
        .put(
            &roles_path,
            Some(&admin.access),
            &json!({"roles": ["customer", "merchant"]}),
        )
        .await
        .expect(200);
    assert_keys(&view, ADMIN_VIEW_FIELDS, "PUT roles body");
    assert_eq!(view["id"], user.id.as_str());
    assert_eq!(sorted_strings(&view["roles"]), ["customer", "merchant"]);

    // In force for the user's existing token.
    let me = app
        .get("/api/v1/users/me", Some(user.access()))
        .await
        .expect(200);
    assert_eq!(sorted_strings(&me["roles"]), ["customer", "merchant"]);
    let verify = app
        .get("/api/v1/auth/verify", Some(user.access()))
        .await
        .expect(200);
    assert_eq!(sorted_strings(&verify["roles"]), ["customer", "merchant"]);

    // Replace, not add.
    let view = app
        .put(
            &roles_path,
            Some(&admin.access),
            &json!({"roles": ["merchant"]}),
        )
        .await
        .expect(200);
    assert_eq!(sorted_strings(&view["roles"]), ["merchant"]);

    // An unknown role, or a malformed body, changes nothing.
    for body in [
        json!({"roles": ["merchant", "wizard"]}),
        json!({"roles": "admin"}),
        json!({"roles": ["customer"], "banned": true}),
        json!({}),
    ] {
        let resp = app.put(&roles_path, Some(&admin.access), &body).await;
        assert_eq!(resp.status, 400, "PUT roles {body}: {}", resp.text);
        resp.expect_error(400, "invalid_request");
    }
    let view = admin_view(&app, &admin.access, &user.id).await;
    assert_eq!(sorted_strings(&view["roles"]), ["merchant"]);
    assert_eq!(view["banned"], false);

    app.put(
        &format!("{}/roles", user_path(&unknown_id_like(&user.id))),
        Some(&admin.access),
        &json!({"roles": ["customer"]}),
    )
    .await
    .expect_error(404, "not_found");
}

async fn ban_and_lift(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let user = app.new_user("ban").await;
    let bystander = app.new_user("bystander").await;
    let ban_path = format!("{}/ban", user_path(&user.id));

    let resp = app
        .post(
            &ban_path,
            Some(&admin.access),
            &json!({"reason": "chargeback fraud"}),
        )
        .await;
    resp.expect(204);

    let view = admin_view(&app, &admin.access, &user.id).await;
    assert_eq!(view["banned"], true, "{view}");
    assert_eq!(view["ban_reason"], "chargeback fraud", "{view}");
    assert_rfc3339(&view["banned_at"], "banned_at");
    assert!(view["closed_at"].is_null(), "{view}");

    // At once: existing tokens and login are refused with user_banned.
    app.get("/api/v1/users/me", Some(user.access()))
        .await
        .expect_error(403, "user_banned");
    app.get("/api/v1/auth/verify", Some(user.access()))
        .await
        .expect_error(403, "user_banned");
    app.patch(
        "/api/v1/users/me",
        Some(user.access()),
        &json!({"name": "still here"}),
    )
    .await
    .expect_error(403, "user_banned");
    app.try_login(&user.email, &user.password)
        .await
        .expect_error(403, "user_banned");
    let refresh = app.try_refresh(&user.tokens.refresh).await;
    assert!(
        refresh.status == 401 || refresh.status == 403,
        "a banned user's refresh must fail: {} {}",
        refresh.status,
        refresh.text
    );
    // Others are not affected.
    assert_eq!(app.me_status(bystander.access()).await, 200);

    // Lift the ban.
    app.delete(&ban_path, Some(&admin.access), None)
        .await
        .expect(204);
    let view = admin_view(&app, &admin.access, &user.id).await;
    assert_eq!(view["banned"], false, "{view}");
    assert!(view["ban_reason"].is_null(), "{view}");
    assert!(view["banned_at"].is_null(), "{view}");

    // Tokens from before the ban stay dead; a fresh login works.
    app.get("/api/v1/users/me", Some(user.access()))
        .await
        .expect_error(401, "unauthenticated");
    app.try_refresh(&user.tokens.refresh)
        .await
        .expect_error_in(401, &["unauthenticated", "refresh_token_reused"]);
    let fresh = app.login(&user.email, &user.password).await;
    let me = app
        .get("/api/v1/users/me", Some(&fresh.access))
        .await
        .expect(200);
    assert_eq!(me["id"], user.id.as_str());

    // Unknown users cannot be banned; a ban needs a reason-shaped body.
    app.post(
        &format!("{}/ban", user_path(&unknown_id_like(&user.id))),
        Some(&admin.access),
        &json!({"reason": "x"}),
    )
    .await
    .expect_error(404, "not_found");
    app.post(&ban_path, Some(&admin.access), &json!({"reason": 42}))
        .await
        .expect_error(400, "invalid_request");
    assert_eq!(app.me_status(&fresh.access).await, 200);
}

async fn admin_closes_an_account(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let user = app.new_user("adminclose").await;

    app.delete(&user_path(&user.id), Some(&admin.access), None)
        .await
        .expect(204);

    app.get("/api/v1/users/me", Some(user.access()))
        .await
        .expect_error(401, "unauthenticated");
    app.try_refresh(&user.tokens.refresh)
        .await
        .expect_error_in(401, &["unauthenticated", "refresh_token_reused"]);
    app.try_login(&user.email, &user.password)
        .await
        .expect_error(401, "invalid_credentials");

    // If the closed account is still visible to the admin, it says so.
    let resp = app.get(&user_path(&user.id), Some(&admin.access)).await;
    match resp.status {
        200 => {
            let view = resp.json();
            assert_rfc3339(&view["closed_at"], "closed_at of a closed account");
        }
        404 => {
            resp.expect_error(404, "not_found");
        }
        other => panic!("GET a closed account: unexpected {other} {}", resp.text),
    }

    let new_password = random_secret("pw");
    let again = app.register(&user.email, &new_password, "Back again").await;
    assert_ne!(again["id"], user.id.as_str());
    app.login(&user.email, &new_password).await;

    app.delete(
        &user_path(&unknown_id_like(&user.id)),
        Some(&admin.access),
        None,
    )
    .await
    .expect_error(404, "not_found");
}

async fn non_admins_are_forbidden_admin_routes(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let customer = app.new_user("cust").await;
    let merchant = app.new_user("merch").await;
    app.put(
        &format!("{}/roles", user_path(&merchant.id)),
        Some(&admin.access),
        &json!({"roles": ["merchant"]}),
    )
    .await
    .expect(200);
    let victim = app.new_user("victim").await;
    let v = user_path(&victim.id);
    let roles_before = app
        .get("/api/v1/admin/roles?page_size=100", Some(&admin.access))
        .await
        .expect(200);

    let perms = json!({"permissions": [{"method": "*", "path": ".*", "effect": "allow"}]});
    for (label, token) in [
        ("customer", customer.access()),
        ("merchant", merchant.access()),
    ] {
        let calls = [
            app.get("/api/v1/admin/users", Some(token)).await,
            app.get("/api/v1/admin/users?email=a", Some(token)).await,
            app.get(&v, Some(token)).await,
            app.put(
                &format!("{v}/roles"),
                Some(token),
                &json!({"roles": ["admin"]}),
            )
            .await,
            app.put(
                &format!("/api/v1/admin/users/{}/roles", customer.id),
                Some(token),
                &json!({"roles": ["admin"]}),
            )
            .await,
            app.post(&format!("{v}/ban"), Some(token), &json!({"reason": "x"}))
                .await,
            app.delete(&format!("{v}/ban"), Some(token), None).await,
            app.delete(&v, Some(token), None).await,
            app.get("/api/v1/admin/roles", Some(token)).await,
            app.put("/api/v1/admin/roles/escalate", Some(token), &perms)
                .await,
            app.put("/api/v1/admin/roles/customer", Some(token), &perms)
                .await,
            app.delete("/api/v1/admin/roles/merchant", Some(token), None)
                .await,
        ];
        for resp in calls {
            assert_eq!(resp.status, 403, "{label}: {}: {}", resp.what, resp.text);
            resp.expect_error(403, "forbidden");
        }
    }

    // Nothing changed.
    let view = admin_view(&app, &admin.access, &victim.id).await;
    assert_eq!(sorted_strings(&view["roles"]), ["customer"]);
    assert_eq!(view["banned"], false);
    let me = app
        .get("/api/v1/users/me", Some(customer.access()))
        .await
        .expect(200);
    assert_eq!(sorted_strings(&me["roles"]), ["customer"]);
    let roles_after = app
        .get("/api/v1/admin/roles?page_size=100", Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(
        roles_after, roles_before,
        "a forbidden call changed the roles"
    );
    assert_eq!(app.me_status(victim.access()).await, 200);
}
