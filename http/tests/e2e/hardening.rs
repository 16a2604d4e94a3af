//! Input that must never reach the database (control characters, repeated keys, amounts past
//! the bounds), sums that stay exact, routing answered before authentication, `nbf`, and the
//! smaller edges of the contract.

use reqwest::Method;
use serde_json::{Value, json};

use crate::commerce::{
    CHECKOUT, GOOD_CARD, ORDERS, add_to_cart, address, cancel_order, card, checked_order, id,
    order_body, product, stock,
};
use crate::harness::{App, Backend, Server, jwt_claims, metric, now_unix, sign_jwt, unique_email};

both_backends!(
    control_characters_are_refused_and_nothing_is_stored,
    free_text_keeps_its_tabs_and_line_breaks,
    a_repeated_key_is_refused,
    amounts_stay_within_bounds_and_totals_are_exact,
    unknown_paths_and_methods_are_answered_before_authentication,
    a_token_not_valid_yet_is_refused,
    smaller_edges_of_the_contract,
    expired_rows_are_purged_on_a_schedule,
);

/// The highest price and stock a client may set (API.md, Conventions).
const MAX_PRICE_CENTS: i64 = 100_000_000_000;
const MAX_STOCK: i64 = 1_000_000_000;

/// Asserts the server logged nothing at ERROR (bad input is the client's problem, not ours).
#[track_caller]
fn no_error_logged(app: &Server) {
    let errors: Vec<String> = app
        .process
        .stdout()
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .map(str::to_owned)
        .collect();
    assert!(errors.is_empty(), "logged at ERROR: {errors:#?}");
}

async fn control_characters_are_refused_and_nothing_is_stored(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let user = app.new_user("ctl").await;

    // Registration and login: a NUL in the email was a 500 on PostgreSQL and stored on SQLite.
    let email = unique_email("nul");
    for (body, field) in [
        (
            json!({"email": format!("a\u{0}{email}"), "password": "password-1", "name": "N"}),
            "email",
        ),
        (
            json!({"email": email, "password": "password-1", "name": "N\u{1b}[31m"}),
            "name",
        ),
        (
            json!({"email": email, "password": "pass\u{7f}word-1", "name": "N"}),
            "password",
        ),
    ] {
        app.post("/api/v1/users", None, &body)
            .await
            .expect_invalid_field(field);
    }
    app.post(
        "/api/v1/auth/login",
        None,
        &json!({"email": format!("{email}\u{0}"), "password": "password-1"}),
    )
    .await
    .expect_invalid_field("email");
    // Nothing was registered under the clean address.
    app.try_login(&email, "password-1")
        .await
        .expect_error(401, "invalid_credentials");

    // Query strings: search text, category, an admin's email filter.
    for (path, field) in [
        ("/api/v1/products?q=tea%00pot", "q"),
        ("/api/v1/products?q=a%0Ab", "q"),
        ("/api/v1/products?category=%7F", "category"),
    ] {
        app.get(path, None).await.expect_invalid_field(field);
    }
    app.get("/api/v1/admin/users?email=%00", Some(&admin.access))
        .await
        .expect_invalid_field("email");

    // Catalog, cart and order bodies, naming the field inside nested objects and lists.
    let created = app
        .post(
            "/api/v1/products",
            Some(&admin.access),
            &json!({"name": "Tea\npot", "price_cents": 100, "stock": 1}),
        )
        .await;
    created.expect_invalid_field("name");
    let tea = product(&app, &admin.access, "tea", 100, 5).await;
    app.post(
        "/api/v1/products",
        Some(&admin.access),
        &json!({"name": "Cup", "price_cents": 100, "stock": 1, "categories": ["ok", "b\u{0}d"]}),
    )
    .await
    .expect_invalid_field("categories[1]");
    app.patch(
        &format!("/api/v1/products/{tea}"),
        Some(&admin.access),
        &json!({"name": "tea\u{0}"}),
    )
    .await
    .expect_invalid_field("name");
    app.post(
        "/api/v1/cart/items",
        Some(user.access()),
        &json!({"product_id": format!("{tea}\u{0}"), "quantity": 1}),
    )
    .await
    .expect_invalid_field("product_id");
    let mut bad_address = address();
    bad_address["line1"] = json!("1 Main St\u{0}");
    let mut order = order_body(&[(&tea, 1)]);
    order["address"] = bad_address.clone();
    app.post(ORDERS, Some(user.access()), &order)
        .await
        .expect_invalid_field("address.line1");
    add_to_cart(&app, user.access(), &tea, 1).await;
    app.post(
        CHECKOUT,
        Some(user.access()),
        &json!({"address": bad_address, "card": card(GOOD_CARD)}),
    )
    .await
    .expect_invalid_field("address.line1");

    // Nothing of it was stored: one product, its stock untouched, no order.
    let list = app.get("/api/v1/products", None).await.expect(200);
    assert_eq!(list["total"], 1, "{list}");
    let tea_now = app
        .get(&format!("/api/v1/products/{tea}"), None)
        .await
        .expect(200);
    assert_eq!(tea_now["name"], "tea");
    assert_eq!(stock(&app, &tea).await, 5);
    let orders = app.get(ORDERS, Some(user.access())).await.expect(200);
    assert_eq!(orders["total"], 0, "{orders}");
    no_error_logged(&app);
}

async fn free_text_keeps_its_tabs_and_line_breaks(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let user = app.new_user("text").await;
    let description = "Line one\nLine two\twith a tab\r\nand CRLF";
    let made = app
        .post(
            "/api/v1/products",
            Some(&admin.access),
            &json!({"name": "Kettle", "description": description, "price_cents": 100, "stock": 3}),
        )
        .await
        .expect(201);
    assert_eq!(made["description"], description);
    let kettle = id(&made);
    let mut body = order_body(&[(&kettle, 1)]);
    body["note"] = json!("Ring twice\nthen wait");
    let order = checked_order(
        app.post(ORDERS, Some(user.access()), &body)
            .await
            .expect(201),
    );
    assert_eq!(order["note"], "Ring twice\nthen wait");
    // But not a NUL, even there.
    body["note"] = json!("Ring\u{0}");
    app.post(ORDERS, Some(user.access()), &body)
        .await
        .expect_invalid_field("note");
}

async fn a_repeated_key_is_refused(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let email = unique_email("dup");
    let raw = format!(
        r#"{{"email": "{email}", "password": "password-1", "name": "First", "name": "Second"}}"#
    );
    let resp = app
        .request(Method::POST, "/api/v1/users")
        .raw_body(Some("application/json"), raw)
        .send()
        .await;
    resp.expect_invalid_field("name");
    app.try_login(&email, "password-1")
        .await
        .expect_error(401, "invalid_credentials");

    // Two prices: the one a proxy read is not the one the server would have kept.
    let raw = r#"{"name": "Lamp", "price_cents": 1, "stock": 1, "price_cents": 100000}"#;
    let resp = app
        .request(Method::POST, "/api/v1/products")
        .bearer(&admin.access)
        .raw_body(Some("application/json"), raw)
        .send()
        .await;
    resp.expect_invalid_field("price_cents");
    // Nested too.
    let user = app.new_user("dup").await;
    let lamp = product(&app, &admin.access, "lamp", 100, 5).await;
    let raw = format!(
        r#"{{"items": [{{"product_id": "{lamp}", "quantity": 1, "quantity": 3}}], "address": {}}}"#,
        address()
    );
    let resp = app
        .request(Method::POST, ORDERS)
        .bearer(user.access())
        .raw_body(Some("application/json"), raw)
        .send()
        .await;
    resp.expect_invalid_field("quantity");
    assert_eq!(stock(&app, &lamp).await, 5);
    let list = app.get("/api/v1/products", None).await.expect(200);
    assert_eq!(list["total"], 1, "{list}");
}

async fn amounts_stay_within_bounds_and_totals_are_exact(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let create =
        |price: i64, stock: i64| json!({"name": "Gold bar", "price_cents": price, "stock": stock});
    for (body, field) in [
        (create(i64::MAX, 1), "price_cents"),
        (create(MAX_PRICE_CENTS + 1, 1), "price_cents"),
        (create(-1, 1), "price_cents"),
        (create(1, MAX_STOCK + 1), "stock"),
        (create(1, i64::MAX), "stock"),
    ] {
        app.post("/api/v1/products", Some(&admin.access), &body)
            .await
            .expect_invalid_field(field);
    }
    // At the bounds, accepted; a change past them is refused and changes nothing.
    let bar = id(&app
        .post(
            "/api/v1/products",
            Some(&admin.access),
            &create(MAX_PRICE_CENTS, MAX_STOCK),
        )
        .await
        .expect(201));
    let path = format!("/api/v1/products/{bar}");
    app.patch(
        &path,
        Some(&admin.access),
        &json!({"price_cents": i64::MAX}),
    )
    .await
    .expect_invalid_field("price_cents");
    app.patch(&path, Some(&admin.access), &json!({"stock": MAX_STOCK + 1}))
        .await
        .expect_invalid_field("stock");
    let now = app.get(&path, None).await.expect(200);
    assert_eq!(now["price_cents"], MAX_PRICE_CENTS);
    assert_eq!(now["stock"], MAX_STOCK);

    // The largest line there can be is summed exactly, in the cart, the order and the payment.
    let user = app.new_user("rich").await;
    let cart = add_to_cart(&app, user.access(), &bar, 999).await;
    let expected = MAX_PRICE_CENTS * 999;
    assert_eq!(cart["total_cents"], expected, "{cart}");
    let placed = app
        .post(
            CHECKOUT,
            Some(user.access()),
            &json!({"address": address(), "card": card(GOOD_CARD)}),
        )
        .await
        .expect(201);
    assert_eq!(placed["order"]["total_cents"], expected, "{placed}");
    assert_eq!(placed["payment"]["amount_cents"], expected, "{placed}");
    assert_eq!(stock(&app, &bar).await, MAX_STOCK - 999);

    // Stock given back by a cancel may pass the bound a client may set; it never fails.
    let second = checked_order(
        app.post(ORDERS, Some(user.access()), &order_body(&[(&bar, 2)]))
            .await
            .expect(201),
    );
    assert_eq!(second["total_cents"], MAX_PRICE_CENTS * 2);
    app.patch(&path, Some(&admin.access), &json!({"stock": MAX_STOCK}))
        .await
        .expect(200);
    cancel_order(&app, user.access(), &id(&second))
        .await
        .expect(200);
    assert_eq!(stock(&app, &bar).await, MAX_STOCK + 2);
    no_error_logged(&app);
}

async fn unknown_paths_and_methods_are_answered_before_authentication(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("routes").await;
    for token in [None, Some("not-a-token"), Some(user.access())] {
        for (method, path) in [
            (Method::GET, "/api/v1/nope"),
            (Method::POST, "/api/v1/orders/1/nope"),
            (Method::DELETE, "/api/v2/cart"),
            (Method::GET, "/api/v1/products/1/"),
        ] {
            let mut req = app.request(method, path);
            if let Some(t) = token {
                req = req.bearer(t);
            }
            let resp = req.send().await;
            resp.expect_error(404, "not_found");
        }
        for (method, path, allowed) in [
            (Method::DELETE, "/api/v1/checkout", vec!["POST"]),
            (Method::PUT, "/api/v1/orders", vec!["GET", "POST"]),
            (Method::POST, "/api/v1/orders/1", vec!["GET", "PATCH"]),
            (Method::PATCH, "/api/v1/users", vec!["POST"]),
        ] {
            let mut req = app.request(method, path);
            if let Some(t) = token {
                req = req.bearer(t);
            }
            let resp = req.send().await;
            resp.expect_error(405, "method_not_allowed");
            let allow = resp
                .header("allow")
                .unwrap_or_else(|| panic!("{}: no Allow header", resp.what));
            let mut listed: Vec<&str> = allow.split(',').map(str::trim).collect();
            listed.sort_unstable();
            assert_eq!(listed, allowed, "{}", resp.what);
        }
    }
    // A known route with its method still needs a token.
    app.get("/api/v1/orders", None)
        .await
        .expect_error(401, "unauthenticated");
}

async fn a_token_not_valid_yet_is_refused(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("nbf").await;
    let mut claims: Value = jwt_claims(user.access());
    claims["nbf"] = json!(now_unix() + 3600);
    let early = sign_jwt(&claims, app.secret(), jsonwebtoken::Algorithm::HS256);
    app.get("/api/v1/users/me", Some(&early))
        .await
        .expect_error(401, "unauthenticated");
    claims["nbf"] = json!(now_unix() - 5);
    let valid = sign_jwt(&claims, app.secret(), jsonwebtoken::Algorithm::HS256);
    app.get("/api/v1/users/me", Some(&valid)).await.expect(200);
}

async fn smaller_edges_of_the_contract(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let user = app.new_user("edges").await;

    // `null` is not "leave as it is".
    for field in ["name", "password"] {
        app.patch(
            "/api/v1/users/me",
            Some(user.access()),
            &json!({ field: null }),
        )
        .await
        .expect_invalid_field(field);
    }
    let me = app
        .get("/api/v1/users/me", Some(user.access()))
        .await
        .expect(200);
    assert_eq!(me["name"], user.name);

    // Built-in roles stay.
    for role in ["admin", "customer", "merchant"] {
        app.delete(
            &format!("/api/v1/admin/roles/{role}"),
            Some(&admin.access),
            None,
        )
        .await
        .expect_error(403, "forbidden");
    }
    let roles = app
        .get("/api/v1/admin/roles?page_size=100", Some(&admin.access))
        .await
        .expect(200);
    let names: Vec<&str> = roles["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for role in ["admin", "customer", "merchant"] {
        assert!(names.contains(&role), "{role} missing from {names:?}");
    }

    // A query-string error says so.
    let resp = app.get("/api/v1/products?page=two", None).await;
    resp.expect_error(400, "invalid_request");
    let message = resp.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("query"), "{message}");
    assert!(!message.contains("JSON"), "{message}");
}

/// The value of `db_rows_purged_total{table="..."}` in `/metrics` (0 before the first run).
async fn purged(app: &Server, table: &str) -> f64 {
    metric(app, &format!("db_rows_purged_total{{table=\"{table}\"}}")).await
}

async fn expired_rows_are_purged_on_a_schedule(backend: Backend) {
    let app = App::start_with(backend, |b| {
        b.env("MALL__DATABASE__PURGE_EVERY_SECS", "1")
            .env("MALL__AUTH__REFRESH_TTL_SECS", "2")
    })
    .await;
    let user = app.new_user("purge").await;
    let spent = user.tokens.refresh.clone();
    let fresh = app.refresh(&spent).await;
    // Both refresh tokens (the spent one and its successor) expire after two seconds and are
    // deleted by the next run of the purge.
    let mut removed = 0.0;
    for _ in 0..100 {
        removed = purged(&app, "refresh_tokens").await;
        if removed >= 2.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(removed >= 2.0, "refresh tokens purged: {removed}");
    app.try_refresh(&fresh.refresh)
        .await
        .expect_error(401, "unauthenticated");
    // The metric is there for the other table too, even when nothing expired.
    assert_eq!(purged(&app, "idempotency_keys").await, 0.0);
}
