//! Two `mall` processes on one PostgreSQL database: changes made on one are enforced by the
//! other within a second.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Backend, Server, ServerBuilder, eventually};

/// The promise is one second; polling every 50 ms for 1.5 s leaves room for scheduling noise.
const WITHIN: Duration = Duration::from_millis(1500);

/// Starts two nodes sharing the database, the JWT secret and the bootstrap admin.
async fn two_nodes(db_url: &str) -> (Server, Server) {
    let node1 = ServerBuilder::new(db_url).start().await;
    let node2 = ServerBuilder::new(db_url)
        .secret(node1.secret())
        .env(
            "MALL__BOOTSTRAP__ADMIN_PASSWORD",
            &node1.process.admin_password,
        )
        .start()
        .await;
    (node1, node2)
}

/// Polls `GET path` on `node` with `token` until it answers `status`; panics otherwise.
async fn converges(node: &Server, path: &str, token: &str, status: u16, what: &str) {
    let (ok, took) = eventually(WITHIN, move || async move {
        node.get(path, Some(token)).await.status == status
    })
    .await;
    let last = node.get(path, Some(token)).await;
    assert!(
        ok,
        "{what}: node 2 still answers {} {} for GET {path} after {took:?} (want {status})",
        last.status, last.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_and_bans_reach_the_other_node_within_a_second() {
    let db = Backend::Postgres.database().await;
    let (node1, node2) = two_nodes(db.url()).await;
    let admin = node1.admin().await;
    let user = node2.new_user("cluster").await;
    let t2 = user.access(); // issued by node 2
    let t1 = node1.login(&user.email, &user.password).await.access; // issued by node 1
    let detail = format!("/api/v1/admin/users/{}", user.id);

    // Tokens are valid on both nodes.
    assert_eq!(node2.me_status(&t1).await, 200, "node 1's token on node 2");
    assert_eq!(node1.me_status(t2).await, 200, "node 2's token on node 1");
    // Node 2 has seen (and may have cached) the current state.
    node2
        .get("/api/v1/admin/users", Some(t2))
        .await
        .expect_error(403, "forbidden");

    // A new role and a role grant, made on node 1.
    node1
        .put(
            "/api/v1/admin/roles/auditor",
            Some(&admin.access),
            &json!({"permissions": [
                {"method": "GET", "path": "/api/v1/admin/users(/.*)?", "effect": "allow"}
            ]}),
        )
        .await
        .expect(200);
    node1
        .put(
            &format!("{detail}/roles"),
            Some(&admin.access),
            &json!({"roles": ["customer", "auditor"]}),
        )
        .await
        .expect(200);
    converges(&node2, "/api/v1/admin/users", t2, 200, "role granted").await;
    converges(&node2, &detail, &t1, 200, "role granted (node 1 token)").await;

    // A permission change of the role, made on node 1.
    node1
        .put(
            "/api/v1/admin/roles/auditor",
            Some(&admin.access),
            &json!({"permissions": [
                {"method": "GET", "path": "/api/v1/admin/users(/.*)?", "effect": "allow"},
                {"method": "GET", "path": "/api/v1/admin/users/.*", "effect": "deny"}
            ]}),
        )
        .await
        .expect(200);
    converges(&node2, &detail, t2, 403, "deny rule added").await;
    node2.get("/api/v1/admin/users", Some(t2)).await.expect(200);

    // The role taken away on node 1.
    node1
        .put(
            &format!("{detail}/roles"),
            Some(&admin.access),
            &json!({"roles": ["customer"]}),
        )
        .await
        .expect(200);
    converges(&node2, "/api/v1/admin/users", t2, 403, "role removed").await;
    node2
        .get("/api/v1/admin/users", Some(t2))
        .await
        .expect_error(403, "forbidden");

    // A ban on node 1.
    node1
        .post(
            &format!("{detail}/ban"),
            Some(&admin.access),
            &json!({"reason": "cluster test"}),
        )
        .await
        .expect(204);
    converges(&node2, "/api/v1/users/me", t2, 403, "ban").await;
    node2
        .get("/api/v1/users/me", Some(t2))
        .await
        .expect_error(403, "user_banned");
    node2
        .try_login(&user.email, &user.password)
        .await
        .expect_error(403, "user_banned");

    // Lifted on node 1: node 2 lets the user log in again.
    node1
        .delete(&format!("{detail}/ban"), Some(&admin.access), None)
        .await
        .expect(204);
    let (n2, email, password) = (&node2, user.email.as_str(), user.password.as_str());
    let (ok, took) = eventually(WITHIN, move || async move {
        n2.try_login(email, password).await.status == 200
    })
    .await;
    assert!(
        ok,
        "node 2 still refuses the login {took:?} after the ban was lifted"
    );
    // Tokens from before the ban stay dead once node 2 has seen the ban lifted.
    converges(&node2, "/api/v1/users/me", t2, 401, "ban lifted").await;
    node2
        .get("/api/v1/users/me", Some(t2))
        .await
        .expect_error(401, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_and_closing_reach_the_other_node() {
    let db = Backend::Postgres.database().await;
    let (node1, node2) = two_nodes(db.url()).await;
    let admin = node1.admin().await;

    // Logout on node 1 ends the login on node 2 too.
    let user = node1.new_user("cluster-logout").await;
    let other = node2.login(&user.email, &user.password).await;
    assert_eq!(node2.me_status(user.access()).await, 200);
    node1
        .post(
            "/api/v1/auth/logout",
            Some(user.access()),
            &json!({"refresh_token": user.tokens.refresh}),
        )
        .await
        .expect(204);
    converges(&node2, "/api/v1/users/me", user.access(), 401, "logout").await;
    node2
        .try_refresh(&user.tokens.refresh)
        .await
        .expect_error_in(401, &["unauthenticated", "refresh_token_reused"]);
    assert_eq!(
        node2.me_status(&other.access).await,
        200,
        "other login kept"
    );

    // An admin closing the account on node 1 ends every login on node 2.
    node1
        .delete(
            &format!("/api/v1/admin/users/{}", user.id),
            Some(&admin.access),
            None,
        )
        .await
        .expect(204);
    converges(
        &node2,
        "/api/v1/users/me",
        &other.access,
        401,
        "account closed",
    )
    .await;
    node2
        .try_login(&user.email, &user.password)
        .await
        .expect_error(401, "invalid_credentials");
}
