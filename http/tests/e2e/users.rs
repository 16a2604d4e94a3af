//! Registration, the caller's own profile, password changes, closing an account, isolation.

use serde_json::json;

use crate::harness::{
    App, Backend, assert_keys, assert_rfc3339, random_secret, sorted_strings, unique_email,
};

const USER_FIELDS: &[&str] = &["id", "email", "name", "roles", "created_at", "updated_at"];

both_backends!(
    register_returns_the_user,
    register_validates_lengths_and_email,
    email_is_unique_case_insensitively,
    concurrent_registrations_of_one_email,
    patch_me_changes_the_name,
    password_change_needs_the_current_password,
    password_change_ends_every_other_login,
    closing_the_account,
    users_cannot_touch_each_other,
);

async fn register_returns_the_user(backend: Backend) {
    let app = App::start(backend).await;
    let email = unique_email("reg");
    let password = random_secret("pw");
    let created = app.register(&email, &password, "Ada Lovelace").await;
    assert_keys(&created, USER_FIELDS, "registration body");
    let id = created["id"].as_str().expect("id is a JSON string");
    assert!(!id.is_empty());
    assert_eq!(created["email"], email.as_str());
    assert_eq!(created["name"], "Ada Lovelace");
    assert_eq!(sorted_strings(&created["roles"]), ["customer"]);
    let created_at = assert_rfc3339(&created["created_at"], "created_at");
    let updated_at = assert_rfc3339(&created["updated_at"], "updated_at");
    assert!(updated_at >= created_at);
    assert!(
        (created_at - time::OffsetDateTime::now_utc()).abs() < time::Duration::minutes(5),
        "created_at is not now: {created_at}"
    );

    let tokens = app.login(&email, &password).await;
    let me = app
        .get("/api/v1/users/me", Some(&tokens.access))
        .await
        .expect(200);
    assert_keys(&me, USER_FIELDS, "GET /users/me body");
    assert_eq!(me, created, "GET /users/me should show the registered user");

    // A second user gets another id.
    let other = app.new_user("reg2").await;
    assert_ne!(other.id, id);
}

async fn register_validates_lengths_and_email(backend: Backend) {
    let app = App::start(backend).await;

    for (label, password) in [("7 chars", "a".repeat(7)), ("129 chars", "b".repeat(129))] {
        let email = unique_email("shortpw");
        let resp = app.try_register(&email, &password, "Name").await;
        assert_eq!(resp.status, 400, "password of {label}: {}", resp.text);
        resp.expect_invalid_field("password");
        // Nothing was created.
        app.try_login(&email, &password)
            .await
            .expect_error(401, "invalid_credentials");
    }
    for (label, password) in [("8 chars", "c".repeat(8)), ("128 chars", "d".repeat(128))] {
        let email = unique_email("okpw");
        let resp = app.try_register(&email, &password, "Name").await;
        assert_eq!(resp.status, 201, "password of {label}: {}", resp.text);
        app.login(&email, &password).await;
    }

    // Password lengths are in characters too.
    let resp = app
        .try_register(&unique_email("mbpw"), &"密".repeat(7), "Name")
        .await;
    resp.expect_invalid_field("password");
    for password in ["密".repeat(8), "密".repeat(128)] {
        let email = unique_email("mbpw");
        let resp = app.try_register(&email, &password, "Name").await;
        assert_eq!(
            resp.status,
            201,
            "password of {} multibyte chars: {}",
            password.chars().count(),
            resp.text
        );
        app.login(&email, &password).await;
    }

    for (label, name) in [("empty", String::new()), ("65 chars", "n".repeat(65))] {
        let resp = app
            .try_register(&unique_email("badname"), &random_secret("pw"), &name)
            .await;
        assert_eq!(resp.status, 400, "name {label}: {}", resp.text);
        resp.expect_invalid_field("name");
    }
    // Lengths are in characters, not bytes.
    for name in ["m".repeat(64), "字".repeat(64), "é".repeat(64)] {
        let created = app
            .register(&unique_email("okname"), &random_secret("pw"), &name)
            .await;
        assert_eq!(created["name"], name.as_str());
    }

    for email in ["not-an-email", "", "@example.com"] {
        let resp = app.try_register(email, &random_secret("pw"), "Name").await;
        assert_eq!(resp.status, 400, "email {email:?}: {}", resp.text);
        resp.expect_invalid_field("email");
    }

    app.post(
        "/api/v1/users",
        None,
        &json!({"email": unique_email("noname"), "password": random_secret("pw")}),
    )
    .await
    .expect_error(400, "invalid_request");
}

async fn email_is_unique_case_insensitively(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("dup").await;
    let shouted = user.email.to_uppercase();

    let other_password = random_secret("pw");
    for email in [&user.email, &shouted] {
        app.try_register(email, &other_password, "Impostor")
            .await
            .expect_error(409, "email_taken");
    }
    // The account is unchanged.
    app.login(&user.email, &user.password).await;
    // And it is one account whatever the case the e-mail is typed in.
    let tokens = app.login(&shouted, &user.password).await;
    let me = app
        .get("/api/v1/users/me", Some(&tokens.access))
        .await
        .expect(200);
    assert_eq!(me["id"], user.id.as_str());
    app.try_login(&user.email, &other_password)
        .await
        .expect_error(401, "invalid_credentials");
    let me = app
        .get("/api/v1/users/me", Some(user.access()))
        .await
        .expect(200);
    assert_eq!(me["name"], user.name.as_str());
}

async fn concurrent_registrations_of_one_email(backend: Backend) {
    let app = App::start(backend).await;
    let email = unique_email("racer");
    let shouted = email.to_uppercase();
    let passwords: Vec<String> = (0..4).map(|_| random_secret("pw")).collect();
    let (a, b, c, d) = tokio::join!(
        app.try_register(&email, &passwords[0], "A"),
        app.try_register(&shouted, &passwords[1], "B"),
        app.try_register(&email, &passwords[2], "C"),
        app.try_register(&shouted, &passwords[3], "D"),
    );
    let all = [a, b, c, d];
    let created: Vec<usize> = (0..4).filter(|&i| all[i].status == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "exactly one registration must win: {:?}",
        all.iter().map(|r| (r.status, &r.text)).collect::<Vec<_>>()
    );
    for (i, resp) in all.iter().enumerate() {
        if resp.status != 201 {
            assert_eq!(resp.status, 409, "registration {i}: {}", resp.text);
            resp.expect_error(409, "email_taken");
        }
    }
    // The winner's password is the account's.
    let winner = created[0];
    app.login(&email, &passwords[winner]).await;
    for (i, password) in passwords.iter().enumerate().filter(|&(i, _)| i != winner) {
        let resp = app.try_login(&email, password).await;
        assert_eq!(resp.status, 401, "loser {i} can log in: {}", resp.text);
    }
}

async fn patch_me_changes_the_name(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("patch").await;
    let before = app
        .get("/api/v1/users/me", Some(user.access()))
        .await
        .expect(200);

    let patched = app
        .patch(
            "/api/v1/users/me",
            Some(user.access()),
            &json!({"name": "Grace Hopper"}),
        )
        .await
        .expect(200);
    assert_keys(&patched, USER_FIELDS, "PATCH /users/me body");
    assert_eq!(patched["name"], "Grace Hopper");
    assert_eq!(patched["id"], before["id"]);
    assert_eq!(patched["email"], before["email"]);
    assert_eq!(patched["roles"], before["roles"]);
    assert_eq!(patched["created_at"], before["created_at"]);
    assert!(
        assert_rfc3339(&patched["updated_at"], "updated_at")
            >= assert_rfc3339(&before["updated_at"], "updated_at")
    );
    let me = app
        .get("/api/v1/users/me", Some(user.access()))
        .await
        .expect(200);
    assert_eq!(me, patched);

    // Invalid or foreign fields change nothing.
    app.patch(
        "/api/v1/users/me",
        Some(user.access()),
        &json!({"name": ""}),
    )
    .await
    .expect_invalid_field("name");
    for body in [
        json!({"roles": ["admin"]}),
        json!({"email": unique_email("steal")}),
        json!({"name": "X", "id": "1"}),
    ] {
        let resp = app
            .patch("/api/v1/users/me", Some(user.access()), &body)
            .await;
        assert_eq!(resp.status, 400, "PATCH /users/me {body}: {}", resp.text);
        resp.expect_error(400, "invalid_request");
    }
    let me = app
        .get("/api/v1/users/me", Some(user.access()))
        .await
        .expect(200);
    assert_eq!(me["name"], "Grace Hopper");
    assert_eq!(sorted_strings(&me["roles"]), ["customer"]);
    assert_eq!(me["email"], user.email.as_str());
}

async fn password_change_needs_the_current_password(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("pwchange").await;
    let new_password = random_secret("newpw");

    app.patch(
        "/api/v1/users/me",
        Some(user.access()),
        &json!({"password": new_password}),
    )
    .await
    .expect_error(400, "invalid_request");
    app.patch(
        "/api/v1/users/me",
        Some(user.access()),
        &json!({"password": new_password, "current_password": "not-my-password"}),
    )
    .await
    .expect_error(401, "invalid_credentials");
    app.patch(
        "/api/v1/users/me",
        Some(user.access()),
        &json!({"password": "short", "current_password": user.password}),
    )
    .await
    .expect_invalid_field("password");

    // Nothing changed: the old password still works, the new one does not, the token lives.
    assert_eq!(app.me_status(user.access()).await, 200);
    app.login(&user.email, &user.password).await;
    app.try_login(&user.email, &new_password)
        .await
        .expect_error(401, "invalid_credentials");
}

async fn password_change_ends_every_other_login(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("pwsessions").await;
    let other = app.login(&user.email, &user.password).await;
    let new_password = random_secret("newpw");

    let profile = app
        .patch(
            "/api/v1/users/me",
            Some(user.access()),
            &json!({"password": new_password, "current_password": user.password}),
        )
        .await
        .expect(200);
    assert_keys(&profile, USER_FIELDS, "PATCH /users/me body");

    // The other login is over.
    app.get("/api/v1/users/me", Some(&other.access))
        .await
        .expect_error(401, "unauthenticated");
    app.try_refresh(&other.refresh)
        .await
        .expect_error_in(401, &["unauthenticated", "refresh_token_reused"]);

    // The login that made the change keeps working, refresh included.
    assert_eq!(app.me_status(user.access()).await, 200);
    let renewed = app.refresh(&user.tokens.refresh).await;
    assert_eq!(app.me_status(&renewed.access).await, 200);

    app.try_login(&user.email, &user.password)
        .await
        .expect_error(401, "invalid_credentials");
    let fresh = app.login(&user.email, &new_password).await;
    assert_eq!(app.me_status(&fresh.access).await, 200);
}

async fn closing_the_account(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("close").await;
    let other = app.login(&user.email, &user.password).await;

    app.delete(
        "/api/v1/users/me",
        Some(user.access()),
        Some(&json!({"password": "not-my-password"})),
    )
    .await
    .expect_error(401, "invalid_credentials");
    app.delete("/api/v1/users/me", Some(user.access()), Some(&json!({})))
        .await
        .expect_error(400, "invalid_request");
    assert_eq!(
        app.me_status(user.access()).await,
        200,
        "a failed close closed"
    );

    app.delete(
        "/api/v1/users/me",
        Some(user.access()),
        Some(&json!({"password": user.password})),
    )
    .await
    .expect(204);

    for (label, token) in [
        ("closing login", user.access()),
        ("other login", &other.access),
    ] {
        let resp = app.get("/api/v1/users/me", Some(token)).await;
        assert_eq!(resp.status, 401, "{label} after close: {}", resp.text);
        resp.expect_error(401, "unauthenticated");
    }
    app.try_refresh(&user.tokens.refresh)
        .await
        .expect_error_in(401, &["unauthenticated", "refresh_token_reused"]);
    app.try_login(&user.email, &user.password)
        .await
        .expect_error(401, "invalid_credentials");

    // The address is free again, for a new account.
    let new_password = random_secret("pw");
    let again = app
        .register(&user.email, &new_password, "Second life")
        .await;
    assert_ne!(again["id"], user.id.as_str(), "a new account gets a new id");
    assert_eq!(sorted_strings(&again["roles"]), ["customer"]);
    let tokens = app.login(&user.email, &new_password).await;
    let me = app
        .get("/api/v1/users/me", Some(&tokens.access))
        .await
        .expect(200);
    assert_eq!(me["id"], again["id"]);
    assert_eq!(me["name"], "Second life");
    // The old tokens do not come back to life with the new account.
    assert_eq!(app.me_status(user.access()).await, 401);
}

async fn users_cannot_touch_each_other(backend: Backend) {
    let app = App::start(backend).await;
    let a = app.new_user("alice").await;
    let b = app.new_user("bob").await;

    let me_b = app
        .get("/api/v1/users/me", Some(b.access()))
        .await
        .expect(200);
    assert_eq!(me_b["id"], b.id.as_str());
    assert_eq!(me_b["email"], b.email.as_str());

    app.patch(
        "/api/v1/users/me",
        Some(b.access()),
        &json!({"name": "Bob renamed"}),
    )
    .await
    .expect(200);

    let a_path = format!("/api/v1/admin/users/{}", a.id);
    app.get(&a_path, Some(b.access()))
        .await
        .expect_error(403, "forbidden");
    app.put(
        &format!("{a_path}/roles"),
        Some(b.access()),
        &json!({"roles": ["customer", "merchant"]}),
    )
    .await
    .expect_error(403, "forbidden");
    app.post(
        &format!("{a_path}/ban"),
        Some(b.access()),
        &json!({"reason": "x"}),
    )
    .await
    .expect_error(403, "forbidden");
    app.delete(&a_path, Some(b.access()), None)
        .await
        .expect_error(403, "forbidden");

    // A is untouched: same name, same roles, still logged in, not banned.
    let me_a = app
        .get("/api/v1/users/me", Some(a.access()))
        .await
        .expect(200);
    assert_eq!(me_a["name"], a.name.as_str());
    assert_eq!(sorted_strings(&me_a["roles"]), ["customer"]);
    app.login(&a.email, &a.password).await;
}
