//! Orders (`/api/v1/orders`), end to end: placing one (prices copied, stock taken all at once or
//! not at all), validation of every body, listing, changing and cancelling, account closure,
//! privacy between users, and concurrent buyers who must never oversell.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::commerce::{
    GOOD_CARD, ORDERS, PAYMENTS, address, all_orders, cancel_order, cancel_payment, card,
    check_invariants, checked_order, confirm, customers, get_order, get_payment, id, ids,
    open_payment, order_body, order_lines, order_path, order_payments, page_items, patch_product,
    payment_path, place_order, product, secs_between, stock, time_of, tokens, try_open_payment,
    try_order,
};
use crate::harness::{App, Backend, now_unix};

both_backends!(
    order_routes_need_a_token,
    place_an_order,
    order_bodies_are_validated,
    an_order_holds_1_to_100_lines,
    unknown_and_deleted_products_are_not_found,
    a_short_line_changes_nothing,
    orders_keep_their_copy_of_the_catalog,
    list_orders_newest_first_by_status_and_page,
    patch_an_order,
    cancel_an_order,
    closing_an_account_cancels_its_pending_orders,
    orders_and_payments_are_private,
    concurrent_buyers_never_oversell,
    concurrent_multi_line_orders_are_all_or_nothing,
    openapi_documents_orders_checkout_and_payments,
);

/// Asserts a 409 `insufficient_stock` naming `product_id` with `available` left.
#[track_caller]
fn assert_short(resp: &crate::harness::Resp, product_id: &str, available: i64) {
    let details = resp.expect_error(409, "insufficient_stock");
    crate::harness::assert_keys(
        &details,
        &["product_id", "available"],
        "insufficient_stock details",
    );
    assert_eq!(
        details["product_id"], product_id,
        "{}: {details}",
        resp.what
    );
    assert_eq!(details["available"], available, "{}: {details}", resp.what);
}

async fn order_routes_need_a_token(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let p = product(&app, &admin.access, "tokenless", 100, 10).await;
    let user = app.new_user("tokenless").await;
    let order = place_order(&app, user.access(), &[(&p, 1)]).await;
    let payment = open_payment(&app, user.access(), &id(&order)).await;
    let (o, pay) = (order_path(&id(&order)), payment_path(&id(&payment)));

    let body = order_body(&[(&p, 1)]);
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, ORDERS.to_owned(), Some(body)),
        (Method::GET, ORDERS.to_owned(), None),
        (Method::GET, o.clone(), None),
        (Method::PATCH, o.clone(), Some(json!({"note": "x"}))),
        (Method::POST, format!("{o}/cancel"), None),
        (Method::GET, format!("{o}/payments"), None),
        (
            Method::POST,
            PAYMENTS.to_owned(),
            Some(json!({"order_id": id(&order)})),
        ),
        (Method::GET, pay.clone(), None),
        (
            Method::POST,
            format!("{pay}/confirm"),
            Some(card(GOOD_CARD)),
        ),
        (Method::POST, format!("{pay}/cancel"), None),
        (
            Method::POST,
            "/api/v1/checkout".to_owned(),
            Some(json!({"address": address()})),
        ),
    ];
    for (method, path, body) in &calls {
        app.call(method.clone(), path, None, body.as_ref())
            .await
            .expect_error(401, "unauthenticated");
        app.call(method.clone(), path, Some("not-a-token"), body.as_ref())
            .await
            .expect_error(401, "unauthenticated");
    }
    // Nothing happened.
    assert_eq!(get_order(&app, user.access(), &id(&order)).await, order);
    assert_eq!(
        get_payment(&app, user.access(), &id(&payment)).await,
        payment
    );
    assert_eq!(stock(&app, &p).await, 9);
    assert_eq!(all_orders(&app, user.access()).await.len(), 1);
}

async fn place_an_order(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "teapot", 1250, 10).await;
    let b = product(&app, &admin.access, "cup", 300, 5).await;
    let user = app.new_user("buyer").await;
    let before = now_unix();

    let order = place_order(&app, user.access(), &[(&a, 2), (&b, 3)]).await;
    assert_eq!(order["user_id"], user.id.as_str());
    assert_eq!(order["status"], "pending_payment");
    let lines: Vec<(Value, Value, Value, Value, Value)> = order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["product_id"].clone(),
                l["name"].clone(),
                l["unit_price_cents"].clone(),
                l["quantity"].clone(),
                l["line_total_cents"].clone(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (
                json!(a),
                json!("teapot"),
                json!(1250),
                json!(2),
                json!(2500)
            ),
            (json!(b), json!("cup"), json!(300), json!(3), json!(900)),
        ],
        "lines in the order given, prices copied from the catalog: {order}"
    );
    assert_eq!(order["total_cents"], 3400);
    assert_eq!(order["address"], address(), "the address as sent");
    assert_eq!(order["note"], Value::Null, "no note given: null");
    for field in ["paid_at", "cancelled_at", "cancel_reason"] {
        assert_eq!(order[field], Value::Null, "{field}: {order}");
    }
    let created = time_of(&order["created_at"], "created_at");
    let updated = time_of(&order["updated_at"], "updated_at");
    let expires = time_of(&order["expires_at"], "expires_at");
    assert!(
        (created.unix_timestamp() - before).abs() <= 30,
        "created_at is now: {order}"
    );
    assert!(updated >= created, "updated_at before created_at: {order}");
    let timeout = secs_between(created, expires);
    assert!(
        (898.0..=902.0).contains(&timeout),
        "expires_at = created_at + order.payment_timeout_secs (900): {timeout} s: {order}"
    );
    assert_eq!(stock(&app, &a).await, 8, "stock taken");
    assert_eq!(stock(&app, &b).await, 2, "stock taken");
    assert_eq!(get_order(&app, user.access(), &id(&order)).await, order);

    // Another, with a note and no `line2`.
    let mut addr = address();
    addr.as_object_mut().unwrap().remove("line2");
    let second = checked_order(
        app.post(
            ORDERS,
            Some(user.access()),
            &json!({
                "items": [{"product_id": b, "quantity": 2}],
                "address": addr,
                "note": "leave it at the door",
            }),
        )
        .await
        .expect(201),
    );
    assert_ne!(second["id"], order["id"]);
    assert_eq!(second["note"], "leave it at the door");
    assert_eq!(second["total_cents"], 600);
    for key in ["name", "phone", "line1", "city", "postal_code", "country"] {
        assert_eq!(second["address"][key], addr[key], "address.{key}");
    }
    assert!(
        second["address"]["line2"].is_null(),
        "no line2 given: {second}"
    );
    assert_eq!(stock(&app, &b).await, 0);
    assert_eq!(get_order(&app, user.access(), &id(&second)).await, second);
}

async fn order_bodies_are_validated(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let p = product(&app, &admin.access, "validated", 100, 1000).await;
    let q = product(&app, &admin.access, "other", 100, 1000).await;
    let user = app.new_user("validator").await;
    let token = user.access();
    let line = json!({"product_id": p, "quantity": 1});

    let mut bad: Vec<(&str, Value)> = vec![
        ("empty object", json!({})),
        ("no lines", json!({"items": [], "address": address()})),
        ("no items", json!({"address": address()})),
        ("no address", json!({"items": [line]})),
        ("null address", json!({"items": [line], "address": null})),
        (
            "quantity 0",
            json!({"items": [{"product_id": p, "quantity": 0}], "address": address()}),
        ),
        (
            "quantity -1",
            json!({"items": [{"product_id": p, "quantity": -1}], "address": address()}),
        ),
        (
            "quantity 1000",
            json!({"items": [{"product_id": p, "quantity": 1000}], "address": address()}),
        ),
        (
            "quantity 1.5",
            json!({"items": [{"product_id": p, "quantity": 1.5}], "address": address()}),
        ),
        (
            "quantity as a string",
            json!({"items": [{"product_id": p, "quantity": "1"}], "address": address()}),
        ),
        (
            "no quantity",
            json!({"items": [{"product_id": p}], "address": address()}),
        ),
        (
            "product id as a number",
            json!({"items": [{"product_id": p.parse::<i64>().unwrap(), "quantity": 1}], "address": address()}),
        ),
        (
            "the same product twice",
            json!({"items": [line, {"product_id": q, "quantity": 1}, {"product_id": p, "quantity": 2}], "address": address()}),
        ),
        (
            "a price in a line",
            json!({"items": [{"product_id": p, "quantity": 1, "unit_price_cents": 1}], "address": address()}),
        ),
        (
            "status",
            json!({"items": [line], "address": address(), "status": "paid"}),
        ),
        (
            "user_id",
            json!({"items": [line], "address": address(), "user_id": "1"}),
        ),
        (
            "total_cents",
            json!({"items": [line], "address": address(), "total_cents": 1}),
        ),
        (
            "expires_at",
            json!({"items": [line], "address": address(), "expires_at": "2099-01-01T00:00:00Z"}),
        ),
        (
            "note as a number",
            json!({"items": [line], "address": address(), "note": 5}),
        ),
        (
            "items not an array",
            json!({"items": line, "address": address()}),
        ),
        (
            "address as a string",
            json!({"items": [line], "address": "London"}),
        ),
    ];
    let mut addresses: Vec<(String, Value)> = Vec::new();
    for key in ["name", "phone", "line1", "city", "postal_code", "country"] {
        let mut a = address();
        a.as_object_mut().unwrap().remove(key);
        addresses.push((format!("address without {key}"), a));
        let mut a = address();
        a[key] = json!("");
        addresses.push((format!("empty address.{key}"), a));
        let mut a = address();
        a[key] = json!("x".repeat(201));
        addresses.push((format!("address.{key} of 201 characters"), a));
        let mut a = address();
        a[key] = json!(12345);
        addresses.push((format!("address.{key} as a number"), a));
    }
    let mut a = address();
    a["email"] = json!("ada@example.com");
    addresses.push(("address with an unknown field".to_owned(), a));
    let mut a = address();
    a["line2"] = json!("x".repeat(201));
    addresses.push(("address.line2 of 201 characters".to_owned(), a));
    for (what, a) in &addresses {
        bad.push((what, json!({"items": [line], "address": a})));
    }

    for (what, body) in &bad {
        let resp = app.post(ORDERS, Some(token), body).await;
        assert_eq!(
            resp.status, 400,
            "{what}: expected 400, got {} {}",
            resp.status, resp.text
        );
        resp.expect_error(400, "invalid_request");
    }
    for (ct, raw, status) in [
        (Some("application/json"), "{not json", 400),
        (Some("application/json"), "", 400),
        (Some("application/json"), "[]", 400),
        (Some("text/plain"), "hello", 415),
    ] {
        let resp = app
            .request(Method::POST, ORDERS)
            .bearer(token)
            .raw_body(ct, raw)
            .send()
            .await;
        assert_eq!(resp.status, status, "{ct:?} {raw:?}: {}", resp.text);
    }
    // Nothing was created, nothing taken.
    assert!(all_orders(&app, token).await.is_empty());
    assert_eq!(stock(&app, &p).await, 1000);
    assert_eq!(stock(&app, &q).await, 1000);

    // The limits themselves are fine.
    let mut a = address();
    for key in [
        "name",
        "phone",
        "line1",
        "line2",
        "city",
        "postal_code",
        "country",
    ] {
        a[key] = json!("y".repeat(200));
    }
    let order = checked_order(
        app.post(
            ORDERS,
            Some(token),
            &json!({"items": [{"product_id": p, "quantity": 999}], "address": a}),
        )
        .await
        .expect(201),
    );
    assert_eq!(order["address"], a);
    assert_eq!(order_lines(&order), [(p.clone(), 999)]);
    assert_eq!(stock(&app, &p).await, 1);
}

async fn an_order_holds_1_to_100_lines(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let names: Vec<String> = (0..101).map(|i| format!("line {i}")).collect();
    let products: Vec<String> = join_all(
        names
            .iter()
            .zip(10..)
            .map(|(name, price)| product(&app, &admin.access, name, price, 1)),
    )
    .await;
    let user = app.new_user("bulk").await;
    let all: Vec<(&str, i64)> = products.iter().map(|p| (p.as_str(), 1)).collect();

    try_order(&app, user.access(), &all)
        .await
        .expect_error(400, "invalid_request");
    assert!(all_orders(&app, user.access()).await.is_empty());
    for p in &products {
        assert_eq!(stock(&app, p).await, 1, "101 lines took nothing");
    }

    let order = place_order(&app, user.access(), &all[..100]).await;
    assert_eq!(order["items"].as_array().unwrap().len(), 100);
    let total: i64 = (0..100).map(|i| 10 + i).sum();
    assert_eq!(order["total_cents"], total);
    for p in &products[..100] {
        assert_eq!(stock(&app, p).await, 0);
    }
    assert_eq!(stock(&app, &products[100]).await, 1);

    // One line is fine too.
    place_order(&app, user.access(), &all[100..]).await;
    assert_eq!(stock(&app, &products[100]).await, 0);
}

async fn unknown_and_deleted_products_are_not_found(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "kept", 100, 5).await;
    let d = product(&app, &admin.access, "deleted", 100, 5).await;
    app.delete(&format!("/api/v1/products/{d}"), Some(&admin.access), None)
        .await
        .expect(204);
    let user = app.new_user("lost").await;

    for lines in [
        vec![(a.as_str(), 1), (d.as_str(), 1)],
        vec![(d.as_str(), 1)],
        vec![(a.as_str(), 1), ("999999999999", 1)],
    ] {
        try_order(&app, user.access(), &lines)
            .await
            .expect_error(404, "not_found");
    }
    assert!(all_orders(&app, user.access()).await.is_empty());
    assert_eq!(stock(&app, &a).await, 5, "the good line took nothing");
}

async fn a_short_line_changes_nothing(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "plenty", 100, 5).await;
    let b = product(&app, &admin.access, "scarce", 200, 2).await;
    let user = app.new_user("short").await;
    let token = user.access();

    assert_short(&try_order(&app, token, &[(&a, 3), (&b, 3)]).await, &b, 2);
    assert_short(&try_order(&app, token, &[(&b, 3), (&a, 3)]).await, &b, 2);
    assert_short(&try_order(&app, token, &[(&a, 6)]).await, &a, 5);
    assert_eq!(
        stock(&app, &a).await,
        5,
        "nothing taken from the other line"
    );
    assert_eq!(stock(&app, &b).await, 2);
    assert!(all_orders(&app, token).await.is_empty(), "no order");

    // Exactly what is there.
    let order = place_order(&app, token, &[(&a, 5), (&b, 2)]).await;
    assert_eq!(order["total_cents"], 5 * 100 + 2 * 200);
    assert_eq!(stock(&app, &a).await, 0);
    assert_eq!(stock(&app, &b).await, 0);
    assert_short(&try_order(&app, token, &[(&a, 1)]).await, &a, 0);

    // Restocked, it sells again.
    patch_product(&app, &admin.access, &a, json!({"stock": 4})).await;
    place_order(&app, token, &[(&a, 4)]).await;
    assert_eq!(stock(&app, &a).await, 0);
    check_invariants(&app, &[(a.clone(), 9), (b.clone(), 2)], &[token.to_owned()]).await;
}

async fn orders_keep_their_copy_of_the_catalog(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "vase", 1000, 5).await;
    let user = app.new_user("keeper").await;
    let order = place_order(&app, user.access(), &[(&a, 2)]).await;

    patch_product(
        &app,
        &admin.access,
        &a,
        json!({"price_cents": 5000, "name": "golden vase"}),
    )
    .await;
    let again = get_order(&app, user.access(), &id(&order)).await;
    assert_eq!(
        again, order,
        "a price or name change does not touch the order"
    );
    // The payment charges the order's total, not the new price.
    let payment = open_payment(&app, user.access(), &id(&order)).await;
    assert_eq!(payment["amount_cents"], 2000);

    app.delete(&format!("/api/v1/products/{a}"), Some(&admin.access), None)
        .await
        .expect(204);
    let again = get_order(&app, user.access(), &id(&order)).await;
    assert_eq!(again, order, "a deleted product stays in the order");
    assert_eq!(
        all_orders(&app, user.access()).await,
        std::slice::from_ref(&order)
    );
    // It can still be paid.
    let paid = confirm(&app, user.access(), &id(&payment), &card(GOOD_CARD))
        .await
        .expect(200);
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(paid["amount_cents"], 2000);
    assert_eq!(
        get_order(&app, user.access(), &id(&order)).await["status"],
        "paid"
    );
}

async fn list_orders_newest_first_by_status_and_page(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "listed", 100, 100).await;
    let u = app.new_user("lister").await;
    let v = app.new_user("neighbour").await;
    let token = u.access();

    let page = app.get(ORDERS, Some(token)).await.expect(200);
    assert!(page_items(&page, 1, 20).is_empty());
    assert_eq!(page["total"], 0);

    let o1 = place_order(&app, token, &[(&a, 1)]).await;
    let o2 = place_order(&app, token, &[(&a, 2)]).await;
    let o4 = place_order(&app, v.access(), &[(&a, 4)]).await;
    let o3 = place_order(&app, token, &[(&a, 3)]).await;

    let page = app.get(ORDERS, Some(token)).await.expect(200);
    let items = page_items(&page, 1, 20);
    assert_eq!(page["total"], 3);
    assert_eq!(ids(&items), ids(&[o3.clone(), o2.clone(), o1.clone()]));
    assert_eq!(items[0], o3, "listed orders are whole orders");
    let theirs = all_orders(&app, v.access()).await;
    assert_eq!(ids(&theirs), [id(&o4)], "each user lists only their own");

    let mut seen = Vec::new();
    for (number, expected) in [(1, 2), (2, 1), (3, 0)] {
        let page = app
            .get(&format!("{ORDERS}?page={number}&page_size=2"), Some(token))
            .await
            .expect(200);
        let items = page_items(&page, number, 2);
        assert_eq!(page["total"], 3, "{page}");
        assert_eq!(items.len(), expected, "{page}");
        seen.extend(ids(&items));
    }
    assert_eq!(seen, ids(&[o3.clone(), o2.clone(), o1.clone()]));

    cancel_order(&app, token, &id(&o2)).await.expect(200);
    let payment = open_payment(&app, token, &id(&o1)).await;
    confirm(&app, token, &id(&payment), &card(GOOD_CARD))
        .await
        .expect(200);
    for (status, expected) in [
        ("pending_payment", vec![id(&o3)]),
        ("cancelled", vec![id(&o2)]),
        ("paid", vec![id(&o1)]),
    ] {
        let page = app
            .get(&format!("{ORDERS}?status={status}"), Some(token))
            .await
            .expect(200);
        let items = page_items(&page, 1, 20);
        assert_eq!(ids(&items), expected, "status={status}: {page}");
        assert_eq!(page["total"], expected.len(), "status={status}: {page}");
        for item in items {
            assert_eq!(item["status"], status);
        }
    }
    for query in [
        "status=bogus",
        "status=PAID",
        "page_size=0",
        "page_size=101",
        "page=0",
        "page=-1",
        "page=abc",
    ] {
        app.get(&format!("{ORDERS}?{query}"), Some(token))
            .await
            .expect_error(400, "invalid_request");
    }
}

async fn patch_an_order(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "patched", 100, 10).await;
    let user = app.new_user("patcher").await;
    let token = user.access();
    let order = place_order(&app, token, &[(&a, 1)]).await;
    let path = order_path(&id(&order));

    let noted = checked_order(
        app.patch(&path, Some(token), &json!({"note": "ring twice"}))
            .await
            .expect(200),
    );
    assert_eq!(noted["note"], "ring twice");
    assert_eq!(noted["address"], order["address"]);
    assert_eq!(
        noted["expires_at"], order["expires_at"],
        "the deadline stays"
    );
    assert_eq!(noted["items"], order["items"]);
    assert!(
        time_of(&noted["updated_at"], "updated_at") >= time_of(&order["updated_at"], "updated_at")
    );

    let new_address = json!({
        "name": "Charles Babbage",
        "phone": "+44 20 0000 0001",
        "line1": "1 Dorset Street",
        "city": "London",
        "postal_code": "W1U 4EG",
        "country": "GB",
    });
    let moved = checked_order(
        app.patch(&path, Some(token), &json!({"address": new_address}))
            .await
            .expect(200),
    );
    for key in ["name", "phone", "line1", "city", "postal_code", "country"] {
        assert_eq!(moved["address"][key], new_address[key], "address.{key}");
    }
    assert!(
        moved["address"]["line2"].is_null(),
        "line2 replaced: {moved}"
    );
    assert_eq!(moved["note"], "ring twice", "the note stays");
    let both = checked_order(
        app.patch(
            &path,
            Some(token),
            &json!({"address": address(), "note": "back to Ada"}),
        )
        .await
        .expect(200),
    );
    assert_eq!(both["address"], address());
    assert_eq!(both["note"], "back to Ada");
    assert_eq!(get_order(&app, token, &id(&order)).await, both);

    let mut partial = address();
    partial.as_object_mut().unwrap().remove("city");
    let mut unknown = address();
    unknown["email"] = json!("x@example.com");
    let mut empty = address();
    empty["name"] = json!("");
    for body in [
        json!({"status": "paid"}),
        json!({"items": [{"product_id": a, "quantity": 5}]}),
        json!({"total_cents": 1}),
        json!({"address": partial}),
        json!({"address": unknown}),
        json!({"address": empty}),
        json!({"note": 7}),
        json!({"address": "London"}),
    ] {
        app.patch(&path, Some(token), &body)
            .await
            .expect_error(400, "invalid_request");
    }
    assert_eq!(get_order(&app, token, &id(&order)).await, both, "unchanged");
    app.patch(
        &order_path("999999999999"),
        Some(token),
        &json!({"note": "x"}),
    )
    .await
    .expect_error(404, "not_found");

    // Once cancelled or paid, it cannot change.
    cancel_order(&app, token, &id(&order)).await.expect(200);
    app.patch(&path, Some(token), &json!({"note": "too late"}))
        .await
        .expect_error(409, "invalid_state");
    let paid = place_order(&app, token, &[(&a, 1)]).await;
    let payment = open_payment(&app, token, &id(&paid)).await;
    confirm(&app, token, &id(&payment), &card(GOOD_CARD))
        .await
        .expect(200);
    app.patch(
        &order_path(&id(&paid)),
        Some(token),
        &json!({"address": address()}),
    )
    .await
    .expect_error(409, "invalid_state");
    assert_eq!(
        get_order(&app, token, &id(&paid)).await["note"],
        Value::Null
    );
}

async fn cancel_an_order(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "returned", 100, 10).await;
    let user = app.new_user("canceller").await;
    let token = user.access();
    let order = place_order(&app, token, &[(&a, 4)]).await;
    let payment = open_payment(&app, token, &id(&order)).await;
    assert_eq!(stock(&app, &a).await, 6);

    // An empty body with no content type.
    let cancelled = checked_order(cancel_order(&app, token, &id(&order)).await.expect(200));
    assert_eq!(cancelled["id"], order["id"]);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_reason"], "user");
    assert_eq!(cancelled["paid_at"], Value::Null);
    assert_eq!(cancelled["items"], order["items"]);
    assert_eq!(get_order(&app, token, &id(&order)).await, cancelled);
    assert_eq!(stock(&app, &a).await, 10, "the stock comes back");
    let p = get_payment(&app, token, &id(&payment)).await;
    assert_eq!(p["status"], "cancelled", "its pending payment is cancelled");

    // Only once; and it cannot be paid any more.
    cancel_order(&app, token, &id(&order))
        .await
        .expect_error(409, "invalid_state");
    try_open_payment(&app, token, &id(&order))
        .await
        .expect_error(409, "invalid_state");
    confirm(&app, token, &id(&payment), &card(GOOD_CARD))
        .await
        .expect_error(409, "invalid_state");
    assert_eq!(stock(&app, &a).await, 10, "returned once");
    assert_eq!(get_order(&app, token, &id(&order)).await, cancelled);

    // A body with anything in it is refused; `{}` is an empty body.
    let second = place_order(&app, token, &[(&a, 1)]).await;
    let path = format!("{}/cancel", order_path(&id(&second)));
    app.post(&path, Some(token), &json!({"reason": "admin"}))
        .await
        .expect_error(400, "invalid_request");
    assert_eq!(
        get_order(&app, token, &id(&second)).await["status"],
        "pending_payment"
    );
    let c = app.post(&path, Some(token), &json!({})).await.expect(200);
    assert_eq!(c["cancel_reason"], "user");

    // A paid order cannot be cancelled, and keeps its stock.
    let paid = place_order(&app, token, &[(&a, 2)]).await;
    let payment = open_payment(&app, token, &id(&paid)).await;
    confirm(&app, token, &id(&payment), &card(GOOD_CARD))
        .await
        .expect(200);
    cancel_order(&app, token, &id(&paid))
        .await
        .expect_error(409, "invalid_state");
    cancel_payment(&app, token, &id(&payment))
        .await
        .expect_error(409, "invalid_state");
    assert_eq!(get_order(&app, token, &id(&paid)).await["status"], "paid");
    assert_eq!(stock(&app, &a).await, 8);
    cancel_order(&app, token, "999999999999")
        .await
        .expect_error(404, "not_found");
    check_invariants(&app, &[(a, 10)], &[token.to_owned()]).await;
}

async fn closing_an_account_cancels_its_pending_orders(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "closing", 100, 20).await;
    let user = app.new_user("leaver").await;
    let token = user.access();
    let pending = place_order(&app, token, &[(&a, 2)]).await;
    open_payment(&app, token, &id(&pending)).await;
    let paid = place_order(&app, token, &[(&a, 3)]).await;
    let payment = open_payment(&app, token, &id(&paid)).await;
    confirm(&app, token, &id(&payment), &card(GOOD_CARD))
        .await
        .expect(200);
    assert_eq!(stock(&app, &a).await, 15);

    app.delete(
        "/api/v1/users/me",
        Some(token),
        Some(&json!({"password": user.password})),
    )
    .await
    .expect(204);
    let o = get_order(&app, &admin.access, &id(&pending)).await;
    assert_eq!(o["status"], "cancelled");
    assert_eq!(o["cancel_reason"], "account_closed");
    assert_eq!(
        get_order(&app, &admin.access, &id(&paid)).await["status"],
        "paid"
    );
    assert_eq!(
        stock(&app, &a).await,
        17,
        "the pending order's stock comes back"
    );

    // The same when an admin closes the account.
    let other = app.new_user("closed").await;
    let theirs = place_order(&app, other.access(), &[(&a, 7)]).await;
    assert_eq!(stock(&app, &a).await, 10);
    app.delete(
        &format!("/api/v1/admin/users/{}", other.id),
        Some(&admin.access),
        None,
    )
    .await
    .expect(204);
    let o = get_order(&app, &admin.access, &id(&theirs)).await;
    assert_eq!(o["status"], "cancelled");
    assert_eq!(o["cancel_reason"], "account_closed");
    assert_eq!(stock(&app, &a).await, 17);
}

async fn orders_and_payments_are_private(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "private", 100, 10).await;
    let alice = app.new_user("alice").await;
    let bob = app.new_user("bob").await;
    let order = place_order(&app, alice.access(), &[(&a, 2)]).await;
    let payment = open_payment(&app, alice.access(), &id(&order)).await;
    let (o, p) = (order_path(&id(&order)), payment_path(&id(&payment)));
    let t = Some(bob.access());

    app.get(&o, t).await.expect_error(404, "not_found");
    app.patch(&o, t, &json!({"note": "mine now"}))
        .await
        .expect_error(404, "not_found");
    cancel_order(&app, bob.access(), &id(&order))
        .await
        .expect_error(404, "not_found");
    app.get(&format!("{o}/payments"), t)
        .await
        .expect_error(404, "not_found");
    try_open_payment(&app, bob.access(), &id(&order))
        .await
        .expect_error(404, "not_found");
    app.get(&p, t).await.expect_error(404, "not_found");
    confirm(&app, bob.access(), &id(&payment), &card(GOOD_CARD))
        .await
        .expect_error(404, "not_found");
    cancel_payment(&app, bob.access(), &id(&payment))
        .await
        .expect_error(404, "not_found");
    assert!(all_orders(&app, bob.access()).await.is_empty());

    // Unknown and non-canonical ids are not found either.
    for bad in ["999999999999", "abc", "0", "-1"] {
        app.get(&order_path(bad), Some(alice.access()))
            .await
            .expect_error(404, "not_found");
        app.get(&payment_path(bad), Some(alice.access()))
            .await
            .expect_error(404, "not_found");
    }
    let padded = format!("0{}", id(&order));
    app.get(&order_path(&padded), Some(alice.access()))
        .await
        .expect_error(404, "not_found");

    // Nothing changed for Alice; the admin reads any order.
    assert_eq!(get_order(&app, alice.access(), &id(&order)).await, order);
    assert_eq!(
        get_payment(&app, alice.access(), &id(&payment)).await,
        payment
    );
    assert_eq!(
        order_payments(&app, alice.access(), &id(&order)).await,
        std::slice::from_ref(&payment)
    );
    assert_eq!(get_order(&app, &admin.access, &id(&order)).await, order);
    assert_eq!(stock(&app, &a).await, 8);
}

async fn concurrent_buyers_never_oversell(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let p = product(&app, &admin.access, "limited", 999, 10).await;
    let buyers = customers(&app, "rush", 40).await;
    let tokens = tokens(&buyers);
    let body = order_body(&[(&p, 1)]);

    let answers = join_all(tokens.iter().map(|t| app.post(ORDERS, Some(t), &body))).await;
    let mut sold = 0;
    for answer in &answers {
        match answer.status {
            201 => {
                checked_order(answer.json());
                sold += 1;
            }
            409 => assert_short(answer, &p, 0),
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert_eq!(sold, 10, "exactly the stock is sold");
    assert_eq!(stock(&app, &p).await, 0);
    let orders = check_invariants(&app, &[(p.clone(), 10)], &tokens).await;
    assert_eq!(orders.len(), 10);
}

async fn concurrent_multi_line_orders_are_all_or_nothing(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "ample", 100, 10).await;
    let b = product(&app, &admin.access, "rare", 100, 5).await;
    let c = product(&app, &admin.access, "middling", 100, 7).await;
    let buyers = customers(&app, "multi", 20).await;
    let tokens = tokens(&buyers);
    // The lines in rotating orders, so that lock ordering is put to the test.
    let rotations = [
        [a.as_str(), b.as_str(), c.as_str()],
        [b.as_str(), c.as_str(), a.as_str()],
        [c.as_str(), a.as_str(), b.as_str()],
        [c.as_str(), b.as_str(), a.as_str()],
    ];
    let bodies: Vec<Value> = (0..tokens.len())
        .map(|i| {
            let r = rotations[i % rotations.len()];
            order_body(&[(r[0], 1), (r[1], 1), (r[2], 1)])
        })
        .collect();

    let answers = join_all(
        tokens
            .iter()
            .zip(&bodies)
            .map(|(t, body)| app.post(ORDERS, Some(t), body)),
    )
    .await;
    let mut sold = 0;
    for answer in &answers {
        match answer.status {
            201 => {
                let order = checked_order(answer.json());
                assert_eq!(order["items"].as_array().unwrap().len(), 3);
                sold += 1;
            }
            409 => assert_short(answer, &b, 0),
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert_eq!(sold, 5, "as many as the scarcest line allows");
    assert_eq!(stock(&app, &a).await, 5);
    assert_eq!(stock(&app, &b).await, 0);
    assert_eq!(stock(&app, &c).await, 2);
    check_invariants(&app, &[(a, 10), (b, 5), (c, 7)], &tokens).await;
}

async fn openapi_documents_orders_checkout_and_payments(backend: Backend) {
    let app = App::start(backend).await;
    let doc = app.get("/api/v1/openapi.json", None).await.expect(200);
    let paths = &doc["paths"];
    for (path, methods) in [
        ("/api/v1/orders", &["get", "post"][..]),
        ("/api/v1/orders/{id}", &["get", "patch"][..]),
        ("/api/v1/orders/{id}/cancel", &["post"][..]),
        ("/api/v1/orders/{id}/payments", &["get"][..]),
        ("/api/v1/checkout", &["post"][..]),
        ("/api/v1/payments", &["post"][..]),
        ("/api/v1/payments/{id}", &["get"][..]),
        ("/api/v1/payments/{id}/confirm", &["post"][..]),
        ("/api/v1/payments/{id}/cancel", &["post"][..]),
    ] {
        for method in methods {
            assert!(
                paths[path][method].is_object(),
                "{method} {path} is not documented"
            );
        }
    }
}
