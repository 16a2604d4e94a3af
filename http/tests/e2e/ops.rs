//! Operations endpoints (health, readiness, metrics, OpenAPI, docs) and log hygiene.

use serde_json::{Value, json};

use crate::harness::{App, Backend, random_secret};

both_backends!(readyz_reports_dependencies, logs_never_contain_secrets);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_200() {
    let app = App::start(Backend::Sqlite).await;
    let resp = app.get("/healthz", None).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert!(resp.header("x-request-id").is_some());
}

async fn readyz_reports_dependencies(backend: Backend) {
    let app = App::start(backend).await;
    let body = app.get("/readyz", None).await.expect(200);
    assert_eq!(
        body,
        json!({"database": "up", "redis": "disabled", "registry": "disabled"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route() {
    let app = App::start(Backend::Sqlite).await;
    // Some traffic first, including an error and an authenticated call.
    app.get("/healthz", None).await.expect(200);
    app.get("/api/v1/users/me", None).await.expect(401);
    let user = app.new_user("metrics").await;
    app.get("/api/v1/users/me", Some(user.access()))
        .await
        .expect(200);
    let admin = app.admin().await;
    app.get(
        &format!("/api/v1/admin/users/{}", user.id),
        Some(&admin.access),
    )
    .await
    .expect(200);

    let resp = app.get("/metrics", None).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let content_type = resp.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain"),
        "Prometheus text format, got Content-Type {content_type:?}"
    );
    let text = &resp.text;
    for name in ["http_requests_total", "http_request_duration_seconds"] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    let counters: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .collect();
    assert!(
        counters.iter().any(|l| l.contains("route=\"")),
        "http_requests_total has no route label:\n{text}"
    );
    assert!(
        counters
            .iter()
            .any(|l| l.contains("route=\"") && l.contains("\"401\"")),
        "the 401 was not counted by status:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("http_request_duration_seconds_bucket{")
                && l.contains("route=\"")),
        "no latency histogram by route:\n{text}"
    );
    // Routes are labelled by pattern, so ids in paths do not create new series.
    if user.id.len() >= 4 {
        assert!(
            !text.contains(&format!("/api/v1/admin/users/{}", user.id)),
            "a raw path with a user id became a metric label:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_describes_the_api() {
    let app = App::start(Backend::Sqlite).await;
    let resp = app.get("/api/v1/openapi.json", None).await;
    let doc: Value = resp.expect(200);
    let content_type = resp.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "Content-Type {content_type:?}"
    );
    let version = doc["openapi"].as_str().expect("an `openapi` field");
    assert!(version.starts_with('3'), "openapi version {version}");
    let paths = doc["paths"].as_object().expect("a `paths` object");
    for path in ["/api/v1/users", "/api/v1/auth/login", "/api/v1/admin/roles"] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI paths: {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_page_is_served() {
    let app = App::start(Backend::Sqlite).await;
    for path in ["/docs/", "/docs"] {
        // reqwest follows a redirect (e.g. /docs -> /docs/) by itself.
        let resp = app.get(path, None).await;
        assert_eq!(resp.status, 200, "GET {path}: {}", resp.text);
        let content_type = resp.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("text/html"),
            "GET {path}: Content-Type {content_type:?}"
        );
        assert!(
            resp.text.to_ascii_lowercase().contains("<html"),
            "GET {path}: not an HTML page"
        );
        // Served without internet: no scripts or styles from a CDN.
        for cdn in ["unpkg.com", "cdn.jsdelivr", "cdnjs.cloudflare"] {
            assert!(!resp.text.contains(cdn), "GET {path}: loads from {cdn}");
        }
    }
}

async fn logs_never_contain_secrets(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("logs").await;
    let second = app.refresh(&user.tokens.refresh).await;
    app.get("/api/v1/users/me", Some(&second.access))
        .await
        .expect(200);
    let wrong_password = random_secret("wrong-pw");
    app.try_login(&user.email, &wrong_password)
        .await
        .expect_error(401, "invalid_credentials");
    let new_password = random_secret("new-pw");
    app.patch(
        "/api/v1/users/me",
        Some(&second.access),
        &json!({"password": new_password, "current_password": user.password}),
    )
    .await
    .expect(200);
    // A reuse attempt and a logout, which both touch tokens.
    app.try_refresh(&user.tokens.refresh).await;
    let third = app.login(&user.email, &new_password).await;
    app.post(
        "/api/v1/auth/logout",
        Some(&third.access),
        &json!({"refresh_token": third.refresh}),
    )
    .await
    .expect(204);
    let admin = app.admin().await;
    app.get("/api/v1/admin/users", Some(&admin.access))
        .await
        .expect(200);

    let logs = format!("{}\n{}", app.process.stdout(), app.process.stderr());
    assert!(
        logs.lines().count() >= 2,
        "expected request logs, got:\n{logs}"
    );
    let admin_password = app.process.admin_password.clone();
    let secrets = [
        ("password", user.password.as_str()),
        ("wrong password", wrong_password.as_str()),
        ("new password", new_password.as_str()),
        ("admin password", admin_password.as_str()),
        ("jwt secret", app.secret()),
        ("access token", user.tokens.access.as_str()),
        ("refresh token", user.tokens.refresh.as_str()),
        ("refreshed access token", second.access.as_str()),
        ("refreshed refresh token", second.refresh.as_str()),
        ("third access token", third.access.as_str()),
        ("third refresh token", third.refresh.as_str()),
        ("admin access token", admin.access.as_str()),
    ];
    for (label, secret) in secrets {
        assert!(
            !logs.contains(secret),
            "the logs contain the {label}: {secret}"
        );
        // A token's signature alone is as good as the token.
        if let Some((_, signature)) = secret.rsplit_once('.')
            && signature.len() >= 16
        {
            assert!(
                !logs.contains(signature),
                "the logs contain the signature of the {label}"
            );
        }
    }
}
