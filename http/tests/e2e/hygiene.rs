//! Request hygiene: media types, body limits, strict JSON, unknown routes, request ids, and
//! which routes need a token.

use reqwest::Method;
use serde_json::json;

use crate::harness::{App, Backend, random_secret, unique_email};

both_backends!(
    non_json_body_is_415,
    oversized_body_is_413,
    malformed_json_is_400,
    unknown_fields_are_rejected_not_ignored,
    wrong_types_are_400,
    whitelist_and_default_deny,
);

async fn non_json_body_is_415(backend: Backend) {
    let app = App::start(backend).await;
    let email = unique_email("plain");
    let password = random_secret("pw");
    let body = json!({"email": email, "password": password, "name": "Plain"}).to_string();

    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let resp = app
            .request(Method::POST, "/api/v1/users")
            .raw_body(content_type, body.clone())
            .send()
            .await;
        assert_eq!(
            resp.status, 415,
            "Content-Type {content_type:?}: {}",
            resp.text
        );
        resp.expect_error(415, "unsupported_media_type");
    }
    let resp = app
        .request(Method::POST, "/api/v1/auth/login")
        .raw_body(
            Some("text/plain"),
            json!({"email": email, "password": password}).to_string(),
        )
        .send()
        .await;
    resp.expect_error(415, "unsupported_media_type");

    // Nothing was created: the same registration as JSON succeeds.
    app.register(&email, &password, "Plain").await;
    // JSON with a charset parameter is still JSON.
    let resp = app
        .request(Method::POST, "/api/v1/auth/login")
        .raw_body(
            Some("application/json; charset=utf-8"),
            json!({"email": email, "password": password}).to_string(),
        )
        .send()
        .await;
    resp.expect(200);
}

async fn oversized_body_is_413(backend: Backend) {
    let app = App::start(backend).await;
    let email = unique_email("big");
    let password = random_secret("pw");

    let huge = json!({"email": email, "password": password, "name": "x".repeat(70 * 1024)});
    app.post("/api/v1/users", None, &huge)
        .await
        .expect_error(413, "payload_too_large");
    let huge_login = json!({"email": email, "password": "p".repeat(65 * 1024)});
    app.post("/api/v1/auth/login", None, &huge_login)
        .await
        .expect_error(413, "payload_too_large");

    // Just under the limit, the body is read and judged on its content.
    let big_but_ok = json!({"email": email, "password": password, "name": "x".repeat(60 * 1024)});
    app.post("/api/v1/users", None, &big_but_ok)
        .await
        .expect_invalid_field("name");

    // Nothing was created by any of it.
    app.register(&email, &password, "Big").await;
}

async fn malformed_json_is_400(backend: Backend) {
    let app = App::start(backend).await;
    let email = unique_email("malformed");
    for body in [
        "{\"email\": ",
        "{email: 'x@example.com'}",
        "not json at all",
        "",
        "{\"email\":\"a@example.com\",\"password\":\"pppppppp\",\"name\":\"n\"}}",
    ] {
        let resp = app
            .request(Method::POST, "/api/v1/users")
            .raw_body(Some("application/json"), body)
            .send()
            .await;
        assert_eq!(resp.status, 400, "body {body:?}: {}", resp.text);
        resp.expect_error(400, "invalid_request");
    }
    let user = app.new_user("malformed").await;
    let resp = app
        .request(Method::PATCH, "/api/v1/users/me")
        .bearer(user.access())
        .raw_body(Some("application/json"), "{\"name\": \"unterminated")
        .send()
        .await;
    resp.expect_error(400, "invalid_request");
    app.try_login(&email, "pppppppp")
        .await
        .expect_error(401, "invalid_credentials");
}

async fn unknown_fields_are_rejected_not_ignored(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let email = unique_email("sneaky");
    let password = random_secret("pw");

    for extra in [
        json!({"roles": ["admin"]}),
        json!({"role": "admin"}),
        json!({"id": "1"}),
        json!({"banned": false}),
    ] {
        let mut body = json!({"email": email, "password": password, "name": "Sneaky"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let resp = app.post("/api/v1/users", None, &body).await;
        assert_eq!(resp.status, 400, "registration with {extra}: {}", resp.text);
        resp.expect_error(400, "invalid_request");
    }

    // The user was not created at all, let alone as an admin.
    app.try_login(&email, &password)
        .await
        .expect_error(401, "invalid_credentials");
    let found = app
        .get(
            &format!(
                "/api/v1/admin/users?email={}",
                email.split('@').next().unwrap()
            ),
            Some(&admin.access),
        )
        .await
        .expect(200);
    assert_eq!(found["total"], 0, "{found}");

    let created = app.register(&email, &password, "Honest").await;
    assert_eq!(created["roles"], json!(["customer"]));

    app.post(
        "/api/v1/auth/login",
        None,
        &json!({"email": email, "password": password, "remember_me": true}),
    )
    .await
    .expect_error(400, "invalid_request");
}

async fn wrong_types_are_400(backend: Backend) {
    let app = App::start(backend).await;
    let email = unique_email("types");
    let password = random_secret("pw");
    for body in [
        json!({"email": email, "password": password, "name": 5}),
        json!({"email": null, "password": password, "name": "n"}),
        json!({"email": email, "password": ["x"], "name": "n"}),
        json!({"email": email, "password": 12345678, "name": "n"}),
        json!([email, password, "n"]),
        json!("just a string"),
    ] {
        let resp = app.post("/api/v1/users", None, &body).await;
        assert_eq!(resp.status, 400, "registration {body}: {}", resp.text);
        resp.expect_error(400, "invalid_request");
    }
    app.post(
        "/api/v1/auth/login",
        None,
        &json!({"email": email, "password": true}),
    )
    .await
    .expect_error(400, "invalid_request");
    app.register(&email, &password, "Typed").await;
}

async fn whitelist_and_default_deny(backend: Backend) {
    let app = App::start(backend).await;

    // Whitelisted: no token needed.
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/openapi.json",
        "/docs/",
    ] {
        let resp = app.get(path, None).await;
        assert_eq!(
            resp.status, 200,
            "GET {path} without a token: {}",
            resp.text
        );
    }
    for path in ["/api/v1/products", "/api/v1/products/123456789"] {
        let resp = app.get(path, None).await;
        assert!(
            !matches!(resp.status, 401 | 403),
            "GET {path} is public, got {} {}",
            resp.status,
            resp.text
        );
    }
    let user = app.new_user("public").await; // POST /users and POST /auth/login
    app.refresh(&user.tokens.refresh).await; // POST /auth/refresh

    // Everything else needs a token.
    let calls = [
        app.get("/api/v1/users/me", None).await,
        app.patch("/api/v1/users/me", None, &json!({"name": "x"}))
            .await,
        app.delete(
            "/api/v1/users/me",
            None,
            Some(&json!({"password": user.password})),
        )
        .await,
        app.get("/api/v1/auth/verify", None).await,
        app.post("/api/v1/auth/logout", None, &json!({})).await,
        app.get("/api/v1/admin/users", None).await,
        app.get(&format!("/api/v1/admin/users/{}", user.id), None)
            .await,
        app.post(
            &format!("/api/v1/admin/users/{}/ban", user.id),
            None,
            &json!({"reason": "x"}),
        )
        .await,
        app.get("/api/v1/admin/roles", None).await,
        app.put("/api/v1/admin/roles/x", None, &json!({"permissions": []}))
            .await,
        app.post("/api/v1/products", None, &json!({"name": "p"}))
            .await,
        app.delete("/api/v1/products/1", None, None).await,
        app.get("/api/v1/cart", None).await,
        app.get("/api/v1/orders", None).await,
        app.post("/api/v1/checkout", None, &json!({})).await,
    ];
    for resp in calls {
        assert_eq!(
            resp.status, 401,
            "{} without a token: {}",
            resp.what, resp.text
        );
        resp.expect_error(401, "unauthenticated");
    }
    // And the anonymous calls did nothing.
    assert_eq!(app.me_status(user.access()).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_is_404_in_the_error_shape() {
    let app = App::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    for (method, path) in [
        (Method::GET, "/api/v1/definitely-not-a-route"),
        (Method::POST, "/api/v1/definitely-not-a-route"),
        (Method::GET, "/api/v2/users/me"),
        (Method::GET, "/nope"),
    ] {
        let resp = app.request(method, path).bearer(&admin.access).send().await;
        assert_eq!(resp.status, 404, "{}: {}", resp.what, resp.text);
        resp.expect_error(404, "not_found");
        assert!(resp.header("x-request-id").is_some(), "{}", resp.what);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_has_a_request_id() {
    let app = App::start(Backend::Sqlite).await;

    let a = app.get("/healthz", None).await;
    let b = app.get("/healthz", None).await;
    let id_a = a.header("x-request-id").expect("X-Request-Id on /healthz");
    let id_b = b.header("x-request-id").expect("X-Request-Id on /healthz");
    assert!(!id_a.is_empty());
    assert_ne!(id_a, id_b, "generated request ids must differ");

    // Echoed, on success and on errors.
    let mine = "client-req-7f3a9c";
    for (path, status) in [
        ("/healthz", 200),
        ("/api/v1/users/me", 401),
        ("/api/v1/nope", 404),
    ] {
        let resp = app
            .request(Method::GET, path)
            .header("X-Request-Id", mine)
            .send()
            .await;
        assert_eq!(resp.status, status, "GET {path}: {}", resp.text);
        assert_eq!(
            resp.header("x-request-id").as_deref(),
            Some(mine),
            "GET {path} should echo the request id"
        );
    }
    let resp = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"email": unique_email("rid"), "password": "whatever1"}),
        )
        .await;
    resp.expect_error(401, "invalid_credentials");
    assert!(resp.header("x-request-id").is_some_and(|v| !v.is_empty()));
}
