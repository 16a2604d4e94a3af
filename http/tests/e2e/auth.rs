//! Login, tokens, refresh rotation and logout.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use reqwest::Method;
use serde_json::{Value, json};

use crate::commerce::sleep_until;
use crate::harness::{
    App, Backend, assert_rfc3339, eventually, jwt_claims, now_unix, sign_jwt, sorted_strings,
    unique_email, unsigned_jwt,
};

both_backends!(
    login_returns_a_token_pair,
    login_failures_look_the_same,
    verify_introspects_the_token,
    configured_access_ttl_is_honoured,
    configured_refresh_ttl_is_honoured,
    forged_and_malformed_tokens_are_rejected,
    refresh_rotates_and_detects_reuse,
    refresh_rejects_what_is_not_a_refresh_token,
    concurrent_refreshes_spend_the_token_once,
    logout_with_refresh_token_ends_that_login,
    logout_with_empty_body_ends_that_login,
    logout_cannot_end_another_users_login,
    failed_logins_are_rate_limited_per_account,
);

async fn login_returns_a_token_pair(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("login").await;
    let body = &user.tokens.body;
    assert_eq!(body["token_type"], "Bearer", "login body: {body}");
    assert_eq!(body["expires_in"], 900, "default access TTL in {body}");
    assert_eq!(
        body["refresh_expires_in"], 1_209_600,
        "default refresh TTL in {body}"
    );
    assert_ne!(user.tokens.access, user.tokens.refresh);

    let me = app
        .get("/api/v1/users/me", Some(user.access()))
        .await
        .expect(200);
    assert_eq!(me["id"], user.id.as_str());
    assert_eq!(me["email"], user.email.as_str());

    let claims = jwt_claims(user.access());
    assert_eq!(claims["iss"], "mall", "claims: {claims}");
    let aud_ok = claims["aud"] == "mall-api" || claims["aud"] == json!(["mall-api"]);
    assert!(aud_ok, "aud should be mall-api: {claims}");
    assert_eq!(
        claims["sub"],
        user.id.as_str(),
        "sub is the user id: {claims}"
    );
    assert!(claims["jti"].is_string(), "jti: {claims}");
    assert!(claims["sid"].is_string(), "sid: {claims}");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(
        exp - iat,
        900,
        "exp - iat should be the access TTL: {claims}"
    );
    assert!((iat - now_unix()).abs() <= 60, "iat is not now: {claims}");

    // Two logins are two sessions with different tokens.
    let second = app.login(&user.email, &user.password).await;
    assert_ne!(second.access, user.tokens.access);
    assert_ne!(second.refresh, user.tokens.refresh);
    assert_ne!(jwt_claims(&second.access)["jti"], claims["jti"]);
}

async fn login_failures_look_the_same(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("loginfail").await;

    let wrong_password = app.try_login(&user.email, "definitely-wrong-pw").await;
    wrong_password.expect_error(401, "invalid_credentials");
    let unknown_email = app
        .try_login(&unique_email("nobody"), "definitely-wrong-pw")
        .await;
    unknown_email.expect_error(401, "invalid_credentials");
    assert_eq!(
        wrong_password.json(),
        unknown_email.json(),
        "a wrong password and an unknown e-mail must be indistinguishable"
    );

    // A missing field is a bad request, not a failed login.
    app.post("/api/v1/auth/login", None, &json!({"email": user.email}))
        .await
        .expect_error(400, "invalid_request");

    // The failed attempts did not lock the account (rate limiting is off).
    app.login(&user.email, &user.password).await;
}

async fn verify_introspects_the_token(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("verify").await;
    let body = app
        .get("/api/v1/auth/verify", Some(user.access()))
        .await
        .expect(200);
    assert_eq!(body["user_id"], user.id.as_str(), "verify: {body}");
    assert_eq!(
        sorted_strings(&body["roles"]),
        ["customer"],
        "verify: {body}"
    );
    let expires_at = assert_rfc3339(&body["expires_at"], "verify.expires_at");
    let exp = jwt_claims(user.access())["exp"].as_i64().unwrap();
    assert_eq!(
        expires_at.unix_timestamp(),
        exp,
        "expires_at should be the token's exp"
    );

    app.get("/api/v1/auth/verify", None)
        .await
        .expect_error(401, "unauthenticated");
    app.get("/api/v1/auth/verify", Some("garbage"))
        .await
        .expect_error(401, "unauthenticated");
}

async fn configured_access_ttl_is_honoured(backend: Backend) {
    let app = App::start_with(backend, |b| b.env("MALL__AUTH__ACCESS_TTL_SECS", "2")).await;
    let user = app.new_user("ttl").await;
    assert_eq!(user.tokens.body["expires_in"], 2, "{}", user.tokens.body);
    assert_eq!(app.me_status(user.access()).await, 200);

    // Poll (bounded: the configured lifetime and some grace) until the token is refused, and
    // check that the refusal did not come before its exp, the first second it is no longer
    // valid in (RFC 7519: valid while now < exp; the harness allows no leeway).
    let exp = jwt_claims(user.access())["exp"].as_i64().unwrap();
    let last_sent = std::cell::Cell::new(time::OffsetDateTime::now_utc());
    let (refused, took) = eventually(Duration::from_secs(5), || {
        last_sent.set(time::OffsetDateTime::now_utc());
        async { app.me_status(user.access()).await == 401 }
    })
    .await;
    assert!(
        refused,
        "the token still worked {took:?} later, past its exp {exp}"
    );
    // The request that was refused left at most a moment (its latency) before exp.
    let early = time::OffsetDateTime::from_unix_timestamp(exp).unwrap() - last_sent.get();
    assert!(
        early <= time::Duration::milliseconds(500),
        "refused {early} before its exp {exp}"
    );
    app.get("/api/v1/users/me", Some(user.access()))
        .await
        .expect_error(401, "unauthenticated");

    // The refresh token lives much longer and gives a working access token.
    let renewed = app.refresh(&user.tokens.refresh).await;
    assert_eq!(app.me_status(&renewed.access).await, 200);
}

async fn configured_refresh_ttl_is_honoured(backend: Backend) {
    let app = App::start_with(backend, |b| b.env("MALL__AUTH__REFRESH_TTL_SECS", "2")).await;
    let user = app.new_user("refresh-ttl").await;
    // The refresh token was issued (and its expiry fixed) before this instant.
    let issued_by = time::OffsetDateTime::now_utc();
    assert_eq!(
        user.tokens.body["refresh_expires_in"], 2,
        "{}",
        user.tokens.body
    );
    // A second pair to spend after the deadline, and one to check it works before it.
    let spare = app.login(&user.email, &user.password).await;
    let renewed = app.refresh(&spare.refresh).await;
    assert_eq!(app.me_status(&renewed.access).await, 200);

    // Wait out the configured lifetime itself, counted from an instant after the issue, and no
    // more. (Polling cannot tell "still valid" without spending the token; the services' tests
    // move a clock instead of waiting.)
    sleep_until(issued_by + time::Duration::seconds(2), Duration::ZERO).await;
    app.try_refresh(&user.tokens.refresh)
        .await
        .expect_error(401, "unauthenticated");
    // The password still works.
    app.login(&user.email, &user.password).await;
}

async fn forged_and_malformed_tokens_are_rejected(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("forged").await;
    let secret = app.secret().to_owned();
    let claims = jwt_claims(user.access());

    // Control: the same claims signed with the configured secret are accepted, so every
    // rejection below is due to the one thing changed.
    let control = sign_jwt(&claims, &secret, Algorithm::HS256);
    let resp = app.get("/api/v1/users/me", Some(&control)).await;
    assert_eq!(
        resp.status, 200,
        "a re-signed copy of a real token should be accepted (the harness relies on it): {}",
        resp.text
    );

    let with = |key: &str, value: Value| {
        let mut c = claims.clone();
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    let now = now_unix();
    let mut expired = with("exp", json!(now - 60));
    expired["iat"] = json!(now - 960);
    let mut tampered_signature = user.access().to_owned();
    let flip_at = tampered_signature.rfind('.').unwrap() + 5;
    let flipped = if &tampered_signature[flip_at..=flip_at] == "A" {
        "B"
    } else {
        "A"
    };
    tampered_signature.replace_range(flip_at..=flip_at, flipped);

    let cases: Vec<(&str, String)> = vec![
        ("alg none", unsigned_jwt(&claims)),
        (
            "another secret",
            sign_jwt(
                &claims,
                "another-secret-another-secret-1234",
                Algorithm::HS256,
            ),
        ),
        (
            "HS384 with the secret",
            sign_jwt(&claims, &secret, Algorithm::HS384),
        ),
        (
            "HS512 with the secret",
            sign_jwt(&claims, &secret, Algorithm::HS512),
        ),
        ("tampered signature", tampered_signature),
        (
            "wrong aud",
            sign_jwt(&with("aud", json!("other-api")), &secret, Algorithm::HS256),
        ),
        (
            "wrong iss",
            sign_jwt(&with("iss", json!("evil")), &secret, Algorithm::HS256),
        ),
        ("expired", sign_jwt(&expired, &secret, Algorithm::HS256)),
        (
            "no exp",
            sign_jwt(&without("exp"), &secret, Algorithm::HS256),
        ),
        (
            "no iss",
            sign_jwt(&without("iss"), &secret, Algorithm::HS256),
        ),
        (
            "no aud",
            sign_jwt(&without("aud"), &secret, Algorithm::HS256),
        ),
        (
            "no sub",
            sign_jwt(&without("sub"), &secret, Algorithm::HS256),
        ),
        (
            "no iat",
            sign_jwt(&without("iat"), &secret, Algorithm::HS256),
        ),
        (
            "no jti",
            sign_jwt(&without("jti"), &secret, Algorithm::HS256),
        ),
        ("garbage", "this-is-not-a-token".to_owned()),
        ("three garbage parts", "aaa.bbb.ccc".to_owned()),
        ("the refresh token", user.tokens.refresh.clone()),
    ];
    for (label, token) in &cases {
        let resp = app.get("/api/v1/users/me", Some(token)).await;
        assert_eq!(
            resp.status, 401,
            "{label}: expected 401, got {} {}",
            resp.status, resp.text
        );
        resp.expect_error(401, "unauthenticated");
    }

    // The scheme is required, and must be Bearer.
    for header in [
        user.access().to_owned(),
        format!("Basic {}", user.access()),
        "Bearer ".to_owned(),
        "Bearer".to_owned(),
    ] {
        let resp = app
            .request(Method::GET, "/api/v1/users/me")
            .header("Authorization", &header)
            .send()
            .await;
        assert_eq!(
            resp.status, 401,
            "Authorization: {:.20}..: expected 401, got {} {}",
            header, resp.status, resp.text
        );
        resp.expect_error(401, "unauthenticated");
    }
    app.get("/api/v1/users/me", None)
        .await
        .expect_error(401, "unauthenticated");

    // None of that harmed the real token.
    assert_eq!(app.me_status(user.access()).await, 200);
}

async fn refresh_rotates_and_detects_reuse(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("refresh").await;
    let other_login = app.login(&user.email, &user.password).await;
    let first = user.tokens.clone();

    let second = app.refresh(&first.refresh).await;
    assert_eq!(second.body["token_type"], "Bearer", "{}", second.body);
    assert!(second.body["expires_in"].is_u64(), "{}", second.body);
    assert!(
        second.body["refresh_expires_in"].is_u64(),
        "{}",
        second.body
    );
    assert_ne!(second.access, first.access);
    assert_ne!(second.refresh, first.refresh);
    let me = app
        .get("/api/v1/users/me", Some(&second.access))
        .await
        .expect(200);
    assert_eq!(me["id"], user.id.as_str());

    let third = app.refresh(&second.refresh).await;
    assert_eq!(app.me_status(&third.access).await, 200);

    // The first refresh token is spent: presenting it again is theft and ends the login.
    app.try_refresh(&first.refresh)
        .await
        .expect_error(401, "refresh_token_reused");
    for (label, token) in [
        ("newest access", &third.access),
        ("older access", &second.access),
        ("first access", &first.access),
    ] {
        let resp = app.get("/api/v1/users/me", Some(token)).await;
        assert_eq!(
            resp.status, 401,
            "{label} token after reuse: expected 401, got {} {}",
            resp.status, resp.text
        );
        resp.expect_error(401, "unauthenticated");
    }
    app.try_refresh(&third.refresh)
        .await
        .expect_error_in(401, &["refresh_token_reused", "unauthenticated"]);

    // Another login of the same user is a different session and is untouched.
    assert_eq!(app.me_status(&other_login.access).await, 200);
    let renewed = app.refresh(&other_login.refresh).await;
    assert_eq!(app.me_status(&renewed.access).await, 200);
}

async fn refresh_rejects_what_is_not_a_refresh_token(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("badrefresh").await;

    app.try_refresh("not-a-refresh-token")
        .await
        .expect_error(401, "unauthenticated");
    app.try_refresh(user.access())
        .await
        .expect_error(401, "unauthenticated");
    app.post("/api/v1/auth/refresh", None, &json!({}))
        .await
        .expect_error(400, "invalid_request");
    app.post(
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": user.tokens.refresh, "user_id": user.id}),
    )
    .await
    .expect_error(400, "invalid_request");

    // None of that spent the real refresh token.
    let renewed = app.refresh(&user.tokens.refresh).await;
    assert_eq!(app.me_status(&renewed.access).await, 200);
}

async fn concurrent_refreshes_spend_the_token_once(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("race").await;
    let r = user.tokens.refresh.as_str();
    let (a, b, c, d, e) = tokio::join!(
        app.try_refresh(r),
        app.try_refresh(r),
        app.try_refresh(r),
        app.try_refresh(r),
        app.try_refresh(r),
    );
    let all = [a, b, c, d, e];
    let winners = all.iter().filter(|resp| resp.status == 200).count();
    assert!(
        winners <= 1,
        "one refresh token was renewed {winners} times: {:?}",
        all.iter().map(|r| (r.status, &r.text)).collect::<Vec<_>>()
    );
    for resp in all.iter().filter(|resp| resp.status != 200) {
        resp.expect_error_in(401, &["refresh_token_reused", "unauthenticated"]);
    }
    // Once spent, it stays spent.
    app.try_refresh(r)
        .await
        .expect_error_in(401, &["refresh_token_reused", "unauthenticated"]);
}

async fn logout_with_refresh_token_ends_that_login(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("logout").await;
    let other_login = app.login(&user.email, &user.password).await;

    let resp = app
        .post(
            "/api/v1/auth/logout",
            Some(user.access()),
            &json!({"refresh_token": user.tokens.refresh}),
        )
        .await;
    resp.expect(204);
    assert!(resp.text.is_empty(), "204 with a body: {:?}", resp.text);

    app.get("/api/v1/users/me", Some(user.access()))
        .await
        .expect_error(401, "unauthenticated");
    app.try_refresh(&user.tokens.refresh)
        .await
        .expect_error_in(401, &["unauthenticated", "refresh_token_reused"]);
    app.post("/api/v1/auth/logout", Some(user.access()), &json!({}))
        .await
        .expect_error(401, "unauthenticated");

    // The other login is untouched, and the user can log in again.
    assert_eq!(app.me_status(&other_login.access).await, 200);
    let again = app.login(&user.email, &user.password).await;
    assert_eq!(app.me_status(&again.access).await, 200);
}

async fn logout_with_empty_body_ends_that_login(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("logout-empty").await;

    let resp = app
        .request(Method::POST, "/api/v1/auth/logout")
        .bearer(user.access())
        .send()
        .await;
    resp.expect(204);

    app.get("/api/v1/users/me", Some(user.access()))
        .await
        .expect_error(401, "unauthenticated");
    app.try_refresh(&user.tokens.refresh)
        .await
        .expect_error_in(401, &["unauthenticated", "refresh_token_reused"]);

    // Logging out needs a token.
    app.request(Method::POST, "/api/v1/auth/logout")
        .send()
        .await
        .expect_error(401, "unauthenticated");
}

async fn logout_cannot_end_another_users_login(backend: Backend) {
    let app = App::start(backend).await;
    let mallory = app.new_user("mallory").await;
    let victim = app.new_user("victim").await;

    let resp = app
        .post(
            "/api/v1/auth/logout",
            Some(mallory.access()),
            &json!({"refresh_token": victim.tokens.refresh}),
        )
        .await;
    assert!(
        resp.status < 500,
        "logout with someone else's refresh token: {} {}",
        resp.status,
        resp.text
    );

    // The victim's login is untouched.
    assert_eq!(app.me_status(victim.access()).await, 200);
    let renewed = app.refresh(&victim.tokens.refresh).await;
    assert_eq!(app.me_status(&renewed.access).await, 200);
}

async fn failed_logins_are_rate_limited_per_account(backend: Backend) {
    let app = App::start_with(backend, |b| b.env("MALL__RATE_LIMIT__ENABLED", "true")).await;
    let user = app.new_user("bruteforce").await;
    let bystander = app.new_user("bystander").await;

    // The default budget is 10 failed logins per account per minute.
    for attempt in 1..=10 {
        let resp = app
            .try_login(&user.email, &format!("guess-{attempt:04}"))
            .await;
        assert_eq!(resp.status, 401, "failed attempt {attempt}: {}", resp.text);
        resp.expect_error(401, "invalid_credentials");
    }
    let resp = app.try_login(&user.email, "guess-0011").await;
    resp.expect_error(429, "rate_limited");
    let retry_after = resp.header("retry-after").expect("Retry-After on 429");
    let secs: u64 = retry_after
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is not a number of seconds: {retry_after:?}"));
    assert!((1..=60).contains(&secs), "Retry-After {secs}");
    // Once the budget is spent even the right password is refused: a guess cannot be confirmed.
    app.try_login(&user.email, &user.password)
        .await
        .expect_error(429, "rate_limited");

    // Another account is not affected, and neither are existing logins.
    let tokens = app.login(&bystander.email, &bystander.password).await;
    assert_eq!(app.me_status(&tokens.access).await, 200);
    assert_eq!(app.me_status(user.access()).await, 200);
}
