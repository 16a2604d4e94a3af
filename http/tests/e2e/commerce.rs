//! Shared helpers for the order, checkout and payment tests: products, addresses, cards, shape
//! checks of orders and payments, restarting a server on its database, and the invariants every
//! test of concurrency re-checks through the API afterwards.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::harness::{App, Resp, Server, ServerBuilder, assert_keys, assert_rfc3339};

pub const ORDERS: &str = "/api/v1/orders";
pub const PAYMENTS: &str = "/api/v1/payments";
pub const CHECKOUT: &str = "/api/v1/checkout";

pub const ORDER_FIELDS: &[&str] = &[
    "id",
    "user_id",
    "status",
    "items",
    "total_cents",
    "address",
    "note",
    "created_at",
    "updated_at",
    "expires_at",
    "paid_at",
    "cancelled_at",
    "cancel_reason",
];
pub const ORDER_LINE_FIELDS: &[&str] = &[
    "product_id",
    "name",
    "unit_price_cents",
    "quantity",
    "line_total_cents",
];
pub const PAYMENT_FIELDS: &[&str] = &[
    "id",
    "order_id",
    "amount_cents",
    "status",
    "card_last4",
    "last_error",
    "attempts",
    "created_at",
    "expires_at",
    "succeeded_at",
    "cancelled_at",
];
const ADDRESS_REQUIRED: &[&str] = &["name", "phone", "line1", "city", "postal_code", "country"];

/// The test card every gateway accepts.
pub const GOOD_CARD: &str = "4242424242424242";
/// The card the simulated gateway declines.
pub const DECLINED_CARD: &str = "4000000000000002";

/// A complete shipping address (with `line2`).
pub fn address() -> Value {
    json!({
        "name": "Ada Lovelace",
        "phone": "+44 20 7946 0000",
        "line1": "12 St James's Square",
        "line2": "Flat 3",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
    })
}

/// A card with this number, expiring 12/2099, cvc 123.
pub fn card(number: &str) -> Value {
    json!({"number": number, "exp_month": 12, "exp_year": 2099, "cvc": "123"})
}

/// `prefix` padded with zeros to `len - 1` digits, plus the Luhn check digit.
pub fn luhn(prefix: &str, len: usize) -> String {
    assert!(prefix.len() < len, "prefix too long for {len} digits");
    let mut payload = prefix.to_owned();
    while payload.len() < len - 1 {
        payload.push('0');
    }
    let sum: u32 = payload
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    let check = (10 - sum % 10) % 10;
    format!("{payload}{check}")
}

/// Whether `number` (all digits) passes the Luhn check.
pub fn luhn_ok(number: &str) -> bool {
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Creates a product as `token` (admin or merchant); returns its id.
pub async fn product(
    app: &Server,
    token: &str,
    name: &str,
    price_cents: i64,
    stock: i64,
) -> String {
    let created = app
        .post(
            "/api/v1/products",
            Some(token),
            &json!({
                "name": name,
                "description": format!("{name}, for the order tests"),
                "price_cents": price_cents,
                "stock": stock,
                "categories": ["order-tests"],
            }),
        )
        .await
        .expect(201);
    created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("product id is not a string: {created}"))
        .to_owned()
}

/// The current stock of a product (read anonymously).
pub async fn stock(app: &Server, product_id: &str) -> i64 {
    let p = app
        .get(&format!("/api/v1/products/{product_id}"), None)
        .await
        .expect(200);
    p["stock"]
        .as_i64()
        .unwrap_or_else(|| panic!("product stock is not an integer: {p}"))
}

/// Sets a product's stock or price as `token`.
pub async fn patch_product(app: &Server, token: &str, product_id: &str, body: Value) {
    app.patch(
        &format!("/api/v1/products/{product_id}"),
        Some(token),
        &body,
    )
    .await
    .expect(200);
}

pub fn id(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("`id` is not a string: {value}"))
        .to_owned()
}

pub fn time_of(value: &Value, what: &str) -> OffsetDateTime {
    assert_rfc3339(value, what)
}

/// Seconds (fractional) from `a` to `b`.
pub fn secs_between(a: OffsetDateTime, b: OffsetDateTime) -> f64 {
    (b - a).as_seconds_f64()
}

/// Sleeps until the wall clock has passed `t` by `margin`.
pub async fn sleep_until(t: OffsetDateTime, margin: Duration) {
    let left = t - OffsetDateTime::now_utc();
    let left = if left.is_positive() {
        Duration::from_secs_f64(left.as_seconds_f64())
    } else {
        Duration::ZERO
    };
    tokio::time::sleep(left + margin).await;
}

#[track_caller]
fn null_or_time(value: &Value, what: &str) {
    if !value.is_null() {
        assert_rfc3339(value, what);
    }
}

/// Checks the shape of an address in an answer.
#[track_caller]
pub fn checked_address(address: &Value) {
    let obj = address
        .as_object()
        .unwrap_or_else(|| panic!("address is not an object: {address}"));
    for key in obj.keys() {
        assert!(
            ADDRESS_REQUIRED.contains(&key.as_str()) || key == "line2",
            "address has an unexpected field {key:?}: {address}"
        );
    }
    for key in ADDRESS_REQUIRED {
        assert!(
            obj.get(*key).is_some_and(Value::is_string),
            "address.{key} is not a string: {address}"
        );
    }
    if let Some(line2) = obj.get("line2") {
        assert!(
            line2.is_string() || line2.is_null(),
            "address.line2: {address}"
        );
    }
}

/// Checks the shape and arithmetic of an order, and that its times agree with its status.
#[track_caller]
pub fn checked_order(order: Value) -> Value {
    assert_keys(&order, ORDER_FIELDS, "order");
    assert!(order["id"].is_string(), "order.id is not a string: {order}");
    assert!(
        order["user_id"].is_string(),
        "order.user_id is not a string: {order}"
    );
    let items = order["items"]
        .as_array()
        .unwrap_or_else(|| panic!("order.items is not an array: {order}"));
    assert!(!items.is_empty(), "an order without lines: {order}");
    let mut total = 0;
    for line in items {
        assert_keys(line, ORDER_LINE_FIELDS, "order line");
        assert!(line["product_id"].is_string(), "line.product_id: {line}");
        assert!(line["name"].is_string(), "line.name: {line}");
        let price = line["unit_price_cents"]
            .as_i64()
            .unwrap_or_else(|| panic!("line.unit_price_cents: {line}"));
        let quantity = line["quantity"]
            .as_i64()
            .unwrap_or_else(|| panic!("line.quantity: {line}"));
        assert!(price >= 0, "negative price: {line}");
        assert!((1..=999).contains(&quantity), "quantity: {line}");
        assert_eq!(
            line["line_total_cents"].as_i64(),
            Some(price * quantity),
            "line_total_cents is price × quantity: {line}"
        );
        total += price * quantity;
    }
    assert_eq!(
        order["total_cents"].as_i64(),
        Some(total),
        "total_cents sums the lines: {order}"
    );
    checked_address(&order["address"]);
    assert!(
        order["note"].is_null() || order["note"].is_string(),
        "order.note: {order}"
    );
    assert_rfc3339(&order["created_at"], "order.created_at");
    assert_rfc3339(&order["updated_at"], "order.updated_at");
    assert_rfc3339(&order["expires_at"], "order.expires_at");
    null_or_time(&order["paid_at"], "order.paid_at");
    null_or_time(&order["cancelled_at"], "order.cancelled_at");
    match order["status"].as_str() {
        Some("pending_payment") => {
            assert!(order["paid_at"].is_null(), "pending but paid_at: {order}");
            assert!(
                order["cancelled_at"].is_null() && order["cancel_reason"].is_null(),
                "pending but cancelled: {order}"
            );
        }
        Some("paid") => {
            assert!(
                order["paid_at"].is_string(),
                "paid without paid_at: {order}"
            );
            assert!(
                order["cancelled_at"].is_null() && order["cancel_reason"].is_null(),
                "both paid and cancelled: {order}"
            );
        }
        Some("cancelled") => {
            assert!(
                order["cancelled_at"].is_string(),
                "cancelled without cancelled_at: {order}"
            );
            assert!(
                ["user", "expired", "account_closed", "admin"]
                    .iter()
                    .any(|r| order["cancel_reason"] == *r),
                "cancel_reason: {order}"
            );
            assert!(
                order["paid_at"].is_null(),
                "both paid and cancelled: {order}"
            );
        }
        _ => panic!("order.status: {order}"),
    }
    order
}

/// Checks the shape of a payment, and that its times agree with its status.
#[track_caller]
pub fn checked_payment(payment: Value) -> Value {
    assert_keys(&payment, PAYMENT_FIELDS, "payment");
    assert!(payment["id"].is_string(), "payment.id: {payment}");
    assert!(
        payment["order_id"].is_string(),
        "payment.order_id: {payment}"
    );
    assert!(
        payment["amount_cents"].as_i64().is_some_and(|a| a >= 0),
        "payment.amount_cents: {payment}"
    );
    assert!(
        payment["attempts"].as_i64().is_some_and(|a| a >= 0),
        "payment.attempts: {payment}"
    );
    assert!(
        payment["last_error"].is_null() || payment["last_error"].is_string(),
        "payment.last_error: {payment}"
    );
    match &payment["card_last4"] {
        Value::Null => {}
        Value::String(s) => assert!(
            s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()),
            "card_last4 is not 4 digits: {payment}"
        ),
        _ => panic!("payment.card_last4: {payment}"),
    }
    assert_rfc3339(&payment["created_at"], "payment.created_at");
    assert_rfc3339(&payment["expires_at"], "payment.expires_at");
    null_or_time(&payment["succeeded_at"], "payment.succeeded_at");
    null_or_time(&payment["cancelled_at"], "payment.cancelled_at");
    match payment["status"].as_str() {
        Some("pending") => assert!(
            payment["succeeded_at"].is_null() && payment["cancelled_at"].is_null(),
            "pending but ended: {payment}"
        ),
        Some("succeeded") => {
            assert!(
                payment["succeeded_at"].is_string(),
                "succeeded without succeeded_at: {payment}"
            );
            assert!(
                payment["card_last4"].is_string(),
                "succeeded without card_last4: {payment}"
            );
            assert!(
                payment["cancelled_at"].is_null(),
                "succeeded and cancelled: {payment}"
            );
        }
        Some("cancelled") => {
            assert!(
                payment["cancelled_at"].is_string(),
                "cancelled without cancelled_at: {payment}"
            );
            assert!(
                payment["succeeded_at"].is_null(),
                "cancelled and succeeded: {payment}"
            );
        }
        Some("expired") => assert!(
            payment["succeeded_at"].is_null(),
            "expired and succeeded: {payment}"
        ),
        _ => panic!("payment.status: {payment}"),
    }
    payment
}

/// Checks a page `{items, page, page_size, total}`; returns its items.
#[track_caller]
pub fn page_items(page: &Value, number: i64, size: i64) -> Vec<Value> {
    assert_keys(page, &["items", "page", "page_size", "total"], "page");
    assert_eq!(page["page"], number, "page number: {page}");
    assert_eq!(page["page_size"], size, "page size: {page}");
    assert!(page["total"].as_i64().is_some(), "page total: {page}");
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("page items: {page}"))
        .clone()
}

/// The ids of a list of objects, in order.
pub fn ids(values: &[Value]) -> Vec<String> {
    values.iter().map(id).collect()
}

/// `{items: [{product_id, quantity}], address}`.
pub fn order_body(lines: &[(&str, i64)]) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .map(|(p, q)| json!({"product_id": p, "quantity": q}))
        .collect();
    json!({"items": items, "address": address()})
}

pub async fn try_order(app: &Server, token: &str, lines: &[(&str, i64)]) -> Resp {
    app.post(ORDERS, Some(token), &order_body(lines)).await
}

/// Places an order, asserting 201; returns it.
pub async fn place_order(app: &Server, token: &str, lines: &[(&str, i64)]) -> Value {
    checked_order(try_order(app, token, lines).await.expect(201))
}

pub fn order_path(order_id: &str) -> String {
    format!("{ORDERS}/{order_id}")
}

pub fn payment_path(payment_id: &str) -> String {
    format!("{PAYMENTS}/{payment_id}")
}

pub async fn get_order(app: &Server, token: &str, order_id: &str) -> Value {
    checked_order(
        app.get(&order_path(order_id), Some(token))
            .await
            .expect(200),
    )
}

pub async fn get_payment(app: &Server, token: &str, payment_id: &str) -> Value {
    checked_payment(
        app.get(&payment_path(payment_id), Some(token))
            .await
            .expect(200),
    )
}

/// Every payment session of an order (`GET /orders/{id}/payments`, one page of 100).
pub async fn order_payments(app: &Server, token: &str, order_id: &str) -> Vec<Value> {
    let page = app
        .get(
            &format!("{}/payments?page_size=100", order_path(order_id)),
            Some(token),
        )
        .await
        .expect(200);
    let items = page_items(&page, 1, 100);
    assert_eq!(page["total"], items.len(), "total of {page}");
    items.into_iter().map(checked_payment).collect()
}

/// Every order of the caller, newest first (all pages).
pub async fn all_orders(app: &Server, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for number in 1.. {
        let page = app
            .get(
                &format!("{ORDERS}?page={number}&page_size=100"),
                Some(token),
            )
            .await
            .expect(200);
        let items = page_items(&page, number, 100);
        let total = page["total"].as_u64().unwrap() as usize;
        let empty = items.is_empty();
        all.extend(items.into_iter().map(checked_order));
        if empty || all.len() >= total {
            assert_eq!(all.len(), total, "orders listed vs total");
            break;
        }
    }
    all
}

/// `POST /payments {order_id}`, returning the raw response.
pub async fn try_open_payment(app: &Server, token: &str, order_id: &str) -> Resp {
    app.post(PAYMENTS, Some(token), &json!({"order_id": order_id}))
        .await
}

/// Opens a payment session (201); returns it.
pub async fn open_payment(app: &Server, token: &str, order_id: &str) -> Value {
    checked_payment(try_open_payment(app, token, order_id).await.expect(201))
}

/// `POST /payments/{id}/confirm` with `card`.
pub async fn confirm(app: &Server, token: &str, payment_id: &str, card: &Value) -> Resp {
    app.post(
        &format!("{}/confirm", payment_path(payment_id)),
        Some(token),
        card,
    )
    .await
}

/// `POST <path>` with no body and no content type.
pub async fn post_empty(app: &Server, token: &str, path: &str) -> Resp {
    app.request(Method::POST, path).bearer(token).send().await
}

pub async fn cancel_order(app: &Server, token: &str, order_id: &str) -> Resp {
    post_empty(app, token, &format!("{}/cancel", order_path(order_id))).await
}

pub async fn cancel_payment(app: &Server, token: &str, payment_id: &str) -> Resp {
    post_empty(app, token, &format!("{}/cancel", payment_path(payment_id))).await
}

/// Adds a line to the caller's cart.
pub async fn add_to_cart(app: &Server, token: &str, product_id: &str, quantity: i64) -> Value {
    app.post(
        "/api/v1/cart/items",
        Some(token),
        &json!({"product_id": product_id, "quantity": quantity}),
    )
    .await
    .expect(200)
}

pub async fn get_cart(app: &Server, token: &str) -> Value {
    app.get("/api/v1/cart", Some(token)).await.expect(200)
}

/// `(product_id, quantity)` of each cart line, sorted.
pub fn cart_lines(cart: &Value) -> Vec<(String, i64)> {
    let mut lines: Vec<(String, i64)> = cart["items"]
        .as_array()
        .unwrap_or_else(|| panic!("cart.items: {cart}"))
        .iter()
        .map(|l| {
            (
                l["product_id"].as_str().unwrap().to_owned(),
                l["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    lines.sort();
    lines
}

/// `(product_id, quantity)` of each order line, sorted.
pub fn order_lines(order: &Value) -> Vec<(String, i64)> {
    let mut lines: Vec<(String, i64)> = order["items"]
        .as_array()
        .unwrap_or_else(|| panic!("order.items: {order}"))
        .iter()
        .map(|l| {
            (
                l["product_id"].as_str().unwrap().to_owned(),
                l["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    lines.sort();
    lines
}

/// Checks, through the API, what must hold whatever happened: for each product (id, initial
/// stock), the stock is not negative and the initial stock equals the current stock plus what
/// the `pending_payment` and `paid` orders of `buyers` (access tokens) hold; each paid order
/// has exactly one succeeded payment, of its total; no other order has one; no order has two
/// pending sessions, and a cancelled order none. Returns every order seen.
pub async fn check_invariants(
    app: &Server,
    products: &[(String, i64)],
    buyers: &[String],
) -> Vec<Value> {
    let mut held: HashMap<String, i64> = HashMap::new();
    let mut seen = Vec::new();
    for token in buyers {
        for order in all_orders(app, token).await {
            let status = order["status"].as_str().unwrap().to_owned();
            if status == "pending_payment" || status == "paid" {
                for (product_id, quantity) in order_lines(&order) {
                    *held.entry(product_id).or_default() += quantity;
                }
            }
            let payments = order_payments(app, token, order["id"].as_str().unwrap()).await;
            for p in &payments {
                assert_eq!(p["order_id"], order["id"], "payment of another order: {p}");
            }
            let succeeded: Vec<&Value> = payments
                .iter()
                .filter(|p| p["status"] == "succeeded")
                .collect();
            let pending = payments.iter().filter(|p| p["status"] == "pending").count();
            if status == "paid" {
                assert_eq!(
                    succeeded.len(),
                    1,
                    "a paid order has exactly one succeeded payment: {order}\n{payments:?}"
                );
                assert_eq!(
                    succeeded[0]["amount_cents"], order["total_cents"],
                    "the charge is the order's total: {order}\n{payments:?}"
                );
            } else {
                assert!(
                    succeeded.is_empty(),
                    "a {status} order has a succeeded payment: {order}\n{payments:?}"
                );
            }
            assert!(
                pending <= 1,
                "two pending sessions for one order: {payments:?}"
            );
            if status == "cancelled" {
                assert_eq!(
                    pending, 0,
                    "a cancelled order kept a pending payment: {order}\n{payments:?}"
                );
            }
            seen.push(order);
        }
    }
    for (product_id, initial) in products {
        let now = stock(app, product_id).await;
        let held = held.get(product_id).copied().unwrap_or(0);
        assert!(now >= 0, "stock of {product_id} went negative: {now}");
        assert_eq!(
            *initial,
            now + held,
            "product {product_id}: initial stock {initial} != stock {now} + held by orders {held}"
        );
    }
    seen
}

/// Kills the server with SIGKILL (`Child::kill`) and reaps it; the database stays.
pub fn kill(app: &mut App) {
    app.server.process.kill();
}

/// Starts a new server on the database of `app` (whose server was killed) with the same JWT
/// secret and admin password, so that tokens stay valid; configured further by `configure`.
pub async fn restart(app: &mut App, configure: impl FnOnce(ServerBuilder) -> ServerBuilder) {
    app.server.process.kill();
    let secret = app.server.process.secret.clone();
    let admin_password = app.server.process.admin_password.clone();
    let builder = ServerBuilder::new(app.db.url())
        .secret(&secret)
        .env("MALL__BOOTSTRAP__ADMIN_PASSWORD", &admin_password);
    app.server = configure(builder).start().await;
}

/// `n` new customers, registered and logged in concurrently.
pub async fn customers(app: &Server, tag: &str, n: usize) -> Vec<crate::harness::User> {
    let tags: Vec<String> = (0..n).map(|i| format!("{tag}{i}")).collect();
    futures_util::future::join_all(tags.iter().map(|t| app.new_user(t))).await
}

/// The access tokens of `users`.
pub fn tokens(users: &[crate::harness::User]) -> Vec<String> {
    users.iter().map(|u| u.access().to_owned()).collect()
}
