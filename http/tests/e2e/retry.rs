//! A request that timed out and is retried with its `Idempotency-Key` never places twice
//! (PostgreSQL: a second connection holds the product's row locked so the first attempt times
//! out while its placement waits; the lock is then released and the request retried).
//!
//! The first attempt's placement may still run once the lock is gone; whichever way the race
//! goes (the released key makes it roll back, or it binds the key before the retry looks), the
//! outcome is one order, the stock taken once, and the retry answering with that order.

use std::time::Duration;

use mall_db::testing::OpenTransaction;
use serde_json::{Value, json};

use crate::commerce::{
    CHECKOUT, GOOD_CARD, ORDERS, add_to_cart, address, all_orders, card, get_cart, id, order_body,
    product, stock,
};
use crate::harness::{App, Backend, Resp, Server};

/// How long a request may wait for the actors and the placement desk in these tests.
const CALL_TIMEOUT_MS: &str = "1500";
/// Attempts at the retry while the first attempt's record is still in progress (409).
const RETRIES: usize = 100;

async fn app() -> App {
    App::start_with(Backend::Postgres, |b| {
        b.env("MALL__ACTORS__CALL_TIMEOUT_MS", CALL_TIMEOUT_MS)
    })
    .await
}

/// Locks `product`'s row from another connection until committed.
async fn lock_product(app: &App, product: &str) -> OpenTransaction {
    OpenTransaction::begin(
        app.db.url(),
        &format!("SELECT id FROM products WHERE id = {product} FOR UPDATE"),
    )
    .await
    .expect("lock the product row")
}

async fn post_with_key(app: &Server, path: &str, token: &str, key: &str, body: &Value) -> Resp {
    app.request(reqwest::Method::POST, path)
        .bearer(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
}

/// Retries until the answer is not "still in progress" (409 `idempotency_key_in_use`), which
/// the contract allows while the first attempt may still be running.
async fn retry(app: &Server, path: &str, token: &str, key: &str, body: &Value) -> Resp {
    for _ in 0..RETRIES {
        let resp = post_with_key(app, path, token, key, body).await;
        if resp.status != 409 || !resp.text.contains("idempotency_key_in_use") {
            return resp;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path}: still in progress after {RETRIES} retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_retried_after_a_timeout_is_placed_once() {
    let app = app().await;
    let admin = app.admin().await;
    let lamp = product(&app, &admin.access, "lamp", 700, 10).await;
    let user = app.new_user("retry").await;
    let body = order_body(&[(&lamp, 2)]);
    let key = "order-retry-1";

    let lock = lock_product(&app, &lamp).await;
    let first = post_with_key(&app, ORDERS, user.access(), key, &body).await;
    first.expect_error(503, "unavailable");
    lock.commit().await.expect("release the lock");

    let again = retry(&app, ORDERS, user.access(), key, &body).await;
    let order = again.expect(201);
    let orders = all_orders(&app, user.access()).await;
    assert_eq!(
        orders.len(),
        1,
        "one order, whatever was retried: {orders:?}"
    );
    assert_eq!(id(&orders[0]), id(&order));
    assert_eq!(stock(&app, &lamp).await, 8, "stock taken once");
    // And from now on the key replays that order.
    let replay = post_with_key(&app, ORDERS, user.access(), key, &body).await;
    assert_eq!(replay.expect(201)["id"], order["id"]);
    assert_eq!(
        replay.header("idempotent-replayed").as_deref(),
        Some("true")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_retried_after_a_timeout_is_placed_once_and_never_cart_empty() {
    let app = app().await;
    let admin = app.admin().await;
    let kettle = product(&app, &admin.access, "kettle", 2500, 10).await;
    let user = app.new_user("retry").await;
    add_to_cart(&app, user.access(), &kettle, 3).await;
    let body = json!({"address": address(), "card": card(GOOD_CARD)});
    let key = "checkout-retry-1";

    let lock = lock_product(&app, &kettle).await;
    let first = post_with_key(&app, CHECKOUT, user.access(), key, &body).await;
    first.expect_error(503, "unavailable");
    lock.commit().await.expect("release the lock");

    let again = retry(&app, CHECKOUT, user.access(), key, &body).await;
    let placed = again.expect(201);
    assert_eq!(placed["order"]["status"], "paid", "{placed}");
    assert_eq!(placed["payment"]["status"], "succeeded", "{placed}");
    let orders = all_orders(&app, user.access()).await;
    assert_eq!(
        orders.len(),
        1,
        "one order, whatever was retried: {orders:?}"
    );
    assert_eq!(id(&orders[0]), id(&placed["order"]));
    assert_eq!(stock(&app, &kettle).await, 7, "stock taken once");
    let cart = get_cart(&app, user.access()).await;
    assert_eq!(cart["items"], json!([]), "{cart}");
}
