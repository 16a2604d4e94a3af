//! The cart routes (`/api/v1/cart`, `/api/v1/cart/items`), end to end: creating and reading,
//! adding, setting and removing lines, the quantity and line limits, current prices, deleted
//! products, line order, privacy between users, and validation of every body.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{App, Backend, Server, assert_keys, assert_rfc3339};

const CART_FIELDS: &[&str] = &["items", "total_cents", "updated_at"];
const LINE_FIELDS: &[&str] = &[
    "product_id",
    "name",
    "unit_price_cents",
    "quantity",
    "line_total_cents",
    "available",
];

both_backends!(
    cart_routes_need_a_token,
    create_and_get_the_cart,
    quantities_add_up_to_999_per_line,
    add_item_bodies_are_validated,
    unknown_and_deleted_products_are_not_found,
    a_cart_holds_at_most_100_lines,
    set_and_remove_lines,
    lines_are_priced_at_the_current_price,
    lines_keep_the_order_they_were_first_added,
    each_user_sees_only_their_own_cart,
    concurrent_adds_all_count,
    metrics_show_cart_actors_and_their_mailbox_depth,
);

/// Creates a product as the bootstrap admin; returns its id (a string).
async fn product(app: &Server, admin: &str, name: &str, price_cents: i64) -> String {
    let created = app
        .post(
            "/api/v1/products",
            Some(admin),
            &json!({
                "name": name,
                "description": format!("{name} for the cart tests"),
                "price_cents": price_cents,
                "stock": 100,
                "categories": ["cart-tests"],
            }),
        )
        .await
        .expect(201);
    created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("product id is not a string: {created}"))
        .to_owned()
}

/// Checks the shape of a cart and of each of its lines, and the arithmetic: each line total is
/// its price times its quantity, and the total sums the available lines. Returns the cart.
#[track_caller]
fn checked(cart: Value) -> Value {
    assert_keys(&cart, CART_FIELDS, "cart");
    assert_rfc3339(&cart["updated_at"], "cart.updated_at");
    let items = cart["items"]
        .as_array()
        .unwrap_or_else(|| panic!("cart.items is not an array: {cart}"));
    let mut total = 0;
    for line in items {
        assert_keys(line, LINE_FIELDS, "cart line");
        assert!(line["product_id"].is_string(), "product_id: {line}");
        assert!(line["name"].is_string(), "name: {line}");
        assert!(line["available"].is_boolean(), "available: {line}");
        let price = line["unit_price_cents"]
            .as_i64()
            .unwrap_or_else(|| panic!("unit_price_cents: {line}"));
        let quantity = line["quantity"]
            .as_i64()
            .unwrap_or_else(|| panic!("quantity: {line}"));
        assert!((1..=999).contains(&quantity), "quantity: {line}");
        assert_eq!(
            line["line_total_cents"].as_i64(),
            Some(price * quantity),
            "line_total_cents: {line}"
        );
        if line["available"] == true {
            total += price * quantity;
        }
    }
    assert_eq!(
        cart["total_cents"].as_i64(),
        Some(total),
        "total_cents sums the available lines: {cart}"
    );
    cart
}

/// The line of `product_id`, if the cart has one.
fn line<'a>(cart: &'a Value, product_id: &str) -> Option<&'a Value> {
    cart["items"]
        .as_array()?
        .iter()
        .find(|l| l["product_id"] == product_id)
}

/// `(product_id, quantity)` of each line, in the cart's order.
fn lines(cart: &Value) -> Vec<(String, i64)> {
    cart["items"]
        .as_array()
        .unwrap_or_else(|| panic!("cart.items is not an array: {cart}"))
        .iter()
        .map(|l| {
            (
                l["product_id"].as_str().unwrap().to_owned(),
                l["quantity"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn item_path(product_id: &str) -> String {
    format!("/api/v1/cart/items/{product_id}")
}

async fn get_cart(app: &Server, token: &str) -> Value {
    checked(app.get("/api/v1/cart", Some(token)).await.expect(200))
}

async fn add(app: &Server, token: &str, product_id: &str, quantity: i64) -> Value {
    checked(
        app.post(
            "/api/v1/cart/items",
            Some(token),
            &json!({"product_id": product_id, "quantity": quantity}),
        )
        .await
        .expect(200),
    )
}

async fn set(app: &Server, token: &str, product_id: &str, quantity: i64) -> Value {
    checked(
        app.put(
            &item_path(product_id),
            Some(token),
            &json!({"quantity": quantity}),
        )
        .await
        .expect(200),
    )
}

async fn cart_routes_need_a_token(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let p = product(&app, &admin.access, "tokenless", 100).await;
    let user = app.new_user("tokenless").await;
    add(&app, user.access(), &p, 1).await;

    let item = item_path(&p);
    let add_body = json!({"product_id": p, "quantity": 1});
    let qty_body = json!({"quantity": 2});
    let calls: [(Method, &str, Option<&Value>); 6] = [
        (Method::POST, "/api/v1/cart", None),
        (Method::GET, "/api/v1/cart", None),
        (Method::DELETE, "/api/v1/cart", None),
        (Method::POST, "/api/v1/cart/items", Some(&add_body)),
        (Method::PUT, &item, Some(&qty_body)),
        (Method::DELETE, &item, None),
    ];
    for (method, path, body) in calls {
        app.call(method.clone(), path, None, body)
            .await
            .expect_error(401, "unauthenticated");
        app.call(method, path, Some("not-a-token"), body)
            .await
            .expect_error(401, "unauthenticated");
    }
    // Nothing changed.
    assert_eq!(lines(&get_cart(&app, user.access()).await), [(p, 1)]);
}

async fn create_and_get_the_cart(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("creator").await;
    let token = user.access();

    // An empty body with no content type.
    let created = app
        .request(Method::POST, "/api/v1/cart")
        .bearer(token)
        .send()
        .await
        .expect(200);
    let created = checked(created);
    assert_eq!(created["items"], json!([]));
    assert_eq!(created["total_cents"], 0);

    // Again, with `{}`: the same cart, unchanged.
    let again = checked(
        app.post("/api/v1/cart", Some(token), &json!({}))
            .await
            .expect(200),
    );
    assert_eq!(again, created);
    assert_eq!(get_cart(&app, token).await, created);

    // Anything else in the body is refused, and changes nothing.
    app.post("/api/v1/cart", Some(token), &json!({"x": 1}))
        .await
        .expect_error(400, "invalid_request");
    app.post("/api/v1/cart", Some(token), &json!({"user_id": user.id}))
        .await
        .expect_error(400, "invalid_request");
    app.request(Method::POST, "/api/v1/cart")
        .bearer(token)
        .raw_body(Some("application/json"), "{not json")
        .send()
        .await
        .expect_error(400, "invalid_request");
    app.request(Method::POST, "/api/v1/cart")
        .bearer(token)
        .raw_body(Some("text/plain"), "hello")
        .send()
        .await
        .expect_error(415, "unsupported_media_type");
    assert_eq!(get_cart(&app, token).await, created);

    // GET alone gives a (new, empty) cart too.
    let other = app.new_user("reader").await;
    let fresh = get_cart(&app, other.access()).await;
    assert_eq!(fresh["items"], json!([]));
    assert_eq!(fresh["total_cents"], 0);

    // A non-empty cart survives POST /cart.
    let admin = app.admin().await;
    let p = product(&app, &admin.access, "kept", 250).await;
    let filled = add(&app, token, &p, 2).await;
    let posted = checked(
        app.post("/api/v1/cart", Some(token), &json!({}))
            .await
            .expect(200),
    );
    assert_eq!(posted, filled);
    assert_eq!(lines(&posted), [(p, 2)]);
    assert_eq!(posted["total_cents"], 500);
}

async fn quantities_add_up_to_999_per_line(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let (a, b) = (
        product(&app, &admin.access, "apple", 120).await,
        product(&app, &admin.access, "banana", 45).await,
    );
    let user = app.new_user("adder").await;
    let token = user.access();

    let cart = add(&app, token, &a, 2).await;
    let first = assert_rfc3339(&cart["updated_at"], "updated_at");
    let l = line(&cart, &a).expect("the apple line");
    assert_eq!(l["product_id"], a.as_str());
    assert_eq!(l["name"], "apple");
    assert_eq!(l["unit_price_cents"], 120);
    assert_eq!(l["quantity"], 2);
    assert_eq!(l["line_total_cents"], 240);
    assert_eq!(l["available"], true);
    assert_eq!(cart["total_cents"], 240);

    let cart = add(&app, token, &a, 3).await;
    assert_eq!(lines(&cart), [(a.clone(), 5)], "quantities add up");
    assert!(assert_rfc3339(&cart["updated_at"], "updated_at") >= first);
    let cart = add(&app, token, &b, 10).await;
    assert_eq!(lines(&cart), [(a.clone(), 5), (b.clone(), 10)]);
    assert_eq!(cart["total_cents"], 5 * 120 + 10 * 45);

    // 500 + 499 = 999 fits; one more does not, and leaves the line as it was.
    let cart = add(&app, token, &b, 489).await;
    assert_eq!(line(&cart, &b).unwrap()["quantity"], 499);
    let cart = add(&app, token, &b, 500).await;
    assert_eq!(line(&cart, &b).unwrap()["quantity"], 999);
    assert_eq!(line(&cart, &b).unwrap()["line_total_cents"], 999 * 45);
    app.post(
        "/api/v1/cart/items",
        Some(token),
        &json!({"product_id": b, "quantity": 1}),
    )
    .await
    .expect_invalid_field("quantity");
    assert_eq!(
        get_cart(&app, token).await,
        cart,
        "a refused add changes nothing"
    );

    // A fresh line can take 999 at once.
    let c = product(&app, &admin.access, "cherry", 1).await;
    let cart = add(&app, token, &c, 999).await;
    assert_eq!(line(&cart, &c).unwrap()["quantity"], 999);
}

async fn add_item_bodies_are_validated(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let p = product(&app, &admin.access, "validated", 300).await;
    let user = app.new_user("validator").await;
    let token = user.access();
    let before = add(&app, token, &p, 1).await;

    for quantity in [0, -1, 1000] {
        app.post(
            "/api/v1/cart/items",
            Some(token),
            &json!({"product_id": p, "quantity": quantity}),
        )
        .await
        .expect_invalid_field("quantity");
    }
    let numeric_id: i64 = p.parse().expect("product ids are numbers inside");
    let bad_bodies = [
        json!({"product_id": numeric_id, "quantity": 1}),
        json!({"product_id": p, "quantity": 1, "price_cents": 1}),
        json!({"product_id": p, "quantity": 1, "user_id": user.id}),
        json!({"product_id": p}),
        json!({"quantity": 1}),
        json!({"product_id": p, "quantity": "1"}),
        json!({"product_id": p, "quantity": 1.5}),
        json!({"product_id": p, "quantity": null}),
        json!({"product_id": null, "quantity": 1}),
        json!({}),
        json!([p, 1]),
    ];
    for body in &bad_bodies {
        let resp = app.post("/api/v1/cart/items", Some(token), body).await;
        resp.expect_error(400, "invalid_request");
    }
    app.request(Method::POST, "/api/v1/cart/items")
        .bearer(token)
        .raw_body(Some("application/json"), "{\"product_id\":")
        .send()
        .await
        .expect_error(400, "invalid_request");
    app.request(Method::POST, "/api/v1/cart/items")
        .bearer(token)
        .raw_body(
            Some("text/plain"),
            format!("{{\"product_id\":\"{p}\",\"quantity\":1}}"),
        )
        .send()
        .await
        .expect_error(415, "unsupported_media_type");

    // PUT bodies too.
    for quantity in [-1, 1000] {
        app.put(&item_path(&p), Some(token), &json!({"quantity": quantity}))
            .await
            .expect_invalid_field("quantity");
    }
    for body in [
        json!({}),
        json!({"quantity": 1, "product_id": p}),
        json!({"quantity": "2"}),
        json!({"quantity": 2.5}),
    ] {
        app.put(&item_path(&p), Some(token), &body)
            .await
            .expect_error(400, "invalid_request");
    }
    assert_eq!(
        get_cart(&app, token).await,
        before,
        "refused requests change nothing"
    );
}

async fn unknown_and_deleted_products_are_not_found(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let gone = product(&app, &admin.access, "discontinued", 700).await;
    let kept = product(&app, &admin.access, "evergreen", 90).await;
    let never = product(&app, &admin.access, "never added", 10).await;
    let user = app.new_user("deleted").await;
    let token = user.access();
    add(&app, token, &gone, 2).await;
    let before = add(&app, token, &kept, 3).await;
    assert_eq!(before["total_cents"], 2 * 700 + 3 * 90);

    for id in [&gone, &never] {
        app.delete(&format!("/api/v1/products/{id}"), Some(&admin.access), None)
            .await
            .expect(204);
    }

    // The deleted product's line stays, unavailable and out of the total.
    let cart = get_cart(&app, token).await;
    assert_eq!(lines(&cart), [(gone.clone(), 2), (kept.clone(), 3)]);
    let l = line(&cart, &gone).unwrap();
    assert_eq!(l["available"], false);
    assert_eq!(l["name"], "discontinued");
    assert_eq!(line(&cart, &kept).unwrap()["available"], true);
    assert_eq!(cart["total_cents"], 3 * 90);

    // It cannot be added again, nor raised; a deleted product never in the cart cannot be added.
    for id in [&gone, &never] {
        app.post(
            "/api/v1/cart/items",
            Some(token),
            &json!({"product_id": id, "quantity": 1}),
        )
        .await
        .expect_error(404, "not_found");
    }
    app.put(&item_path(&gone), Some(token), &json!({"quantity": 5}))
        .await
        .expect_error(404, "not_found");

    // Unknown ids, numeric or not.
    for id in [
        i64::MAX.to_string(),
        "1".to_owned(),
        "0".to_owned(),
        "-5".to_owned(),
        "not-a-number".to_owned(),
        "99999999999999999999999".to_owned(),
    ] {
        app.post(
            "/api/v1/cart/items",
            Some(token),
            &json!({"product_id": id, "quantity": 1}),
        )
        .await
        .expect_error(404, "not_found");
    }
    assert_eq!(get_cart(&app, token).await, cart, "refusals change nothing");

    // But its line can be removed.
    let cart = checked(
        app.delete(&item_path(&gone), Some(token), None)
            .await
            .expect(200),
    );
    assert_eq!(lines(&cart), [(kept.clone(), 3)]);
    assert_eq!(cart["total_cents"], 3 * 90);
    // And with PUT 0 as well.
    add(&app, token, &kept, 1).await;
    let other = app.new_user("deleted-too").await;
    let p = product(&app, &admin.access, "short-lived", 5).await;
    add(&app, other.access(), &p, 4).await;
    app.delete(&format!("/api/v1/products/{p}"), Some(&admin.access), None)
        .await
        .expect(204);
    let emptied = set(&app, other.access(), &p, 0).await;
    assert_eq!(emptied["items"], json!([]));
    assert_eq!(emptied["total_cents"], 0);
}

async fn a_cart_holds_at_most_100_lines(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let mut ids = Vec::new();
    for i in 0..101 {
        ids.push(product(&app, &admin.access, &format!("item {i}"), 10 + i).await);
    }
    let user = app.new_user("hoarder").await;
    let token = user.access();
    let mut cart = Value::Null;
    for id in &ids[..100] {
        cart = add(&app, token, id, 1).await;
    }
    assert_eq!(cart["items"].as_array().unwrap().len(), 100);
    let total: i64 = (0..100).map(|i| 10 + i).sum();
    assert_eq!(cart["total_cents"], total);

    let add_101st = json!({"product_id": ids[100], "quantity": 1});
    app.post("/api/v1/cart/items", Some(token), &add_101st)
        .await
        .expect_error(409, "cart_full");
    // Setting a quantity for a product with no line cannot make a 101st line either (whether
    // that is refused as a full cart or as a missing line, the contract does not say).
    let set_101st = app
        .put(&item_path(&ids[100]), Some(token), &json!({"quantity": 1}))
        .await;
    assert!(
        [404, 409].contains(&set_101st.status),
        "{}: {} {}",
        set_101st.what,
        set_101st.status,
        set_101st.text
    );
    assert_eq!(
        get_cart(&app, token).await,
        cart,
        "a full cart is unchanged"
    );

    // Lines already there still grow.
    let grown = add(&app, token, &ids[42], 4).await;
    assert_eq!(line(&grown, &ids[42]).unwrap()["quantity"], 5);
    // With one line fewer, the 101st product fits.
    app.delete(&item_path(&ids[0]), Some(token), None)
        .await
        .expect(200);
    let cart = checked(
        app.post("/api/v1/cart/items", Some(token), &add_101st)
            .await
            .expect(200),
    );
    assert_eq!(cart["items"].as_array().unwrap().len(), 100);
    assert_eq!(
        cart["items"][99]["product_id"],
        ids[100].as_str(),
        "the newest line is last"
    );
}

async fn set_and_remove_lines(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let (a, b, c) = (
        product(&app, &admin.access, "alpha", 100).await,
        product(&app, &admin.access, "beta", 200).await,
        product(&app, &admin.access, "gamma", 300).await,
    );
    let user = app.new_user("setter").await;
    let token = user.access();
    add(&app, token, &a, 1).await;
    add(&app, token, &b, 2).await;

    // Set replaces the quantity (it does not add).
    let cart = set(&app, token, &a, 7).await;
    assert_eq!(lines(&cart), [(a.clone(), 7), (b.clone(), 2)]);
    assert_eq!(cart["total_cents"], 7 * 100 + 2 * 200);
    let cart = set(&app, token, &a, 999).await;
    assert_eq!(line(&cart, &a).unwrap()["quantity"], 999);
    let cart = set(&app, token, &a, 3).await;
    assert_eq!(line(&cart, &a).unwrap()["quantity"], 3);

    // 0 removes the line; 0 on a line that is not there is 404.
    let cart = set(&app, token, &b, 0).await;
    assert_eq!(lines(&cart), [(a.clone(), 3)]);
    app.put(&item_path(&b), Some(token), &json!({"quantity": 0}))
        .await
        .expect_error(404, "not_found");
    app.put(&item_path(&c), Some(token), &json!({"quantity": 0}))
        .await
        .expect_error(404, "not_found");
    app.put(
        "/api/v1/cart/items/not-an-id",
        Some(token),
        &json!({"quantity": 0}),
    )
    .await
    .expect_error(404, "not_found");
    assert_eq!(get_cart(&app, token).await, cart);

    // DELETE a line; a line that is not there is 404.
    add(&app, token, &c, 4).await;
    let cart = checked(
        app.delete(&item_path(&a), Some(token), None)
            .await
            .expect(200),
    );
    assert_eq!(lines(&cart), [(c.clone(), 4)]);
    for missing in [&a, &b] {
        app.delete(&item_path(missing), Some(token), None)
            .await
            .expect_error(404, "not_found");
    }
    for bogus in ["not-an-id", "0", "-1"] {
        app.delete(&item_path(bogus), Some(token), None)
            .await
            .expect_error(404, "not_found");
    }
    assert_eq!(get_cart(&app, token).await, cart);

    // DELETE /cart empties it; emptying an empty cart is fine too.
    add(&app, token, &a, 1).await;
    let emptied = checked(
        app.delete("/api/v1/cart", Some(token), None)
            .await
            .expect(200),
    );
    assert_eq!(emptied["items"], json!([]));
    assert_eq!(emptied["total_cents"], 0);
    assert_eq!(get_cart(&app, token).await, emptied);
    let again = checked(
        app.delete("/api/v1/cart", Some(token), None)
            .await
            .expect(200),
    );
    assert_eq!(again["items"], json!([]));
    // The cart is usable after being emptied.
    let cart = add(&app, token, &b, 2).await;
    assert_eq!(lines(&cart), [(b, 2)]);
}

async fn lines_are_priced_at_the_current_price(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let (a, b) = (
        product(&app, &admin.access, "lamp", 1000).await,
        product(&app, &admin.access, "bulb", 150).await,
    );
    let user = app.new_user("pricer").await;
    let token = user.access();
    add(&app, token, &a, 3).await;
    let cart = add(&app, token, &b, 2).await;
    assert_eq!(cart["total_cents"], 3 * 1000 + 2 * 150);

    app.patch(
        &format!("/api/v1/products/{a}"),
        Some(&admin.access),
        &json!({"price_cents": 1250, "name": "desk lamp"}),
    )
    .await
    .expect(200);
    let cart = get_cart(&app, token).await;
    let l = line(&cart, &a).unwrap();
    assert_eq!(l["unit_price_cents"], 1250, "the current price");
    assert_eq!(l["line_total_cents"], 3 * 1250);
    assert_eq!(l["name"], "desk lamp", "the current name");
    assert_eq!(cart["total_cents"], 3 * 1250 + 2 * 150);

    // A price drop, and a free product.
    app.patch(
        &format!("/api/v1/products/{b}"),
        Some(&admin.access),
        &json!({"price_cents": 0}),
    )
    .await
    .expect(200);
    let cart = add(&app, token, &a, 1).await;
    let l = line(&cart, &b).unwrap();
    assert_eq!(l["unit_price_cents"], 0);
    assert_eq!(l["line_total_cents"], 0);
    assert_eq!(l["available"], true);
    assert_eq!(cart["total_cents"], 4 * 1250);
}

async fn lines_keep_the_order_they_were_first_added(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let mut p = Vec::new();
    // Created in one order, added in another, so that neither id nor creation order can pass.
    for name in ["one", "two", "three", "four"] {
        p.push(product(&app, &admin.access, name, 10).await);
    }
    let user = app.new_user("orderly").await;
    let token = user.access();
    for i in [2, 0, 3, 1] {
        add(&app, token, &p[i], 1).await;
    }
    let ids = |cart: &Value| -> Vec<String> { lines(cart).into_iter().map(|(id, _)| id).collect() };
    let expect = |order: &[usize]| -> Vec<String> { order.iter().map(|&i| p[i].clone()).collect() };

    assert_eq!(ids(&get_cart(&app, token).await), expect(&[2, 0, 3, 1]));
    // Adding to or setting an existing line keeps its place.
    add(&app, token, &p[2], 5).await;
    set(&app, token, &p[0], 9).await;
    assert_eq!(ids(&get_cart(&app, token).await), expect(&[2, 0, 3, 1]));
    // A removed line that comes back goes last.
    app.delete(&item_path(&p[0]), Some(token), None)
        .await
        .expect(200);
    add(&app, token, &p[0], 1).await;
    set(&app, token, &p[3], 0).await;
    let cart = add(&app, token, &p[3], 2).await;
    assert_eq!(ids(&cart), expect(&[2, 1, 0, 3]));
    assert_eq!(
        lines(&cart),
        [
            (p[2].clone(), 6),
            (p[1].clone(), 1),
            (p[0].clone(), 1),
            (p[3].clone(), 2)
        ]
    );
    // After emptying, order starts over.
    app.delete("/api/v1/cart", Some(token), None)
        .await
        .expect(200);
    add(&app, token, &p[1], 1).await;
    let cart = add(&app, token, &p[2], 1).await;
    assert_eq!(ids(&cart), expect(&[1, 2]));
}

async fn each_user_sees_only_their_own_cart(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let (x, y) = (
        product(&app, &admin.access, "shared", 500).await,
        product(&app, &admin.access, "theirs", 40).await,
    );
    let alice = app.new_user("alice").await;
    let bob = app.new_user("bob").await;

    let alices = add(&app, alice.access(), &x, 2).await;
    assert_eq!(get_cart(&app, bob.access()).await["items"], json!([]));

    // Bob adds the same product and another; Alice's cart does not move.
    add(&app, bob.access(), &x, 5).await;
    let bobs = add(&app, bob.access(), &y, 1).await;
    assert_eq!(lines(&bobs), [(x.clone(), 5), (y.clone(), 1)]);
    assert_eq!(get_cart(&app, alice.access()).await, alices);

    // Bob cannot touch Alice's lines: his requests act on his own cart only.
    set(&app, bob.access(), &x, 1).await;
    app.delete(&item_path(&x), Some(bob.access()), None)
        .await
        .expect(200);
    app.delete(&item_path(&x), Some(bob.access()), None)
        .await
        .expect_error(404, "not_found");
    app.delete("/api/v1/cart", Some(bob.access()), None)
        .await
        .expect(200);
    assert_eq!(get_cart(&app, alice.access()).await, alices);
    assert_eq!(get_cart(&app, bob.access()).await["items"], json!([]));

    // And the other way round; the admin has a cart of their own too.
    add(&app, bob.access(), &y, 3).await;
    app.delete("/api/v1/cart", Some(alice.access()), None)
        .await
        .expect(200);
    assert_eq!(lines(&get_cart(&app, bob.access()).await), [(y.clone(), 3)]);
    assert_eq!(get_cart(&app, &admin.access).await["items"], json!([]));
    add(&app, &admin.access, &x, 1).await;
    assert_eq!(get_cart(&app, alice.access()).await["items"], json!([]));
    assert_eq!(lines(&get_cart(&app, bob.access()).await), [(y, 3)]);
}

async fn concurrent_adds_all_count(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(product(&app, &admin.access, &format!("rush {i}"), 25).await);
    }
    let user = app.new_user("rush").await;
    let token = user.access();
    let adds: Vec<(String, i64)> = (0..40)
        .map(|i| (ids[i % 4].clone(), 1 + (i % 3) as i64))
        .collect();
    let bodies: Vec<Value> = adds
        .iter()
        .map(|(id, quantity)| json!({"product_id": id, "quantity": quantity}))
        .collect();
    let answers = join_all(
        bodies
            .iter()
            .map(|body| app.post("/api/v1/cart/items", Some(token), body)),
    )
    .await;
    for answer in &answers {
        answer.expect(200);
    }
    let cart = get_cart(&app, token).await;
    let mut expected: Vec<(String, i64)> = ids.iter().map(|id| (id.clone(), 0)).collect();
    for (id, quantity) in &adds {
        expected.iter_mut().find(|(e, _)| e == id).unwrap().1 += quantity;
    }
    let mut got = lines(&cart);
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "every concurrent add counted once");
    let units: i64 = adds.iter().map(|(_, q)| q).sum();
    assert_eq!(cart["total_cents"], 25 * units);
}

/// `/metrics` shows the cart actors: how many are live, and (as the contract promises for every
/// kind) their mailbox depth.
async fn metrics_show_cart_actors_and_their_mailbox_depth(backend: Backend) {
    let app = App::start(backend).await;
    let user = app.new_user("metered").await;
    get_cart(&app, user.access()).await;
    let resp = app.get("/metrics", None).await;
    assert_eq!(resp.status, 200, "GET /metrics: {}", resp.text);
    let text = resp.text;
    let series = |name: &str| -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(&format!("{name}{{kind=\"cart\"}} ")))
            .map(|v| v.trim().parse().expect("a number"))
    };
    let live =
        series("actors_live").unwrap_or_else(|| panic!("no actors_live{{kind=\"cart\"}}:\n{text}"));
    assert!(live >= 1.0, "actors_live{{kind=\"cart\"}} = {live}");
    let activations = series("actor_activations_total")
        .unwrap_or_else(|| panic!("no actor_activations_total{{kind=\"cart\"}}:\n{text}"));
    assert!(activations >= 1.0);
    // The contract: "live actors and mailbox depth by kind". Whatever its name, a series about
    // mailbox depth labelled with the cart kind must be there.
    let depth = text.lines().filter(|l| !l.starts_with('#')).find(|l| {
        let name = l.split(['{', ' ']).next().unwrap_or_default();
        name.contains("mailbox") && name.contains("depth") && l.contains("kind=\"cart\"")
    });
    assert!(
        depth.is_some(),
        "/metrics has no mailbox depth series for kind=\"cart\":\n{}",
        text.lines()
            .filter(|l| l.contains("kind=\"cart\""))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
