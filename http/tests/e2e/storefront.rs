//! The shop in a browser: Debian's Chromium, driven through WebDriver, uses the storefront,
//! the merchant console and the admin console of a real `mall` on each backend, finding every
//! control by the accessible name API.md gives it, and checks each outcome through the API too.
//!
//! Two browser sessions per backend: `shopping` (merchant creates products, a shopper registers,
//! searches, buys two with a declined then an approved card, on a phone-sized screen; the
//! script-injection product; the Chinese page; the keyboard) and `admin_and_deadlines` (an
//! order expires while its page is open; an admin bans the shopper, whose open page then says
//! the session ended; an invalid permission regex). Both check that no request left the host
//! and that the console holds no error. With `MALL_UPDATE_SCREENSHOTS=1` the SQLite runs also
//! write the README's screenshots to `http/assets/screenshots/`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::Browser;
use crate::commerce::{ORDERS, address};
use crate::harness::{App, Backend, random_secret, unique_email};

both_backends!(shopping, admin_and_deadlines);

/// The script-injection product name (API.md's proof that product text is never markup).
const EVIL: &str = "<img src=x onerror=alert(1)>";

/// Where the README's screenshots live, when the run was asked to update them.
fn readme_shot(backend: Backend, name: &str) -> Option<PathBuf> {
    let wanted = std::env::var("MALL_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1");
    (wanted && backend == Backend::Sqlite).then(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("assets/screenshots")
            .join(name)
    })
}

/// A user with `roles` (set by the admin through the API); returns (id, email, password).
async fn user_with_roles(app: &App, tag: &str, roles: &[&str]) -> (String, String, String) {
    let email = unique_email(tag);
    let password = random_secret("pw");
    let created = app
        .register(&email, &password, &format!("{tag} user"))
        .await;
    let id = created["id"].as_str().expect("user id").to_owned();
    if !roles.is_empty() {
        let admin = app.admin().await;
        app.put(
            &format!("/api/v1/admin/users/{id}/roles"),
            Some(&admin.access),
            &json!({ "roles": roles }),
        )
        .await
        .expect(200);
    }
    (id, email, password)
}

/// The storefront's security headers, and the asset cache rules.
async fn check_headers(app: &App) {
    let page = app.get("/", None).await;
    assert_eq!(page.status, 200, "GET / without a token: {}", page.text);
    let csp = page
        .header("content-security-policy")
        .expect("a Content-Security-Policy on /");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(page.text.contains("name=\"viewport\""));
    for path in ["/merchant", "/admin"] {
        assert_eq!(app.get(path, None).await.status, 200, "GET {path}");
    }
    let start = page
        .text
        .find("/assets/shop.js?v=")
        .expect("shop.js is linked");
    let end = page.text[start..].find('"').expect("end of the link") + start;
    let versioned = &page.text[start..end];
    let asset = app.get(versioned, None).await;
    assert_eq!(asset.status, 200, "GET {versioned}");
    assert!(
        asset
            .header("cache-control")
            .is_some_and(|c| c.contains("immutable")),
        "{:?}",
        asset.header("cache-control")
    );
    let etag = asset.header("etag").expect("an ETag on assets");
    let again = app
        .request(reqwest::Method::GET, versioned)
        .header("If-None-Match", &etag)
        .send()
        .await;
    assert_eq!(again.status, 304, "If-None-Match with the ETag");
    assert_eq!(
        app.get("/assets/nothing.js", None).await.status,
        404,
        "an unknown asset"
    );
}

/// Every resource the page loaded came from its own origin (the browser's view).
async fn assert_same_origin(b: &Browser) {
    let foreign = b
        .js(
            "return performance.getEntriesByType('resource').map((e) => e.name)\
               .filter((n) => new URL(n).origin !== location.origin);",
            vec![],
        )
        .await;
    assert_eq!(
        foreign,
        json!([]),
        "the page loaded resources from elsewhere"
    );
}

async fn shopping(backend: Backend) {
    let app = App::start(backend).await;
    check_headers(&app).await;
    let (merchant_id, merchant_email, merchant_password) =
        user_with_roles(&app, "merchant", &["merchant"]).await;
    let b = Browser::start(&format!("shopping-{backend:?}")).await;
    b.run(async {
        // The merchant creates the products in the merchant console.
        b.goto(&app.url("/merchant")).await;
        b.fill(&b.field("Email").await, &merchant_email).await;
        b.fill(&b.field("Password").await, &merchant_password).await;
        b.click(&b.button("Log in").await).await;
        let create = b.button("Create product").await;
        let form = b.closest(&create, "form").await;
        b.fill(&b.field_in(&form, "Product name").await, "Bamboo tea set")
            .await;
        b.fill(
            &b.field_in(&form, "Description").await,
            "Six cups and a pot.",
        )
        .await;
        b.fill(&b.field_in(&form, "Price").await, "12.50").await;
        b.fill(&b.field_in(&form, "Stock").await, "5").await;
        // A category the API refuses (over 64 characters): its complaint is shown next to
        // the Categories field.
        let categories = b.field_in(&form, "Categories").await;
        b.fill(&categories, &format!("kitchen, {}", "t".repeat(70)))
            .await;
        b.click(&create).await;
        let next_to = "return document.getElementById(arguments[0].id + '-err').innerText;";
        let start = std::time::Instant::now();
        loop {
            let shown = b.js_on(&categories, next_to).await;
            if shown.as_str().is_some_and(|t| t.contains("64")) {
                break;
            }
            assert!(
                start.elapsed() < crate::browser::WAIT,
                "no error next to Categories: {shown}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        b.fill(&categories, "kitchen, tea").await;
        b.click(&create).await;
        b.wait_text("Product “Bamboo tea set” created.").await;
        let create = b.button("Create product").await;
        let form = b.closest(&create, "form").await;
        b.fill(&b.field_in(&form, "Product name").await, EVIL).await;
        b.fill(&b.field_in(&form, "Price").await, "1").await;
        b.fill(&b.field_in(&form, "Stock").await, "3").await;
        b.click(&create).await;
        b.wait_text(&format!("Product “{EVIL}” created.")).await;
        let listed = app.get("/api/v1/products?q=Bamboo", None).await.expect(200);
        assert_eq!(listed["total"], json!(1), "{listed}");
        let tea = &listed["items"][0];
        assert_eq!(tea["price_cents"], json!(1250));
        assert_eq!(tea["stock"], json!(5));
        assert_eq!(tea["merchant_id"], json!(merchant_id));
        let tea_id = tea["id"].as_str().expect("product id").to_owned();
        b.click(&b.button("Log out").await).await;
        b.wait_text("You are logged out.").await;

        // A shopper on a phone: registers, searches, adds two, checks out.
        b.phone(Some((390, 844))).await;
        b.goto(&app.url("/")).await;
        let width = b.js("return window.innerWidth;", vec![]).await;
        assert_eq!(width, json!(390), "the phone-sized viewport");
        b.assert_no_horizontal_scroll("catalog").await;
        // The keyboard: the first Tab reaches the skip link.
        b.js(
            "document.activeElement && document.activeElement.blur();",
            vec![],
        )
        .await;
        b.press("\u{E004}").await;
        let focused = b
            .js("return document.activeElement.innerText;", vec![])
            .await;
        assert_eq!(focused, json!("Skip to content"));
        b.click(&b.link("Register").await).await;
        let email = unique_email("shopper");
        let password = random_secret("pw");
        b.fill(&b.field("Name").await, "Mei").await;
        b.fill(&b.field("Email").await, &email).await;
        b.fill(&b.field("Password").await, &password).await;
        b.click(&b.button("Register").await).await;
        b.wait_text("Welcome, Mei!").await;
        b.button("Log out").await;
        let search = b.field("Search").await;
        b.fill(&search, "bamboo").await;
        b.keys(&search, "\u{E007}").await; // Enter submits the search
        b.wait_text("1 product").await;
        b.assert_no_horizontal_scroll("search results").await;
        // The category filter: "tea" keeps the tea set, not the product without categories.
        b.fill(&b.field("Search").await, "").await;
        b.click(&b.button("Find").await).await;
        b.wait_text("2 products").await;
        b.choose(&b.field("Category").await, "tea").await;
        b.wait_text("1 product").await;
        b.link("Bamboo tea set").await;
        b.click(&b.link("Bamboo tea set").await).await;
        b.wait_text("Six cups and a pot.").await;
        b.assert_no_horizontal_scroll("product page").await;
        b.fill(&b.field("Quantity").await, "2").await;
        b.click(&b.button("Add to cart").await).await;
        b.wait_text("Added 2 × Bamboo tea set to your cart.").await;
        b.click(&b.link("Cart").await).await;
        b.wait_text("Total: ¥25.00").await;
        b.assert_no_horizontal_scroll("cart").await;
        b.click(&b.button("Checkout").await).await;
        for (name, value) in [
            ("Recipient", "Mei Chen"),
            ("Phone", "13800000000"),
            ("Address line 1", "1 Century Avenue"),
            ("Address line 2", "Room 2"),
            ("City", "Shanghai"),
            ("Postal code", "200120"),
            ("Country", "China"),
            ("Card number", "4000 0000 0000 0002"),
            ("Expiry month", "12"),
            ("Expiry year", "2099"),
            ("CVC", "123"),
        ] {
            b.fill(&b.field(name).await, value).await;
        }
        b.assert_no_horizontal_scroll("checkout").await;
        b.click(&b.button("Pay").await).await;
        // Declined: a clear message, and the order can still be paid.
        b.wait_text("The card was declined.").await;
        b.wait_text("Waiting for payment").await;
        b.wait_text("Time left to pay").await;
        b.assert_no_horizontal_scroll("orders").await;
        let tokens = app.login(&email, &password).await;
        let orders = app.get(ORDERS, Some(&tokens.access)).await.expect(200);
        assert_eq!(orders["total"], json!(1), "{orders}");
        assert_eq!(orders["items"][0]["status"], json!("pending_payment"));
        let order_id = orders["items"][0]["id"]
            .as_str()
            .expect("order id")
            .to_owned();
        b.fill(&b.field("Card number").await, "4242424242424242")
            .await;
        b.fill(&b.field("Expiry month").await, "12").await;
        b.fill(&b.field("Expiry year").await, "2099").await;
        b.fill(&b.field("CVC").await, "123").await;
        b.click(&b.button("Pay").await).await;
        b.wait_text("Payment received").await;
        let card = b.css("article.order").await;
        b.wait_text_in(&card, "Paid").await;
        let order = app
            .get(&format!("{ORDERS}/{order_id}"), Some(&tokens.access))
            .await
            .expect(200);
        assert_eq!(order["status"], json!("paid"), "{order}");
        assert_eq!(order["total_cents"], json!(2500));
        assert_eq!(order["items"][0]["quantity"], json!(2));
        assert_eq!(order["items"][0]["product_id"], json!(tea_id));
        let tea = app
            .get(&format!("/api/v1/products/{tea_id}"), None)
            .await
            .expect(200);
        assert_eq!(tea["stock"], json!(3), "two of five were bought");

        // The product named like markup is shown as text: no image element, no dialog.
        b.click(&b.link("Shop").await).await;
        b.choose(&b.field("Category").await, "All categories").await;
        b.wait_text("2 products").await;
        let search = b.field("Search").await;
        b.fill(&search, "onerror").await;
        b.click(&b.button("Find").await).await;
        b.wait_text("1 product").await;
        let name = b.css("h2.pname").await;
        assert_eq!(b.text(&name).await, EVIL);
        let images = b
            .js("return document.querySelectorAll('img').length;", vec![])
            .await;
        assert_eq!(images, json!(0), "product text became an <img>");
        b.click(&b.link(EVIL).await).await;
        b.button("Add to cart").await;
        let h1 = b.css("h1").await;
        assert_eq!(b.text(&h1).await, EVIL);
        assert_eq!(b.dialog().await, None, "a dialog opened: script ran");

        // The Chinese page.
        b.phone(None).await;
        b.goto(&app.url("/?lang=zh")).await;
        b.field("搜索").await;
        b.button("退出登录").await;
        b.link("购物车").await;
        let lang = b.js("return document.documentElement.lang;", vec![]).await;
        assert_eq!(lang, json!("zh-CN"));
        b.goto(&app.url("/?lang=en")).await;
        b.field("Search").await;

        if let Some(path) = readme_shot(backend, "storefront.png") {
            b.click(&b.button("Log out").await).await;
            b.wait_text("You are logged out.").await;
            b.phone(Some((390, 760))).await;
            b.goto(&app.url("/#/")).await;
            b.wait_text("2 products").await;
            b.save_screenshot(&path).await;
            b.phone(None).await;
        }

        b.assert_clean_console(&[400]).await;
        assert_same_origin(&b).await;
        assert_eq!(
            b.spy.requests(),
            Vec::<String>::new(),
            "requests left the host"
        );
    })
    .await;
}

async fn admin_and_deadlines(backend: Backend) {
    let app = App::start_with(backend, |s| s.env("MALL__ORDER__PAYMENT_TIMEOUT_SECS", "8")).await;
    let admin = app.admin().await;
    let product = app
        .post(
            "/api/v1/products",
            Some(&admin.access),
            &json!({"name": "Silk scarf", "price_cents": 9900, "stock": 10, "categories": ["fashion"]}),
        )
        .await
        .expect(201);
    let product_id = product["id"].as_str().expect("product id").to_owned();
    let (user_id, email, password) = user_with_roles(&app, "shopper", &[]).await;
    let b = Browser::start(&format!("admin-{backend:?}")).await;
    b.run(async {
        // The shopper logs in; an order of theirs runs out of time while the page is open.
        b.goto(&app.url("/")).await;
        b.click(&b.link("Log in").await).await;
        b.fill(&b.field("Email").await, &email).await;
        b.fill(&b.field("Password").await, &password).await;
        b.click(&b.button("Log in").await).await;
        b.button("Log out").await;
        let tokens = app.login(&email, &password).await;
        let order = app
            .post(
                ORDERS,
                Some(&tokens.access),
                &json!({"items": [{"product_id": product_id, "quantity": 1}], "address": address()}),
            )
            .await
            .expect(201);
        let order_id = order["id"].as_str().expect("order id").to_owned();
        b.click(&b.link("Orders").await).await;
        b.wait_text("Waiting for payment").await;
        b.wait_text("Time left to pay").await;
        b.wait_text_within(
            "Cancelled (the time to pay ran out)",
            Duration::from_secs(30),
        )
        .await;
        let expired = app
            .get(&format!("{ORDERS}/{order_id}"), Some(&tokens.access))
            .await
            .expect(200);
        assert_eq!(expired["status"], json!("cancelled"), "{expired}");
        assert_eq!(expired["cancel_reason"], json!("expired"));
        let shopper_tab = b.tab().await;

        // An admin, in another tab, finds the shopper and bans them.
        b.new_tab().await;
        b.goto(&app.url("/admin")).await;
        b.fill(&b.field("Email").await, crate::harness::ADMIN_EMAIL)
            .await;
        let admin_password = app.process.admin_password.clone();
        b.fill(&b.field("Password").await, &admin_password).await;
        b.click(&b.button("Log in").await).await;
        b.wait_text("Database").await;
        b.fill(&b.field("Email").await, &email).await;
        b.click(&b.button("Find users").await).await;
        // The list of every user is replaced by the one that matches.
        b.wait_js("return document.querySelectorAll('article.user').length === 1;")
            .await;
        let ban = b.button("Ban").await;
        let user = b.closest(&ban, "article").await;
        b.wait_text_in(&user, &email).await;
        b.fill(&b.field_in(&user, "Reason").await, "chargebacks").await;
        b.click(&ban).await;
        b.wait_text("Banned: chargebacks").await;
        let seen = app
            .get(&format!("/api/v1/admin/users/{user_id}"), Some(&admin.access))
            .await
            .expect(200);
        assert_eq!(seen["banned"], json!(true), "{seen}");

        // An invalid regex in a permission: the API's error, next to the rule's path.
        b.fill(&b.field("Role name").await, "auditor").await;
        b.click(&b.button("Create role").await).await;
        let role = b.css("form[aria-label='Role auditor']").await;
        b.click(&b.button_in(&role, "Add rule").await).await;
        let path = b.field_in(&role, "Path (regular expression)").await;
        b.fill(&path, "/api/v1/(").await;
        b.click(&b.button_in(&role, "Save role").await).await;
        b.wait_text("Please correct the marked fields.").await;
        let invalid = b
            .js_on(&path, "return arguments[0].getAttribute('aria-invalid');")
            .await;
        assert_eq!(invalid, json!("true"), "the path field is not marked");
        let roles = app.get("/api/v1/admin/roles", Some(&admin.access)).await.expect(200);
        let auditor: Vec<&Value> = roles
            .as_array()
            .or_else(|| roles["items"].as_array())
            .expect("roles list")
            .iter()
            .filter(|r| r["name"] == json!("auditor"))
            .collect();
        assert_eq!(auditor.len(), 1, "{roles}");
        assert_eq!(auditor[0]["permissions"], json!([]), "the bad rule was stored");

        if let Some(path) = readme_shot(backend, "admin.png") {
            b.fill(&b.field("Email").await, "").await;
            b.click(&b.button("Find users").await).await;
            b.wait_js("return document.querySelectorAll('article.user').length === 2;")
                .await;
            b.js("window.scrollTo(0, 0);", vec![]).await;
            b.save_screenshot(&path).await;
        }
        // (The log is the browser's: the shopper's tab may have heard its 403 already.)
        b.assert_clean_console(&[400, 403]).await;

        // The shopper's open page notices that the session has ended.
        b.switch_to(&shopper_tab).await;
        b.wait_text("Your session has ended: your account has been suspended.")
            .await;
        b.link("Log in").await;
        b.assert_clean_console(&[400, 401, 403]).await;
        assert_same_origin(&b).await;
        assert_eq!(b.spy.requests(), Vec::<String>::new(), "requests left the host");
    })
    .await;
}

/// `bootstrap.demo_catalog = "on"` puts demo products on sale in an empty catalog, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_catalog() {
    let app = App::start_with(Backend::Sqlite, |s| {
        s.env("MALL__BOOTSTRAP__DEMO_CATALOG", "on")
    })
    .await;
    let listed = app
        .get("/api/v1/products?page_size=100", None)
        .await
        .expect(200);
    let total = listed["total"].as_i64().expect("total");
    assert!(total >= 5, "{listed}");
    let video = app
        .get("/api/v1/products?category=video", None)
        .await
        .expect(200);
    assert!(video["total"].as_i64().unwrap_or(0) >= 1, "{video}");
    // Without it (the tests' default: an explicit database.url), the catalog starts empty.
    let plain = App::start(Backend::Sqlite).await;
    let empty = plain.get("/api/v1/products", None).await.expect(200);
    assert_eq!(empty["total"], json!(0), "{empty}");
}
