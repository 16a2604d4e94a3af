//! The catalog: merchants create and change their products, anyone reads, searches and batches
//! them; validation, ownership, soft deletion, filters, sorts, paging and literal search.

use serde_json::{Value, json};

use crate::harness::{App, Backend, Server, User, assert_keys, assert_rfc3339};

both_backends!(
    merchants_own_their_products,
    product_bodies_are_validated,
    deleted_products_leave_the_catalog,
    batch_answers_in_the_order_asked,
    list_filters_and_sorts,
    list_pages_follow_the_contract,
    search_takes_special_characters_literally,
    openapi_documents_the_catalog,
);

const PRODUCTS: &str = "/api/v1/products";
const BATCH: &str = "/api/v1/products/batch";
const PRODUCT_FIELDS: &[&str] = &[
    "id",
    "name",
    "description",
    "price_cents",
    "stock",
    "categories",
    "image_url",
    "merchant_id",
    "created_at",
    "updated_at",
];

fn product_path(id: &str) -> String {
    format!("{PRODUCTS}/{id}")
}

/// Percent-encodes everything but the unreserved characters, for a query string.
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A new user whom the admin has made a merchant (and nothing else).
async fn merchant(app: &Server, admin: &str, tag: &str) -> User {
    let user = app.new_user(tag).await;
    app.put(
        &format!("/api/v1/admin/users/{}/roles", user.id),
        Some(admin),
        &json!({"roles": ["merchant"]}),
    )
    .await
    .expect(200);
    user
}

/// Creates a product, asserting 201 and the shape of the answer.
async fn create(app: &Server, token: &str, body: Value) -> Value {
    let product = app.post(PRODUCTS, Some(token), &body).await.expect(201);
    assert_keys(&product, PRODUCT_FIELDS, "created product");
    product
}

/// A product named `name` at `price_cents`, in `categories`.
async fn create_simple(
    app: &Server,
    token: &str,
    name: &str,
    price_cents: i64,
    categories: &[&str],
) -> Value {
    create(
        app,
        token,
        json!({"name": name, "price_cents": price_cents, "stock": 10, "categories": categories}),
    )
    .await
}

fn id_of(product: &Value) -> String {
    product["id"]
        .as_str()
        .unwrap_or_else(|| panic!("`id` is not a string: {product}"))
        .to_owned()
}

/// `GET /products?<query>` (anonymous), asserting 200 and the page shape.
async fn list(app: &Server, query: &str) -> Value {
    let page = app
        .get(&format!("{PRODUCTS}?{query}"), None)
        .await
        .expect(200);
    assert_keys(
        &page,
        &["items", "page", "page_size", "total"],
        "product page",
    );
    for item in page["items"].as_array().unwrap() {
        assert_keys(item, PRODUCT_FIELDS, "listed product");
    }
    page
}

/// The names on a page, in order.
fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The sorted names of every product matching `q`; also checks `total`.
async fn search(app: &Server, q: &str) -> Vec<String> {
    let page = list(app, &format!("q={}&page_size=100", enc(q))).await;
    let mut found = names(&page);
    assert_eq!(page["total"], found.len(), "total for q={q:?}: {page}");
    found.sort();
    found
}

async fn merchants_own_their_products(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let alice = merchant(&app, &admin.access, "alice").await;
    let bob = merchant(&app, &admin.access, "bob").await;
    let carol = app.new_user("carol").await;
    let dave = app.new_user("dave").await;

    // A merchant creates; the caller is the merchant whatever the body.
    let pot = create(
        &app,
        alice.access(),
        json!({
            "name": "Tea Pot",
            "description": "Cast iron",
            "price_cents": 2599,
            "stock": 7,
            "categories": [" kitchen ", "Tea", "kitchen"],
            "image_url": "https://cdn.example/pot.png"
        }),
    )
    .await;
    let pot_id = id_of(&pot);
    assert!(
        pot_id.parse::<i64>().is_ok(),
        "ids are numeric strings: {pot}"
    );
    assert_eq!(pot["name"], "Tea Pot");
    assert_eq!(pot["description"], "Cast iron");
    assert_eq!(pot["price_cents"], 2599);
    assert_eq!(pot["stock"], 7);
    let mut categories: Vec<&str> = pot["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    categories.sort_unstable();
    assert_eq!(
        categories,
        ["Tea", "kitchen"],
        "trimmed, without repeats: {pot}"
    );
    assert_eq!(pot["image_url"], "https://cdn.example/pot.png");
    assert_eq!(pot["merchant_id"], alice.id.as_str());
    let created_at = assert_rfc3339(&pot["created_at"], "created_at");
    assert_rfc3339(&pot["updated_at"], "updated_at");

    // Optional fields default: empty description, no picture, no categories.
    let mug = create(
        &app,
        bob.access(),
        json!({"name": "Mug", "price_cents": 0, "stock": 0}),
    )
    .await;
    let mug_id = id_of(&mug);
    assert_eq!(mug["description"], "");
    assert!(mug["image_url"].is_null(), "{mug}");
    assert_eq!(mug["categories"], json!([]));
    assert_eq!(mug["merchant_id"], bob.id.as_str());

    // Anyone reads, with or without a token.
    assert_eq!(app.get(&product_path(&pot_id), None).await.expect(200), pot);
    assert_eq!(
        app.get(&product_path(&pot_id), Some(carol.access()))
            .await
            .expect(200),
        pot
    );
    for unknown in ["1", &i64::MAX.to_string(), "0", "-5", "abc", "12x"] {
        app.get(&product_path(unknown), None)
            .await
            .expect_error(404, "not_found");
    }

    // Customers and anonymous callers cannot create.
    let body = json!({"name": "Nope", "price_cents": 1, "stock": 1});
    app.post(PRODUCTS, Some(carol.access()), &body)
        .await
        .expect_error(403, "forbidden");
    app.post(PRODUCTS, None, &body)
        .await
        .expect_error(401, "unauthenticated");
    app.patch(
        &product_path(&pot_id),
        Some(dave.access()),
        &json!({"stock": 0}),
    )
    .await
    .expect_error(403, "forbidden");
    app.delete(&product_path(&pot_id), Some(dave.access()), None)
        .await
        .expect_error(403, "forbidden");
    app.patch(&product_path(&pot_id), None, &json!({"stock": 0}))
        .await
        .expect_error(401, "unauthenticated");

    // Another merchant may neither change nor delete it.
    app.patch(
        &product_path(&pot_id),
        Some(bob.access()),
        &json!({"price_cents": 1}),
    )
    .await
    .expect_error(403, "forbidden");
    app.delete(&product_path(&pot_id), Some(bob.access()), None)
        .await
        .expect_error(403, "forbidden");
    assert_eq!(app.get(&product_path(&pot_id), None).await.expect(200), pot);

    // Its merchant changes only what is given.
    let patched = app
        .patch(
            &product_path(&pot_id),
            Some(alice.access()),
            &json!({"price_cents": 1999}),
        )
        .await
        .expect(200);
    assert_keys(&patched, PRODUCT_FIELDS, "patched product");
    assert_eq!(patched["price_cents"], 1999);
    for same in [
        "id",
        "name",
        "description",
        "stock",
        "categories",
        "image_url",
        "merchant_id",
        "created_at",
    ] {
        assert_eq!(patched[same], pot[same], "{same} changed: {patched}");
    }
    assert!(assert_rfc3339(&patched["updated_at"], "updated_at") >= created_at);

    // Every field at once; `image_url: null` removes the picture.
    let patched = app
        .patch(
            &product_path(&pot_id),
            Some(alice.access()),
            &json!({
                "name": "Green Tea Pot",
                "description": "Cast iron, 1 l",
                "price_cents": 0,
                "stock": 0,
                "categories": ["teaware"],
                "image_url": null
            }),
        )
        .await
        .expect(200);
    assert_eq!(patched["name"], "Green Tea Pot");
    assert_eq!(patched["description"], "Cast iron, 1 l");
    assert_eq!(patched["price_cents"], 0);
    assert_eq!(patched["stock"], 0);
    assert_eq!(patched["categories"], json!(["teaware"]));
    assert!(patched["image_url"].is_null(), "{patched}");
    assert_eq!(
        app.get(&product_path(&pot_id), None).await.expect(200),
        patched
    );

    // A picture again.
    let patched = app
        .patch(
            &product_path(&pot_id),
            Some(alice.access()),
            &json!({"image_url": "http://cdn.example/pot2.png"}),
        )
        .await
        .expect(200);
    assert_eq!(patched["image_url"], "http://cdn.example/pot2.png");
    assert_eq!(patched["name"], "Green Tea Pot");

    // An empty change changes nothing.
    let same = app
        .patch(&product_path(&pot_id), Some(alice.access()), &json!({}))
        .await
        .expect(200);
    assert_eq!(same, patched);

    // An admin may change and delete anyone's product.
    let by_admin = app
        .patch(
            &product_path(&mug_id),
            Some(&admin.access),
            &json!({"stock": 3}),
        )
        .await
        .expect(200);
    assert_eq!(by_admin["stock"], 3);
    assert_eq!(
        by_admin["merchant_id"],
        bob.id.as_str(),
        "the merchant stays"
    );
    app.delete(&product_path(&mug_id), Some(&admin.access), None)
        .await
        .expect(204);
    app.get(&product_path(&mug_id), None)
        .await
        .expect_error(404, "not_found");

    // The merchant deletes its own; then it is gone for every route.
    let resp = app
        .delete(&product_path(&pot_id), Some(alice.access()), None)
        .await;
    resp.expect(204);
    assert!(resp.text.is_empty(), "204 has no body: {:?}", resp.text);
    app.get(&product_path(&pot_id), None)
        .await
        .expect_error(404, "not_found");
    app.patch(
        &product_path(&pot_id),
        Some(alice.access()),
        &json!({"stock": 1}),
    )
    .await
    .expect_error(404, "not_found");
    app.delete(&product_path(&pot_id), Some(alice.access()), None)
        .await
        .expect_error(404, "not_found");
    app.delete(&product_path("not-a-number"), Some(alice.access()), None)
        .await
        .expect_error(404, "not_found");
    app.patch(
        &product_path("42"),
        Some(&admin.access),
        &json!({"stock": 1}),
    )
    .await
    .expect_error(404, "not_found");
}

async fn product_bodies_are_validated(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let alice = merchant(&app, &admin.access, "alice").await;
    let good = || json!({"name": "Lamp", "price_cents": 100, "stock": 1});
    let with = |key: &str, value: Value| {
        let mut body = good();
        body[key] = value;
        body
    };

    // Boundaries that pass.
    create(&app, alice.access(), with("name", json!("n".repeat(200)))).await;
    create(&app, alice.access(), with("name", json!("é".repeat(200)))).await;
    create(
        &app,
        alice.access(),
        with("description", json!("d".repeat(5000))),
    )
    .await;
    create(&app, alice.access(), with("price_cents", json!(0))).await;
    create(&app, alice.access(), with("stock", json!(0))).await;
    create(&app, alice.access(), with("description", Value::Null)).await;

    let cases: Vec<(Value, &str)> = vec![
        (with("name", json!("")), "name"),
        (with("name", json!("   ")), "name"),
        (with("name", json!("n".repeat(201))), "name"),
        (with("description", json!("d".repeat(5001))), "description"),
        (with("price_cents", json!(-1)), "price_cents"),
        (with("stock", json!(-1)), "stock"),
        (with("categories", json!(["ok", " "])), "categories"),
        (with("categories", json!(["c".repeat(65)])), "categories"),
        (
            with(
                "categories",
                json!((0..21).map(|i| format!("c{i}")).collect::<Vec<_>>()),
            ),
            "categories",
        ),
        (
            with("image_url", json!("ftp://cdn.example/a.png")),
            "image_url",
        ),
        (with("image_url", json!("javascript:alert(1)")), "image_url"),
        (
            with(
                "image_url",
                json!(format!("https://x.example/{}", "p".repeat(2048))),
            ),
            "image_url",
        ),
        (with("merchant_id", json!(alice.id)), "merchant_id"),
        (with("id", json!("1")), "id"),
        (json!({"price_cents": 1, "stock": 1}), "name"),
    ];
    for (body, field) in &cases {
        let resp = app.post(PRODUCTS, Some(alice.access()), body).await;
        assert_eq!(resp.status, 400, "{body}: {}", resp.text);
        resp.expect_invalid_field(field);
    }

    // Wrong types are 400 too.
    for body in [
        with("price_cents", json!(9.99)),
        with("price_cents", json!("100")),
        with("stock", json!(1.5)),
        with("name", json!(5)),
        with("categories", json!("tea")),
    ] {
        app.post(PRODUCTS, Some(alice.access()), &body)
            .await
            .expect_error(400, "invalid_request");
    }
    app.request(reqwest::Method::POST, PRODUCTS)
        .bearer(alice.access())
        .raw_body(Some("application/json"), "[1, 2]")
        .send()
        .await
        .expect_error(400, "invalid_request");
    app.request(reqwest::Method::POST, PRODUCTS)
        .bearer(alice.access())
        .raw_body(Some("text/plain"), good().to_string())
        .send()
        .await
        .expect_error(415, "unsupported_media_type");

    // Every problem is reported at once.
    let details = app
        .post(
            PRODUCTS,
            Some(alice.access()),
            &json!({"name": "", "price_cents": -1, "stock": -2}),
        )
        .await
        .expect_error(400, "invalid_request");
    for field in ["name", "price_cents", "stock"] {
        assert!(details["fields"][field].is_string(), "{field} in {details}");
    }

    // Nothing invalid was stored.
    assert_eq!(list(&app, "page_size=100").await["total"], 6);

    // PATCH: the same rules, and null only for the picture.
    let lamp = create(&app, alice.access(), good()).await;
    let path = product_path(&id_of(&lamp));
    let patches: Vec<(Value, &str)> = vec![
        (json!({"name": ""}), "name"),
        (json!({"name": "n".repeat(201)}), "name"),
        (json!({"name": null}), "name"),
        (json!({"description": null}), "description"),
        (json!({"description": "d".repeat(5001)}), "description"),
        (json!({"price_cents": -1}), "price_cents"),
        (json!({"price_cents": null}), "price_cents"),
        (json!({"stock": -1}), "stock"),
        (json!({"stock": null}), "stock"),
        (json!({"categories": null}), "categories"),
        (json!({"categories": [""]}), "categories"),
        (json!({"image_url": "not a url"}), "image_url"),
        (json!({"merchant_id": "1"}), "merchant_id"),
        (json!({"version": 7}), "version"),
    ];
    for (body, field) in &patches {
        let resp = app.patch(&path, Some(alice.access()), body).await;
        assert_eq!(resp.status, 400, "PATCH {body}: {}", resp.text);
        resp.expect_invalid_field(field);
    }
    app.patch(&path, Some(alice.access()), &json!({"price_cents": 1.5}))
        .await
        .expect_error(400, "invalid_request");
    // A bad field spoils the whole change.
    app.patch(
        &path,
        Some(alice.access()),
        &json!({"name": "Changed", "stock": -1}),
    )
    .await
    .expect_invalid_field("stock");
    assert_eq!(app.get(&path, None).await.expect(200), lamp);
}

async fn deleted_products_leave_the_catalog(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let alice = merchant(&app, &admin.access, "alice").await;
    let kept = create_simple(&app, alice.access(), "Walnut desk", 30000, &["office"]).await;
    let gone = create_simple(&app, alice.access(), "Walnut chair", 9000, &["office"]).await;
    let (kept_id, gone_id) = (id_of(&kept), id_of(&gone));

    app.delete(&product_path(&gone_id), Some(alice.access()), None)
        .await
        .expect(204);

    app.get(&product_path(&gone_id), None)
        .await
        .expect_error(404, "not_found");
    let all = list(&app, "").await;
    assert_eq!(names(&all), ["Walnut desk"]);
    assert_eq!(all["total"], 1);
    let office = list(&app, "category=office").await;
    assert_eq!(names(&office), ["Walnut desk"]);
    assert_eq!(office["total"], 1);
    assert_eq!(search(&app, "walnut").await, ["Walnut desk"]);
    assert_eq!(search(&app, "chair").await, Vec::<String>::new());
    let batch = app
        .post(BATCH, None, &json!({"ids": [gone_id, kept_id]}))
        .await
        .expect(200);
    assert_eq!(batch["items"].as_array().unwrap().len(), 1, "{batch}");
    assert_eq!(batch["items"][0], kept);
    assert_eq!(batch["missing"], json!([gone_id]));

    for token in [alice.access(), admin.access.as_str()] {
        app.patch(
            &product_path(&gone_id),
            Some(token),
            &json!({"name": "back"}),
        )
        .await
        .expect_error(404, "not_found");
        app.delete(&product_path(&gone_id), Some(token), None)
            .await
            .expect_error(404, "not_found");
    }
}

async fn batch_answers_in_the_order_asked(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let alice = merchant(&app, &admin.access, "alice").await;
    let customer = app.new_user("customer").await;
    let p1 = create_simple(&app, alice.access(), "one", 1, &[]).await;
    let p2 = create_simple(&app, alice.access(), "two", 2, &["b"]).await;
    let p3 = create_simple(&app, alice.access(), "three", 3, &["c"]).await;
    let (id1, id2, id3) = (id_of(&p1), id_of(&p2), id_of(&p3));
    let unknown = i64::MAX.to_string();

    let asked = json!({"ids": [id3, id1, unknown, id3, "abc", id2, "abc", ""]});
    for token in [None, Some(customer.access())] {
        let resp = app.post(BATCH, token, &asked).await.expect(200);
        assert_keys(&resp, &["items", "missing"], "batch answer");
        assert_eq!(
            resp["items"],
            json!([p3, p1, p2]),
            "order asked, each once: {resp}"
        );
        assert_eq!(resp["missing"], json!([unknown, "abc", ""]), "{resp}");
    }

    let one = app
        .post(BATCH, None, &json!({"ids": [id2]}))
        .await
        .expect(200);
    assert_eq!(one["items"], json!([p2]));
    assert_eq!(one["missing"], json!([]));

    // 1..=100 ids.
    let hundred: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
    let resp = app
        .post(BATCH, None, &json!({"ids": hundred}))
        .await
        .expect(200);
    assert_eq!(resp["items"], json!([]));
    assert_eq!(resp["missing"].as_array().unwrap().len(), 100);
    let too_many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
    app.post(BATCH, None, &json!({"ids": too_many}))
        .await
        .expect_invalid_field("ids");
    app.post(BATCH, None, &json!({"ids": []}))
        .await
        .expect_invalid_field("ids");
    app.post(BATCH, None, &json!({}))
        .await
        .expect_invalid_field("ids");
    app.post(BATCH, None, &json!({"ids": [id1], "more": true}))
        .await
        .expect_invalid_field("more");
    app.post(BATCH, None, &json!({"ids": [1, 2]}))
        .await
        .expect_error(400, "invalid_request");
    app.post(BATCH, None, &json!({"ids": "1"}))
        .await
        .expect_error(400, "invalid_request");
}

async fn list_filters_and_sorts(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let alice = merchant(&app, &admin.access, "alice").await;
    let bob = merchant(&app, &admin.access, "bob").await;
    create(
        &app,
        alice.access(),
        json!({"name": "Tea Pot", "description": "Brews GREEN tea", "price_cents": 300, "stock": 1, "categories": ["Kitchen", "tea"]}),
    )
    .await;
    create(
        &app,
        bob.access(),
        json!({"name": "Mug", "description": "for green TEA or coffee", "price_cents": 100, "stock": 1, "categories": ["kitchen"]}),
    )
    .await;
    create_simple(&app, alice.access(), "Green Chair", 200, &["furniture"]).await;
    create_simple(&app, bob.access(), "Lamp", 200, &["furniture", "light"]).await;

    // Defaults: newest first, page 1 of 20.
    let all = list(&app, "").await;
    assert_eq!(names(&all), ["Lamp", "Green Chair", "Mug", "Tea Pot"]);
    assert_eq!(all["total"], 4);
    assert_eq!(all["page"], 1);
    assert_eq!(all["page_size"], 20);
    assert_eq!(names(&list(&app, "sort=newest").await), names(&all));
    // Equal prices keep the order of creation in each direction.
    assert_eq!(
        names(&list(&app, "sort=price_asc").await),
        ["Mug", "Green Chair", "Lamp", "Tea Pot"]
    );
    assert_eq!(
        names(&list(&app, "sort=price_desc").await),
        ["Tea Pot", "Lamp", "Green Chair", "Mug"]
    );
    for bad in ["cheapest", "PRICE_ASC", "price", "newest%20"] {
        app.get(&format!("{PRODUCTS}?sort={bad}"), None)
            .await
            .expect_invalid_field("sort");
    }

    // q: any case, in the name or the description.
    assert_eq!(
        search(&app, "GREEN").await,
        ["Green Chair", "Mug", "Tea Pot"]
    );
    assert_eq!(search(&app, "tea").await, ["Mug", "Tea Pot"]);
    assert_eq!(search(&app, "Coffee").await, ["Mug"]);
    assert_eq!(search(&app, "lamp").await, ["Lamp"]);
    assert_eq!(search(&app, "espresso").await, Vec::<String>::new());
    assert_eq!(search(&app, "").await.len(), 4);
    app.get(&format!("{PRODUCTS}?q={}", "q".repeat(201)), None)
        .await
        .expect_invalid_field("q");
    assert!(search(&app, &"q".repeat(200)).await.is_empty());

    // category: exact, case included.
    let kitchen = by_category(&app, "kitchen").await;
    assert_eq!(names(&kitchen), ["Mug"]);
    assert_eq!(kitchen["total"], 1);
    assert_eq!(names(&by_category(&app, "Kitchen").await), ["Tea Pot"]);
    assert_eq!(
        names(&by_category(&app, "furniture").await),
        ["Green Chair", "Lamp"]
    );
    assert_eq!(names(&by_category(&app, "light").await), ["Lamp"]);
    assert_eq!(by_category(&app, "furn").await["total"], 0);

    // Both, with a sort.
    let both = list(&app, "q=green&category=furniture&sort=price_desc").await;
    assert_eq!(names(&both), ["Green Chair"]);
    assert_eq!(both["total"], 1);
    let both = list(&app, "q=A&category=furniture&sort=price_desc").await;
    assert_eq!(names(&both), ["Lamp", "Green Chair"]);
}

/// The products of one category, cheapest first.
async fn by_category(app: &Server, category: &str) -> Value {
    list(app, &format!("category={}&sort=price_asc", enc(category))).await
}

async fn list_pages_follow_the_contract(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let alice = merchant(&app, &admin.access, "alice").await;
    for (i, price) in [500, 100, 400, 200, 300].into_iter().enumerate() {
        create_simple(&app, alice.access(), &format!("item {i}"), price, &["all"]).await;
    }

    let mut seen = Vec::new();
    for (page, expected) in [(1, 2), (2, 2), (3, 1)] {
        let body = list(&app, &format!("sort=price_asc&page={page}&page_size=2")).await;
        assert_eq!(body["page"], page, "{body}");
        assert_eq!(body["page_size"], 2, "{body}");
        assert_eq!(body["total"], 5, "{body}");
        assert_eq!(
            body["items"].as_array().unwrap().len(),
            expected,
            "page {page}: {body}"
        );
        seen.extend(
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["price_cents"].as_i64().unwrap()),
        );
    }
    assert_eq!(
        seen,
        [100, 200, 300, 400, 500],
        "pages neither overlap nor skip"
    );

    // Past the end: no items, the right total.
    for query in [
        "page=4&page_size=2",
        "page=2&page_size=100",
        "page=1000000",
        "category=all&page=9",
    ] {
        let body = list(&app, query).await;
        assert_eq!(body["items"], json!([]), "{query}: {body}");
        assert_eq!(body["total"], 5, "{query}: {body}");
    }
    let body = list(&app, "page_size=100").await;
    assert_eq!(body["items"].as_array().unwrap().len(), 5);
    assert_eq!(
        list(&app, "page_size=1").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    for (query, field) in [
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page_size=-1", "page_size"),
        ("page=0", "page"),
        ("page=-1", "page"),
    ] {
        app.get(&format!("{PRODUCTS}?{query}"), None)
            .await
            .expect_invalid_field(field);
    }
    app.get(&format!("{PRODUCTS}?page=abc"), None)
        .await
        .expect_error(400, "invalid_request");
}

async fn search_takes_special_characters_literally(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let alice = merchant(&app, &admin.access, "alice").await;
    for name in [
        "100% cotton",
        "1000 cotton",
        "snake_case",
        "snakeXcase",
        "O'Brien",
        "OBrien",
        "back\\slash",
        "backslash",
        "a.*b",
        "axxb",
        "ab",
    ] {
        create_simple(&app, alice.access(), name, 100, &[]).await;
    }
    let cases: &[(&str, &[&str])] = &[
        ("%", &["100% cotton"]),
        ("100%", &["100% cotton"]),
        ("0%", &["100% cotton"]),
        ("_", &["snake_case"]),
        ("e_c", &["snake_case"]),
        ("snake_case", &["snake_case"]),
        ("'", &["O'Brien"]),
        ("o'brien", &["O'Brien"]),
        ("' OR '1'='1", &[]),
        ("\\", &["back\\slash"]),
        ("k\\s", &["back\\slash"]),
        ("\\s", &["back\\slash"]),
        (".*", &["a.*b"]),
        ("a.*b", &["a.*b"]),
        (".", &["a.*b"]),
        ("*", &["a.*b"]),
        ("cotton", &["100% cotton", "1000 cotton"]),
        ("1000", &["1000 cotton"]),
    ];
    for (q, expected) in cases {
        assert_eq!(search(&app, q).await, *expected, "q={q:?}");
    }
    // The same characters as a category match only that exact category.
    create_simple(&app, alice.access(), "tagged", 1, &["50%_off"]).await;
    create_simple(&app, alice.access(), "other", 1, &["50XXoff"]).await;
    let found = list(&app, &format!("category={}", enc("50%_off"))).await;
    assert_eq!(names(&found), ["tagged"]);
    let found = list(&app, &format!("category={}", enc("50%"))).await;
    assert_eq!(found["total"], 0);
}

async fn openapi_documents_the_catalog(backend: Backend) {
    let app = App::start(backend).await;
    let doc = app.get("/api/v1/openapi.json", None).await.expect(200);
    let paths = &doc["paths"];
    for (path, methods) in [
        ("/api/v1/products", &["get", "post"][..]),
        ("/api/v1/products/batch", &["post"][..]),
        ("/api/v1/products/{id}", &["get", "patch", "delete"][..]),
    ] {
        for method in methods {
            assert!(
                paths[path][method].is_object(),
                "{method} {path} is not documented"
            );
        }
    }
    assert!(
        doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "catalog"),
        "no catalog tag"
    );
    // `batch` is not taken for a product id, and a wrong method on it is not a product lookup.
    assert_ne!(app.get(BATCH, None).await.status, 200);
}
