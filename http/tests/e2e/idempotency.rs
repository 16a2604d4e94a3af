//! `Idempotency-Key` on `POST /orders`, `POST /checkout`, `POST /payments` and
//! `POST /payments/{id}/confirm`, end to end: a retry gets the first answer again and does
//! nothing twice, another request under the same key is refused, keys belong to their user,
//! their format is checked, and concurrent retries never act twice.

use futures_util::future::join_all;
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::commerce::{
    CHECKOUT, DECLINED_CARD, GOOD_CARD, ORDERS, PAYMENTS, add_to_cart, address, all_orders,
    cancel_order, card, cart_lines, check_invariants, checked_order, get_cart, get_payment, id,
    open_payment, order_body, order_payments, place_order, product, stock,
};
use crate::harness::{App, Backend, Resp, Server};

both_backends!(
    replayed_orders_are_placed_once,
    a_key_reused_for_another_request_is_refused,
    keys_belong_to_their_user,
    keys_must_be_1_to_255_visible_ascii_characters,
    replayed_checkout_checks_out_once,
    replayed_payment_sessions_and_confirms,
    concurrent_requests_with_one_key_act_once,
);

const KEY: &str = "Idempotency-Key";
const REPLAYED: &str = "Idempotent-Replayed";

async fn post_keyed(app: &Server, token: &str, path: &str, key: &str, body: &Value) -> Resp {
    app.request(Method::POST, path)
        .bearer(token)
        .header(KEY, key)
        .json(body)
        .send()
        .await
}

#[track_caller]
fn assert_first(resp: &Resp) {
    assert_ne!(
        resp.header(REPLAYED).as_deref(),
        Some("true"),
        "{}: a first answer marked as replayed",
        resp.what
    );
}

/// Asserts that `again` replays `first`: same status, same body, `Idempotent-Replayed: true`.
#[track_caller]
fn assert_replay(first: &Resp, again: &Resp) {
    assert_eq!(
        again.status, first.status,
        "{}: the replay has another status: {}",
        again.what, again.text
    );
    assert_eq!(
        again.json(),
        first.json(),
        "{}: the replay has another body",
        again.what
    );
    assert_eq!(
        again.header(REPLAYED).as_deref(),
        Some("true"),
        "{}: no `Idempotent-Replayed: true` on the replay",
        again.what
    );
}

async fn replayed_orders_are_placed_once(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "once", 100, 10).await;
    let user = app.new_user("retrier").await;
    let token = user.access();
    let body = order_body(&[(&a, 2)]);

    let first = post_keyed(&app, token, ORDERS, "order-1", &body).await;
    let order = checked_order(first.expect(201));
    assert_first(&first);
    let again = post_keyed(&app, token, ORDERS, "order-1", &body).await;
    assert_replay(&first, &again);
    assert_eq!(stock(&app, &a).await, 8, "stock taken once");
    assert_eq!(all_orders(&app, token).await.len(), 1, "one order");

    // The first answer, even after the order has changed.
    cancel_order(&app, token, &id(&order)).await.expect(200);
    let later = post_keyed(&app, token, ORDERS, "order-1", &body).await;
    assert_replay(&first, &later);
    assert_eq!(later.json()["status"], "pending_payment");
    assert_eq!(stock(&app, &a).await, 10, "nothing taken again");
    assert_eq!(all_orders(&app, token).await.len(), 1);

    // Without a key, or with another key, the same body is a new order.
    let other = post_keyed(&app, token, ORDERS, "order-2", &body).await;
    assert_first(&other);
    assert_ne!(other.expect(201)["id"], order["id"]);
    let plain = app.post(ORDERS, Some(token), &body).await;
    assert_first(&plain);
    plain.expect(201);
    assert_eq!(all_orders(&app, token).await.len(), 3);
    assert_eq!(stock(&app, &a).await, 6);
    check_invariants(&app, &[(a, 10)], &[token.to_owned()]).await;
}

async fn a_key_reused_for_another_request_is_refused(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "reused", 100, 10).await;
    let user = app.new_user("reuser").await;
    let token = user.access();
    let body = order_body(&[(&a, 2)]);
    let first = post_keyed(&app, token, ORDERS, "k", &body).await;
    let order = first.expect(201);

    let mut noted = body.clone();
    noted["note"] = json!("please");
    let other_order = post_keyed(&app, token, ORDERS, "k", &order_body(&[(&a, 3)])).await;
    other_order.expect_error(422, "idempotency_key_reused");
    post_keyed(&app, token, ORDERS, "k", &noted)
        .await
        .expect_error(422, "idempotency_key_reused");
    // Another route under the same key is another request too.
    post_keyed(&app, token, PAYMENTS, "k", &json!({"order_id": id(&order)}))
        .await
        .expect_error(422, "idempotency_key_reused");
    assert_eq!(stock(&app, &a).await, 8);
    assert_eq!(all_orders(&app, token).await.len(), 1);
    assert!(order_payments(&app, token, &id(&order)).await.is_empty());

    // The first request still replays.
    let again = post_keyed(&app, token, ORDERS, "k", &body).await;
    assert_replay(&first, &again);
}

async fn keys_belong_to_their_user(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "shared key", 100, 10).await;
    let alice = app.new_user("alice").await;
    let bob = app.new_user("bob").await;
    let body = order_body(&[(&a, 1)]);

    let hers = post_keyed(&app, alice.access(), ORDERS, "same-key", &body).await;
    let hers_order = hers.expect(201);
    let his = post_keyed(&app, bob.access(), ORDERS, "same-key", &body).await;
    assert_first(&his);
    let his_order = his.expect(201);
    assert_ne!(his_order["id"], hers_order["id"]);
    assert_eq!(his_order["user_id"], bob.id.as_str());
    assert_eq!(hers_order["user_id"], alice.id.as_str());
    // With another body, Bob's key is still his own.
    post_keyed(&app, bob.access(), ORDERS, "other", &body)
        .await
        .expect(201);
    post_keyed(
        &app,
        alice.access(),
        ORDERS,
        "other",
        &order_body(&[(&a, 2)]),
    )
    .await
    .expect(201);
    assert_eq!(stock(&app, &a).await, 5);
    assert_eq!(all_orders(&app, alice.access()).await.len(), 2);
    assert_eq!(all_orders(&app, bob.access()).await.len(), 2);
}

async fn keys_must_be_1_to_255_visible_ascii_characters(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "keyed", 100, 10).await;
    let user = app.new_user("keyer").await;
    let token = user.access();
    let order = place_order(&app, token, &[(&a, 1)]).await;
    let payment = open_payment(&app, token, &id(&order)).await;
    add_to_cart(&app, token, &a, 1).await;
    let confirm_path = format!("{PAYMENTS}/{}/confirm", id(&payment));
    let routes: [(&str, Value); 4] = [
        (ORDERS, order_body(&[(&a, 1)])),
        (CHECKOUT, json!({"address": address()})),
        (PAYMENTS, json!({"order_id": id(&order)})),
        (&confirm_path, card(GOOD_CARD)),
    ];
    let long = "k".repeat(256);
    for (path, body) in &routes {
        for key in [long.as_str(), "a b", "", "tab\there"] {
            let resp = post_keyed(&app, token, path, key, body).await;
            assert_eq!(
                resp.status, 400,
                "POST {path} with key {key:?}: {} {}",
                resp.status, resp.text
            );
            resp.expect_error(400, "invalid_request");
        }
        // Non-ASCII bytes, sent raw.
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let resp = client
            .post(app.url(path))
            .header("Authorization", format!("Bearer {token}"))
            .header(KEY, HeaderValue::from_bytes("clé-ключ".as_bytes()).unwrap())
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
            .send()
            .await
            .expect("send");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 400, "POST {path} with a non-ASCII key: {text}");
        assert!(text.contains("invalid_request"), "{text}");
    }
    // Nothing happened.
    assert_eq!(stock(&app, &a).await, 9);
    assert_eq!(all_orders(&app, token).await.len(), 1);
    assert_eq!(get_payment(&app, token, &id(&payment)).await, payment);
    assert_eq!(cart_lines(&get_cart(&app, token).await), [(a.clone(), 1)]);

    // The longest key, and every visible character, are fine.
    let longest = "x".repeat(255);
    let body = order_body(&[(&a, 1)]);
    let first = post_keyed(&app, token, ORDERS, &longest, &body).await;
    first.expect(201);
    assert_replay(
        &first,
        &post_keyed(&app, token, ORDERS, &longest, &body).await,
    );
    let visible: String = (0x21u8..=0x7e).map(char::from).collect();
    let first = post_keyed(&app, token, ORDERS, &visible, &body).await;
    first.expect(201);
    assert_replay(
        &first,
        &post_keyed(&app, token, ORDERS, &visible, &body).await,
    );
    assert_eq!(stock(&app, &a).await, 7);
}

async fn replayed_checkout_checks_out_once(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "checkout once", 500, 10).await;
    let user = app.new_user("doubler").await;
    let token = user.access();
    add_to_cart(&app, token, &a, 2).await;
    let body = json!({"address": address(), "card": card(GOOD_CARD)});

    let first = post_keyed(&app, token, CHECKOUT, "checkout-1", &body).await;
    let created = first.expect(201);
    assert_first(&first);
    assert_eq!(created["order"]["status"], "paid");
    // The cart is empty now: a replay must not answer `cart_empty`, nor check out again.
    let again = post_keyed(&app, token, CHECKOUT, "checkout-1", &body).await;
    assert_replay(&first, &again);
    assert_eq!(stock(&app, &a).await, 8);
    assert_eq!(all_orders(&app, token).await.len(), 1);

    // With the cart filled again, the replay still does nothing.
    add_to_cart(&app, token, &a, 3).await;
    let later = post_keyed(&app, token, CHECKOUT, "checkout-1", &body).await;
    assert_replay(&first, &later);
    assert_eq!(cart_lines(&get_cart(&app, token).await), [(a.clone(), 3)]);
    assert_eq!(all_orders(&app, token).await.len(), 1);
    assert_eq!(stock(&app, &a).await, 8);
    let mut noted = body.clone();
    noted["note"] = json!("another");
    post_keyed(&app, token, CHECKOUT, "checkout-1", &noted)
        .await
        .expect_error(422, "idempotency_key_reused");
    // A new key checks the new cart out.
    post_keyed(&app, token, CHECKOUT, "checkout-2", &body)
        .await
        .expect(201);
    assert_eq!(get_cart(&app, token).await["items"], json!([]));
    assert_eq!(stock(&app, &a).await, 5);
    check_invariants(&app, &[(a, 10)], &[token.to_owned()]).await;
}

async fn replayed_payment_sessions_and_confirms(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "pay once", 900, 10).await;
    let user = app.new_user("payer").await;
    let token = user.access();
    let order = place_order(&app, token, &[(&a, 1)]).await;
    let open_body = json!({"order_id": id(&order)});

    let opened = post_keyed(&app, token, PAYMENTS, "open-1", &open_body).await;
    let payment = opened.expect(201);
    assert_first(&opened);
    assert_replay(
        &opened,
        &post_keyed(&app, token, PAYMENTS, "open-1", &open_body).await,
    );
    // Without a key: the session already pending.
    let plain = app
        .post(PAYMENTS, Some(token), &open_body)
        .await
        .expect(200);
    assert_eq!(plain["id"], payment["id"]);
    assert_eq!(order_payments(&app, token, &id(&order)).await.len(), 1);

    let path = format!("{PAYMENTS}/{}/confirm", id(&payment));
    // A decline, replayed: the gateway is not asked again.
    let declined = post_keyed(&app, token, &path, "confirm-1", &card(DECLINED_CARD)).await;
    declined.expect_error(402, "card_declined");
    let again = post_keyed(&app, token, &path, "confirm-1", &card(DECLINED_CARD)).await;
    assert_replay(&declined, &again);
    assert_eq!(get_payment(&app, token, &id(&payment)).await["attempts"], 1);

    // A success, replayed: 200 again, not 409.
    let paid = post_keyed(&app, token, &path, "confirm-2", &card(GOOD_CARD)).await;
    assert_eq!(paid.expect(200)["status"], "succeeded");
    assert_first(&paid);
    let again = post_keyed(&app, token, &path, "confirm-2", &card(GOOD_CARD)).await;
    assert_replay(&paid, &again);
    post_keyed(&app, token, &path, "confirm-2", &card("5555555555554444"))
        .await
        .expect_error(422, "idempotency_key_reused");
    post_keyed(&app, token, &path, "confirm-3", &card(GOOD_CARD))
        .await
        .expect_error(409, "invalid_state");
    let p = get_payment(&app, token, &id(&payment)).await;
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["card_last4"], "4242");
    check_invariants(&app, &[(a, 10)], &[token.to_owned()]).await;
}

/// Classifies answers to concurrent requests under one key: exactly one first answer of
/// `status`, every other one its replay or `409 idempotency_key_in_use`.
#[track_caller]
fn one_first_answer(answers: &[Resp], status: u16) -> Value {
    let mut firsts = Vec::new();
    let mut bodies = Vec::new();
    for answer in answers {
        if answer.status == 409 && answer.text.contains("idempotency_key_in_use") {
            answer.expect_error(409, "idempotency_key_in_use");
            continue;
        }
        assert_eq!(
            answer.status, status,
            "{}: neither the answer nor `idempotency_key_in_use`: {}",
            answer.what, answer.text
        );
        if answer.header(REPLAYED).as_deref() != Some("true") {
            firsts.push(answer.json());
        }
        bodies.push(answer.json());
    }
    assert_eq!(firsts.len(), 1, "exactly one request acted: {firsts:?}");
    for body in &bodies {
        assert_eq!(body, &firsts[0], "a replay differs from the first answer");
    }
    firsts.remove(0)
}

async fn concurrent_requests_with_one_key_act_once(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "contended", 100, 50).await;
    let user = app.new_user("impatient").await;
    let token = user.access();

    // Orders.
    let body = order_body(&[(&a, 3)]);
    let answers = join_all((0..10).map(|_| post_keyed(&app, token, ORDERS, "burst", &body))).await;
    let order = one_first_answer(&answers, 201);
    assert_eq!(all_orders(&app, token).await.len(), 1, "never two orders");
    assert_eq!(stock(&app, &a).await, 47);

    // Payment sessions.
    let open_body = json!({"order_id": id(&order)});
    let answers =
        join_all((0..8).map(|_| post_keyed(&app, token, PAYMENTS, "open", &open_body))).await;
    let payment = one_first_answer(&answers, 201);
    assert_eq!(order_payments(&app, token, &id(&order)).await.len(), 1);

    // Confirms.
    let path = format!("{PAYMENTS}/{}/confirm", id(&payment));
    let c = card(GOOD_CARD);
    let answers = join_all((0..8).map(|_| post_keyed(&app, token, &path, "pay", &c))).await;
    let paid = one_first_answer(&answers, 200);
    assert_eq!(paid["status"], "succeeded");

    // Checkouts.
    add_to_cart(&app, token, &a, 4).await;
    let body = json!({"address": address(), "card": card(GOOD_CARD)});
    let answers = join_all((0..8).map(|_| post_keyed(&app, token, CHECKOUT, "co", &body))).await;
    one_first_answer(&answers, 201);
    assert_eq!(all_orders(&app, token).await.len(), 2, "one checkout");
    assert_eq!(stock(&app, &a).await, 43);
    check_invariants(&app, &[(a, 50)], &[token.to_owned()]).await;
}
