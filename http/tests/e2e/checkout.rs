//! Checkout (`POST /api/v1/checkout`), end to end: the cart becomes an order, a payment session is
//! opened and, with a card, confirmed; the cart is emptied only once the order exists; an invalid
//! card, an empty cart or a short line creates nothing.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::commerce::{
    CHECKOUT, DECLINED_CARD, GOOD_CARD, add_to_cart, address, all_orders, card, cart_lines,
    check_invariants, checked_order, checked_payment, confirm, customers, get_cart, get_order,
    get_payment, id, order_lines, order_payments, patch_product, product, stock, time_of, tokens,
    try_open_payment,
};
use crate::harness::{App, Backend, Resp, Server, assert_keys};

both_backends!(
    checkout_with_a_good_card,
    checkout_without_a_card_then_pay,
    checkout_with_a_declined_card,
    an_invalid_card_creates_nothing,
    an_empty_cart_cannot_be_checked_out,
    a_short_cart_stays_as_it_was,
    checkout_bodies_are_validated,
    concurrent_checkouts_never_oversell,
    a_double_submitted_checkout_makes_one_order,
    lines_added_during_a_checkout_are_not_lost,
);

/// Checks a 201 checkout answer `{order, payment}`; returns both.
#[track_caller]
fn checked_checkout(resp: &Resp) -> (Value, Value) {
    let body = resp.expect(201);
    assert_keys(&body, &["order", "payment"], "checkout answer");
    let order = checked_order(body["order"].clone());
    let payment = checked_payment(body["payment"].clone());
    assert_eq!(
        payment["order_id"], order["id"],
        "the payment is the order's"
    );
    assert_eq!(
        payment["amount_cents"], order["total_cents"],
        "the payment is of the order's total"
    );
    (order, payment)
}

async fn checkout(app: &Server, token: &str, body: &Value) -> Resp {
    app.post(CHECKOUT, Some(token), body).await
}

async fn checkout_with_a_good_card(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "kettle", 2500, 10).await;
    let b = product(&app, &admin.access, "filter", 150, 10).await;
    let user = app.new_user("shopper").await;
    let token = user.access();
    add_to_cart(&app, token, &a, 2).await;
    add_to_cart(&app, token, &b, 4).await;
    // Priced at checkout time, at the current price.
    patch_product(&app, &admin.access, &b, json!({"price_cents": 175})).await;
    let cart = get_cart(&app, token).await;

    let resp = checkout(
        &app,
        token,
        &json!({"address": address(), "note": "gift wrap", "card": card(GOOD_CARD)}),
    )
    .await;
    let (order, payment) = checked_checkout(&resp);
    assert_eq!(order["user_id"], user.id.as_str());
    assert_eq!(order["status"], "paid");
    assert!(order["paid_at"].is_string());
    assert_eq!(order["note"], "gift wrap");
    assert_eq!(order["address"], address());
    assert_eq!(order_lines(&order), cart_lines(&cart), "the cart's lines");
    assert_eq!(order["total_cents"], 2 * 2500 + 4 * 175);
    assert_eq!(order["total_cents"], cart["total_cents"]);
    for line in order["items"].as_array().unwrap() {
        let want = if line["product_id"] == a.as_str() {
            (2500, "kettle")
        } else {
            (175, "filter")
        };
        assert_eq!(line["unit_price_cents"], want.0, "{line}");
        assert_eq!(line["name"], want.1, "{line}");
    }
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["card_last4"], "4242");
    assert!(payment["attempts"].as_i64().unwrap() >= 1, "{payment}");
    assert!(!resp.text.contains(GOOD_CARD), "the card number is echoed");

    assert_eq!(
        get_cart(&app, token).await["items"],
        json!([]),
        "cart emptied"
    );
    assert_eq!(stock(&app, &a).await, 8);
    assert_eq!(stock(&app, &b).await, 6);
    assert_eq!(get_order(&app, token, &id(&order)).await, order);
    assert_eq!(get_payment(&app, token, &id(&payment)).await, payment);
    assert_eq!(
        order_payments(&app, token, &id(&order)).await,
        std::slice::from_ref(&payment)
    );
    assert_eq!(all_orders(&app, token).await, std::slice::from_ref(&order));
    // Paid: no further session.
    try_open_payment(&app, token, &id(&order))
        .await
        .expect_error(409, "invalid_state");
    check_invariants(&app, &[(a, 10), (b, 10)], &[token.to_owned()]).await;
}

async fn checkout_without_a_card_then_pay(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "lamp", 4000, 3).await;
    let user = app.new_user("later").await;
    let token = user.access();
    add_to_cart(&app, token, &a, 3).await;

    let (order, payment) =
        checked_checkout(&checkout(&app, token, &json!({"address": address()})).await);
    assert_eq!(order["status"], "pending_payment");
    assert_eq!(order["note"], Value::Null);
    assert_eq!(payment["status"], "pending");
    assert_eq!(payment["attempts"], 0);
    assert_eq!(payment["card_last4"], Value::Null);
    assert_eq!(payment["last_error"], Value::Null);
    assert_eq!(payment["amount_cents"], 12000);
    assert_eq!(get_cart(&app, token).await["items"], json!([]));
    assert_eq!(stock(&app, &a).await, 0);

    // The session is the order's pending one.
    let again = try_open_payment(&app, token, &id(&order)).await.expect(200);
    assert_eq!(again["id"], payment["id"]);
    let paid = confirm(&app, token, &id(&payment), &card(GOOD_CARD))
        .await
        .expect(200);
    assert_eq!(paid["status"], "succeeded");
    let order = get_order(&app, token, &id(&order)).await;
    assert_eq!(order["status"], "paid");
    check_invariants(&app, &[(a, 3)], &[token.to_owned()]).await;
}

async fn checkout_with_a_declined_card(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "chair", 9900, 5).await;
    let user = app.new_user("declined").await;
    let token = user.access();
    add_to_cart(&app, token, &a, 1).await;

    let resp = checkout(
        &app,
        token,
        &json!({"address": address(), "card": card(DECLINED_CARD)}),
    )
    .await;
    let (order, payment) = checked_checkout(&resp);
    assert_eq!(
        order["status"], "pending_payment",
        "the order exists, unpaid"
    );
    assert_eq!(payment["status"], "pending");
    assert_eq!(payment["last_error"], "card_declined");
    assert_eq!(payment["attempts"], 1);
    assert_eq!(
        get_cart(&app, token).await["items"],
        json!([]),
        "the cart is emptied: the order exists"
    );
    assert_eq!(stock(&app, &a).await, 4);
    assert_eq!(get_payment(&app, token, &id(&payment)).await, payment);

    // Another card pays it.
    let paid = confirm(&app, token, &id(&payment), &card(GOOD_CARD))
        .await
        .expect(200);
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(paid["card_last4"], "4242");
    assert_eq!(get_order(&app, token, &id(&order)).await["status"], "paid");
    check_invariants(&app, &[(a, 5)], &[token.to_owned()]).await;
}

async fn an_invalid_card_creates_nothing(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "desk", 30000, 4).await;
    let b = product(&app, &admin.access, "mat", 800, 4).await;
    let user = app.new_user("invalid").await;
    let token = user.access();
    add_to_cart(&app, token, &a, 1).await;
    let cart = add_to_cart(&app, token, &b, 2).await;

    let mut cards = vec![
        card("4242424242424241"),
        card("4242 4242 4242 4242"),
        card("424242424242"),
        card("42424242424242424242"),
        json!({"number": GOOD_CARD, "exp_month": 12, "exp_year": 2020, "cvc": "123"}),
        json!({"number": GOOD_CARD, "exp_month": 13, "exp_year": 2099, "cvc": "123"}),
        json!({"number": GOOD_CARD, "exp_month": 12, "exp_year": 2099, "cvc": "12"}),
        json!({"number": GOOD_CARD, "exp_month": 12, "exp_year": 2099, "cvc": "12345"}),
    ];
    // A declined card that is also expired is refused before anything is created.
    cards.push(json!({"number": DECLINED_CARD, "exp_month": 1, "exp_year": 2020, "cvc": "123"}));
    for c in &cards {
        checkout(&app, token, &json!({"address": address(), "card": c}))
            .await
            .expect_error(400, "invalid_card");
    }
    assert_eq!(get_cart(&app, token).await, cart, "the cart is intact");
    assert_eq!(stock(&app, &a).await, 4);
    assert_eq!(stock(&app, &b).await, 4);
    assert!(all_orders(&app, token).await.is_empty(), "no order");

    // Then a good card goes through.
    let (order, payment) = checked_checkout(
        &checkout(
            &app,
            token,
            &json!({"address": address(), "card": card(GOOD_CARD)}),
        )
        .await,
    );
    assert_eq!(order["status"], "paid");
    assert_eq!(payment["status"], "succeeded");
}

async fn an_empty_cart_cannot_be_checked_out(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "bowl", 500, 5).await;
    let user = app.new_user("empty").await;
    let token = user.access();
    let body = json!({"address": address(), "card": card(GOOD_CARD)});

    // A user who never had a cart, then one whose cart was emptied.
    checkout(&app, token, &body)
        .await
        .expect_error(409, "cart_empty");
    add_to_cart(&app, token, &a, 1).await;
    app.delete("/api/v1/cart", Some(token), None)
        .await
        .expect(200);
    checkout(&app, token, &json!({"address": address()}))
        .await
        .expect_error(409, "cart_empty");
    assert!(all_orders(&app, token).await.is_empty());

    // After a checkout, the cart is empty again.
    add_to_cart(&app, token, &a, 1).await;
    checked_checkout(&checkout(&app, token, &body).await);
    checkout(&app, token, &body)
        .await
        .expect_error(409, "cart_empty");
    assert_eq!(all_orders(&app, token).await.len(), 1);
    assert_eq!(stock(&app, &a).await, 4);
}

async fn a_short_cart_stays_as_it_was(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "spoon", 100, 10).await;
    let b = product(&app, &admin.access, "fork", 100, 3).await;
    let user = app.new_user("short").await;
    let token = user.access();
    add_to_cart(&app, token, &a, 2).await;
    let cart = add_to_cart(&app, token, &b, 5).await;

    let details = checkout(
        &app,
        token,
        &json!({"address": address(), "card": card(GOOD_CARD)}),
    )
    .await
    .expect_error(409, "insufficient_stock");
    assert_eq!(details["product_id"], b.as_str(), "{details}");
    assert_eq!(details["available"], 3, "{details}");
    assert_eq!(
        get_cart(&app, token).await,
        cart,
        "the cart stays as it was"
    );
    assert_eq!(stock(&app, &a).await, 10);
    assert_eq!(stock(&app, &b).await, 3);
    assert!(all_orders(&app, token).await.is_empty());

    // A deleted product in the cart cannot be bought; nothing changes either.
    let c = product(&app, &admin.access, "gone", 100, 3).await;
    patch_product(&app, &admin.access, &b, json!({"stock": 5})).await;
    add_to_cart(&app, token, &c, 1).await;
    app.delete(&format!("/api/v1/products/{c}"), Some(&admin.access), None)
        .await
        .expect(204);
    let cart = get_cart(&app, token).await;
    let resp = checkout(&app, token, &json!({"address": address()})).await;
    if resp.status == 201 {
        // The unavailable line was left out and stays in the cart; the rest was bought.
        let body = resp.json();
        let order = checked_order(body["order"].clone());
        assert_eq!(order_lines(&order), [(a.clone(), 2), (b.clone(), 5)]);
    } else {
        // Or the checkout is refused (the product is gone) and nothing changes.
        assert!(
            [404, 409].contains(&resp.status),
            "checkout with a deleted product: {} {}",
            resp.status,
            resp.text
        );
        assert_eq!(
            get_cart(&app, token).await,
            cart,
            "the cart stays as it was"
        );
        assert_eq!(stock(&app, &a).await, 10);
        assert_eq!(stock(&app, &b).await, 5);
        assert!(all_orders(&app, token).await.is_empty());
    }
}

async fn checkout_bodies_are_validated(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "checked", 100, 10).await;
    let user = app.new_user("validator").await;
    let token = user.access();
    let cart = add_to_cart(&app, token, &a, 2).await;

    let mut partial = address();
    partial.as_object_mut().unwrap().remove("phone");
    let mut card_extra = card(GOOD_CARD);
    card_extra["holder"] = json!("Ada");
    for body in [
        json!({}),
        json!({"card": card(GOOD_CARD)}),
        json!({"address": partial}),
        json!({"address": address(), "items": [{"product_id": a, "quantity": 1}]}),
        json!({"address": address(), "user_id": user.id}),
        json!({"address": address(), "total_cents": 1}),
        json!({"address": address(), "amount_cents": 1}),
        json!({"address": address(), "note": 3}),
        json!({"address": address(), "card": card_extra}),
        json!({"address": address(), "card": "4242424242424242"}),
    ] {
        checkout(&app, token, &body)
            .await
            .expect_error(400, "invalid_request");
    }
    // Card fields of the wrong type or missing: 400 too.
    for c in [
        json!({"number": GOOD_CARD, "exp_month": 12, "exp_year": 2099}),
        json!({"number": 4242424242424242_i64, "exp_month": 12, "exp_year": 2099, "cvc": "123"}),
        json!({"number": GOOD_CARD, "exp_month": "12", "exp_year": 2099, "cvc": "123"}),
    ] {
        checkout(&app, token, &json!({"address": address(), "card": c}))
            .await
            .expect_error_in(400, &["invalid_request", "invalid_card"]);
    }
    assert_eq!(get_cart(&app, token).await, cart);
    assert_eq!(stock(&app, &a).await, 10);
    assert!(all_orders(&app, token).await.is_empty());
    let (order, payment) =
        checked_checkout(&checkout(&app, token, &json!({"address": address()})).await);
    assert_eq!(order["status"], "pending_payment");
    assert_eq!(payment["status"], "pending");
    assert!(
        time_of(&payment["created_at"], "payment.created_at")
            >= time_of(&order["created_at"], "order.created_at"),
        "the session is opened once the order exists"
    );
}

async fn concurrent_checkouts_never_oversell(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let p = product(&app, &admin.access, "hot item", 1500, 8).await;
    let buyers = customers(&app, "crowd", 20).await;
    let tokens = tokens(&buyers);
    for t in &tokens {
        add_to_cart(&app, t, &p, 1).await;
    }
    let body = json!({"address": address(), "card": card(GOOD_CARD)});

    let answers = join_all(tokens.iter().map(|t| checkout(&app, t, &body))).await;
    let mut sold = 0;
    for (answer, t) in answers.iter().zip(&tokens) {
        match answer.status {
            201 => {
                let (order, payment) = checked_checkout(answer);
                assert_eq!(order["status"], "paid");
                assert_eq!(payment["status"], "succeeded");
                assert_eq!(get_cart(&app, t).await["items"], json!([]));
                sold += 1;
            }
            409 => {
                let details = answer.expect_error(409, "insufficient_stock");
                assert_eq!(details["product_id"], p.as_str());
                assert_eq!(
                    cart_lines(&get_cart(&app, t).await),
                    [(p.clone(), 1)],
                    "a refused checkout keeps the cart"
                );
            }
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert_eq!(sold, 8);
    assert_eq!(stock(&app, &p).await, 0);
    check_invariants(&app, &[(p, 8)], &tokens).await;
}

/// The same cart sent to checkout five times at once (a double click, no idempotency key)
/// becomes one order: the others find the cart empty.
async fn a_double_submitted_checkout_makes_one_order(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let p = product(&app, &admin.access, "clicked", 700, 100).await;
    let user = app.new_user("clicker").await;
    let token = user.access();
    add_to_cart(&app, token, &p, 3).await;
    let body = json!({"address": address(), "card": card(GOOD_CARD)});

    let answers = join_all((0..5).map(|_| checkout(&app, token, &body))).await;
    let mut created = 0;
    for answer in &answers {
        match answer.status {
            201 => {
                checked_checkout(answer);
                created += 1;
            }
            _ => {
                answer.expect_error(409, "cart_empty");
            }
        }
    }
    assert_eq!(created, 1, "one cart, one order");
    assert_eq!(stock(&app, &p).await, 97);
    assert_eq!(all_orders(&app, token).await.len(), 1);
    check_invariants(&app, &[(p, 100)], &[token.to_owned()]).await;
}

/// A line added to the cart while a checkout runs ends up either in the new order or still in
/// the cart, never lost (the checkout must not empty more than it ordered).
async fn lines_added_during_a_checkout_are_not_lost(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "first", 100, 1000).await;
    let b = product(&app, &admin.access, "added late", 100, 1000).await;
    let user = app.new_user("busy").await;
    let token = user.access();
    let body = json!({"address": address()});

    for delay_ms in [0u64, 1, 2, 4, 7, 12, 20, 35] {
        app.delete("/api/v1/cart", Some(token), None)
            .await
            .expect(200);
        add_to_cart(&app, token, &a, 1).await;
        let (done, added) = futures_util::join!(checkout(&app, token, &body), async {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            add_to_cart(&app, token, &b, 1).await
        });
        let (order, _) = checked_checkout(&done);
        assert!(added["items"].is_array());
        let in_order = order_lines(&order).iter().any(|(p, _)| *p == b);
        let in_cart = cart_lines(&get_cart(&app, token).await)
            .iter()
            .any(|(p, _)| *p == b);
        assert!(
            in_order ^ in_cart,
            "a line added {delay_ms} ms into a checkout: in the order {in_order}, in the cart \
             {in_cart}: {order}"
        );
    }
    check_invariants(&app, &[(a, 1000), (b, 1000)], &[token.to_owned()]).await;
}
