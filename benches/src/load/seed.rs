//! Seeding through the API: the admin logs in, customers register and log in, the admin creates
//! the products (one of them the flash-sale product with little stock).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};

use super::args::Options;
use super::bounded;
use super::client::{Api, Reply};

/// Words product names and descriptions are made of; searches look for them.
pub const WORDS: [&str; 20] = [
    "red", "blue", "green", "quiet", "heavy", "light", "smart", "classic", "vintage", "compact",
    "lamp", "chair", "kettle", "mug", "desk", "shirt", "boot", "clock", "pen", "bag",
];

const CATEGORIES: [&str; 5] = ["home", "office", "outdoor", "kitchen", "garden"];

/// The stock of every ordinary product: far more than a run can buy.
pub const PLENTY: i64 = 1_000_000;

/// A customer, logged in.
#[derive(Debug, Clone)]
pub struct User {
    /// Its place among the seeded users.
    pub index: usize,
    /// Its email.
    pub email: String,
    /// Its id.
    pub id: String,
    /// An access token.
    pub token: String,
}

/// A product and the stock it was created with.
#[derive(Debug, Clone)]
pub struct Product {
    /// Its id.
    pub id: String,
    /// Its stock at creation.
    pub initial_stock: i64,
}

/// What seeding made.
pub struct Seeded {
    /// The admin's access token.
    pub admin_token: String,
    /// The customers.
    pub users: Vec<User>,
    /// The ordinary products.
    pub products: Vec<Product>,
    /// The flash-sale product.
    pub flash: Product,
    /// How long it took.
    pub elapsed: Duration,
}

/// Why a reply is not what seeding needed, with a hint for the usual causes.
fn refusal(what: &str, r: &Reply) -> String {
    let hint = match r.status {
        429 => " (rate limited: start the mall with MALL__RATE_LIMIT__ENABLED=false)",
        _ => "",
    };
    format!("{what}: {}{hint}", r.describe())
}

/// Logs in; the access token.
pub async fn login(api: &Api, email: &str, password: &str) -> Result<String, Reply> {
    let r = api
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"email": email, "password": password}),
        )
        .await;
    match r.json().get("access_token").and_then(Value::as_str) {
        Some(t) if r.status == 200 => Ok(t.to_owned()),
        _ => Err(r),
    }
}

/// Seeds `users` customers and `opts.products` products (plus the flash-sale one), named
/// after `run`.
#[expect(
    clippy::expect_used,
    reason = "a load tool: a panicked client or a broken invariant of its own is a bug to surface at once"
)]
pub async fn seed(api: &Api, run: &str, opts: &Options, users: usize) -> Result<Seeded, String> {
    let (admin_email, admin_password) = (opts.admin_email.as_str(), opts.admin_password.as_str());
    let (products, flash_stock) = (opts.products, opts.flash_stock);
    let concurrency = opts.seed_concurrency;
    let started = Instant::now();
    let r = api.get("/healthz", None).await;
    if r.status != 200 {
        return Err(refusal(
            &format!("no mall answering at {}/healthz", api.base()),
            &r,
        ));
    }
    let admin_token = login(api, admin_email, admin_password).await.map_err(|r| {
        refusal(
            &format!(
                "the admin {admin_email} cannot log in (start the mall with \
                     MALL__BOOTSTRAP__ADMIN_EMAIL/MALL__BOOTSTRAP__ADMIN_PASSWORD matching \
                     --admin-email/--admin-password)"
            ),
            &r,
        )
    })?;

    eprintln!("seeding {users} customers ({concurrency} at a time; argon2 on the server)...");
    let password = format!("load-password-{run}");
    let registered = bounded((0..users).collect(), concurrency, |i| {
        let api = api.clone();
        let email = format!("load-{run}-{i}@example.com");
        let password = password.clone();
        async move {
            let r = api
                .post(
                    "/api/v1/users",
                    None,
                    &json!({"email": email, "password": password, "name": format!("Load customer {i}")}),
                )
                .await;
            let id = match r.json().get("id").and_then(Value::as_str) {
                Some(id) if r.status == 201 => id.to_owned(),
                _ => return Err(refusal(&format!("registering {email}"), &r)),
            };
            let token = login(&api, &email, &password)
                .await
                .map_err(|r| refusal(&format!("logging in {email}"), &r))?;
            Ok(User {
                index: i,
                email,
                id,
                token,
            })
        }
    })
    .await;
    let users: Vec<User> = registered.into_iter().collect::<Result<_, _>>()?;

    eprintln!("seeding {products} products and the flash-sale product as the admin...");
    let admin = Arc::new(admin_token.clone());
    let made = bounded((0..=products).collect(), concurrency.max(8), |i| {
        let api = api.clone();
        let admin = admin.clone();
        let flash = i == products;
        let (adj, noun, category, price) = {
            let mut rng = rand::rng();
            (
                WORDS[rng.random_range(0..10)],
                WORDS[rng.random_range(10..20)],
                CATEGORIES[rng.random_range(0..CATEGORIES.len())],
                rng.random_range(100..100_000i64),
            )
        };
        let body = if flash {
            json!({
                "name": format!("Flash sale {adj} {noun} load-{run}"),
                "description": format!("Limited stock, one per order (run {run})."),
                "price_cents": price,
                "stock": flash_stock,
                "categories": ["flash-sale", category],
            })
        } else {
            json!({
                "name": format!("{adj} {noun} load-{run}-{i}"),
                "description": format!("A {adj} {noun} made for load tests (run {run})."),
                "price_cents": price,
                "stock": PLENTY,
                "categories": [category],
            })
        };
        async move {
            let r = api.post("/api/v1/products", Some(&admin), &body).await;
            let v = r.json();
            match (
                v.get("id").and_then(Value::as_str),
                v.get("stock").and_then(Value::as_i64),
            ) {
                (Some(id), Some(stock)) if r.status == 201 => Ok(Product {
                    id: id.to_owned(),
                    initial_stock: stock,
                }),
                _ => Err(refusal("creating a product as the admin", &r)),
            }
        }
    })
    .await;
    let mut products: Vec<Product> = made.into_iter().collect::<Result<_, _>>()?;
    let flash = products
        .pop()
        .expect("the flash-sale product was made last");
    Ok(Seeded {
        admin_token,
        users,
        products,
        flash,
        elapsed: started.elapsed(),
    })
}
