//! The scenarios: what one virtual client does, in a loop, until the deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::client::Api;
use super::report::Recorder;
use super::seed::{User, WORDS};

/// A kind of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Anonymous catalog reads.
    Browse,
    /// Cart edits by logged-in customers.
    Cart,
    /// Whole purchases: fill the cart, check out with a good card.
    Checkout,
    /// Many buyers of one product with little stock.
    FlashSale,
}

impl Scenario {
    /// Every scenario, in report order.
    pub const ALL: [Scenario; 4] = [
        Scenario::Browse,
        Scenario::Cart,
        Scenario::Checkout,
        Scenario::FlashSale,
    ];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Browse => "browse",
            Scenario::Cart => "cart",
            Scenario::Checkout => "checkout",
            Scenario::FlashSale => "flash-sale",
        }
    }

    /// The scenario of a name.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether each of its clients needs a customer of its own.
    pub fn needs_user(self) -> bool {
        !matches!(self, Scenario::Browse)
    }
}

// Operation names, as they appear in the report.
const GET_PRODUCT: &str = "GET /api/v1/products/{id}";
const LIST_PRODUCTS: &str = "GET /api/v1/products (list)";
const SEARCH_PRODUCTS: &str = "GET /api/v1/products?q= (search)";
const ADD_ITEM: &str = "POST /api/v1/cart/items";
const SET_ITEM: &str = "PUT /api/v1/cart/items/{id}";
const GET_CART: &str = "GET /api/v1/cart";
const EMPTY_CART: &str = "DELETE /api/v1/cart";
const CHECKOUT: &str = "POST /api/v1/checkout";
const PLACE_ORDER: &str = "POST /api/v1/orders";
const OPEN_PAYMENT: &str = "POST /api/v1/payments";
const CONFIRM_PAYMENT: &str = "POST /api/v1/payments/{id}/confirm";

/// Cart lines a cart client keeps before it removes its oldest.
const CART_LINES: usize = 10;

/// The card that every purchase pays with (the simulated gateway approves it).
pub fn good_card() -> Value {
    json!({"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"})
}

/// The shipping address of every order.
pub fn address() -> Value {
    json!({
        "name": "Load Tester",
        "phone": "+86 10 5555 0100",
        "line1": "1 Benchmark Road",
        "city": "Beijing",
        "postal_code": "100000",
        "country": "CN"
    })
}

/// What every client shares.
pub struct Shared {
    /// The API, at home on the first target (each client is given its own home).
    pub api: Api,
    /// The run's id, part of every `Idempotency-Key`.
    pub run: String,
    /// Whether the POSTs that honour one carry an `Idempotency-Key`.
    pub idempotency_keys: bool,
    /// Ordinary products (plenty of stock).
    pub products: Vec<String>,
    /// The flash-sale product.
    pub flash_product: String,
    /// Whether flash-sale buyers pay.
    pub flash_pay: bool,
}

/// An order a client was answered 201 for.
#[derive(Debug, Clone)]
pub struct Ack {
    /// The customer's index among the seeded users.
    pub user: usize,
    /// The order.
    pub order_id: String,
    /// Whether the client was told it is paid.
    pub paid: bool,
}

/// What one client brings back.
pub struct ClientOutput {
    /// Its measurements.
    pub rec: Recorder,
    /// When it stopped.
    pub finished: Instant,
    /// Orders it placed.
    pub acks: Vec<Ack>,
}

/// One client to run.
pub struct ClientPlan {
    /// Its scenario.
    pub scenario: Scenario,
    /// Its customer, for the scenarios that need one.
    pub user: Option<User>,
    /// Seeds its random choices; unique in the run.
    pub seed: u64,
    /// Its place among the phase's clients: its home target is `targets[home % n]`.
    pub home: usize,
}

/// What a scenario's clients brought back together.
pub struct ScenarioOutput {
    /// Which.
    pub scenario: Scenario,
    /// How many clients ran it.
    pub clients: usize,
    /// From the common start to its last client stopping.
    pub elapsed: Duration,
    /// Their measurements, merged.
    pub rec: Recorder,
    /// Every order they placed.
    pub acks: Vec<Ack>,
    /// With `--rate`: the schedule followed and the arrivals missed.
    pub open: Option<super::open::OpenRun>,
}

/// Runs `clients` at once from now until `deadline`, and merges what they measured per scenario
/// (in the order of `Scenario::ALL`).
#[expect(
    clippy::expect_used,
    reason = "a load tool: a panicked client or a broken invariant of its own is a bug to surface at once"
)]
pub async fn run_clients(
    shared: Arc<Shared>,
    clients: Vec<ClientPlan>,
    duration: Duration,
) -> Vec<ScenarioOutput> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut set = JoinSet::new();
    for plan in clients {
        let shared = shared.clone();
        set.spawn(async move {
            let scenario = plan.scenario;
            let out = run_client(shared, plan, deadline).await;
            (scenario, out)
        });
    }
    let mut outputs: Vec<ScenarioOutput> = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (scenario, out) = joined.expect("a load client panicked");
        let slot = match outputs.iter().position(|o| o.scenario == scenario) {
            Some(i) => &mut outputs[i],
            None => {
                outputs.push(ScenarioOutput {
                    scenario,
                    clients: 0,
                    elapsed: Duration::ZERO,
                    rec: Recorder::default(),
                    acks: Vec::new(),
                    open: None,
                });
                outputs.last_mut().expect("just pushed")
            }
        };
        slot.clients += 1;
        slot.elapsed = slot.elapsed.max(out.finished.duration_since(start));
        slot.rec.merge(out.rec);
        slot.acks.extend(out.acks);
    }
    outputs.sort_by_key(|o| Scenario::ALL.iter().position(|s| *s == o.scenario));
    outputs
}

async fn run_client(shared: Arc<Shared>, plan: ClientPlan, deadline: Instant) -> ClientOutput {
    let mut c = Client::new(shared, plan, deadline);
    match c.scenario {
        Scenario::Browse => c.browse().await,
        Scenario::Cart => c.cart().await,
        Scenario::Checkout => c.checkout().await,
        Scenario::FlashSale => c.flash_sale().await,
    }
    ClientOutput {
        rec: c.rec,
        finished: Instant::now(),
        acks: c.acks,
    }
}

/// One virtual client: a customer (for the scenarios that need one) with its own random
/// choices and measurements. The closed loop runs one per task in a loop; the open loop
/// ([`super::open`]) keeps a pool of them and lends one to each arrival.
pub struct Client {
    shared: Arc<Shared>,
    scenario: Scenario,
    /// The API at this client's home target.
    api: Api,
    /// Its plan's seed, part of its `Idempotency-Key`s.
    seed: u64,
    /// `Idempotency-Key`s made so far.
    keys: u64,
    rng: SmallRng,
    rec: Recorder,
    acks: Vec<Ack>,
    user: Option<User>,
    deadline: Instant,
    /// Where this customer is in its cart cycle.
    cart: CartCycle,
}

/// The next request of a cart client's cycle: add a line, change its quantity, read the cart,
/// and, past [`CART_LINES`] lines, remove the oldest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CartNext {
    Add,
    Set,
    Get,
    Remove,
}

/// A cart client's cycle between requests.
#[derive(Debug)]
struct CartCycle {
    next: CartNext,
    /// The product of the last add (the one the next set changes).
    product: String,
    /// Lines added, oldest first.
    lines: Vec<String>,
}

impl Client {
    /// The client of `plan`, running until `deadline` (the open loop passes one it never
    /// checks: each arrival is one step).
    pub fn new(shared: Arc<Shared>, plan: ClientPlan, deadline: Instant) -> Client {
        Client {
            api: shared.api.homed(plan.home),
            shared,
            scenario: plan.scenario,
            seed: plan.seed,
            keys: 0,
            rng: SmallRng::seed_from_u64(plan.seed),
            rec: Recorder::default(),
            acks: Vec::new(),
            user: plan.user,
            deadline,
            cart: CartCycle {
                next: CartNext::Add,
                product: String::new(),
                lines: Vec::new(),
            },
        }
    }

    /// Its scenario.
    pub fn scenario(&self) -> Scenario {
        self.scenario
    }

    /// What it measured and the orders it was acknowledged, handed over at the end.
    pub fn into_parts(self) -> (Recorder, Vec<Ack>) {
        (self.rec, self.acks)
    }

    /// Its measurements so far, to add an open-loop arrival's figures to.
    pub fn recorder(&mut self) -> &mut Recorder {
        &mut self.rec
    }

    /// The unmeasured start of a customer's scenario: an empty cart (an earlier scenario may
    /// have used this customer).
    pub async fn prepare(&mut self) {
        if matches!(self.scenario, Scenario::Cart | Scenario::Checkout) {
            let token = self.token().map(str::to_owned);
            let _ = self.api().delete("/api/v1/cart", token.as_deref()).await;
        }
    }

    /// One open-loop arrival of its scenario: one browse request, one request of the cart
    /// cycle, one whole purchase, or one flash-sale order (with its payment when buyers pay).
    /// The operation it was when it was one request, so its latency from the schedule can be
    /// reported per request kind too.
    pub async fn step(&mut self) -> Option<&'static str> {
        match self.scenario {
            Scenario::Browse => Some(self.browse_once().await),
            Scenario::Cart => {
                let op = match self.cart.next {
                    CartNext::Add => ADD_ITEM,
                    CartNext::Set | CartNext::Remove => SET_ITEM,
                    CartNext::Get => GET_CART,
                };
                self.cart_op().await;
                Some(op)
            }
            Scenario::Checkout => {
                self.checkout_once().await;
                None
            }
            Scenario::FlashSale => {
                self.flash_once().await;
                (!self.shared.flash_pay).then_some(PLACE_ORDER)
            }
        }
    }

    fn running(&self) -> bool {
        Instant::now() < self.deadline
    }

    fn api(&self) -> &Api {
        &self.api
    }

    /// A fresh `Idempotency-Key` for one logical request (its retries reuse it), unique in the
    /// run and across runs; `None` with `--no-idempotency-keys`.
    fn key(&mut self) -> Option<String> {
        if !self.shared.idempotency_keys {
            return None;
        }
        self.keys += 1;
        Some(format!(
            "load-{}-{}-{}",
            self.shared.run, self.seed, self.keys
        ))
    }

    fn token(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.token.as_str())
    }

    fn user_index(&self) -> usize {
        self.user.as_ref().map_or(usize::MAX, |u| u.index)
    }

    fn random_product(&mut self) -> String {
        let i = self.rng.random_range(0..self.shared.products.len());
        self.shared.products[i].clone()
    }

    async fn browse(&mut self) {
        while self.running() {
            self.browse_once().await;
        }
    }

    /// 60 % one product, 20 % a page of the list, 20 % a search; the operation it was.
    async fn browse_once(&mut self) -> &'static str {
        const SORTS: [&str; 3] = ["newest", "price_asc", "price_desc"];
        let roll = self.rng.random_range(0..100);
        if roll < 60 {
            // Now and then the hot flash-sale product, like a real sale page.
            let id = if self.rng.random_range(0..10) == 0 {
                self.shared.flash_product.clone()
            } else {
                self.random_product()
            };
            let r = self
                .api()
                .get(&format!("/api/v1/products/{id}"), None)
                .await;
            self.rec.record_plain(GET_PRODUCT, &r);
            GET_PRODUCT
        } else if roll < 80 {
            let page = self.rng.random_range(1..=5);
            let sort = SORTS[self.rng.random_range(0..SORTS.len())];
            let path = format!("/api/v1/products?page={page}&page_size=20&sort={sort}");
            let r = self.api().get(&path, None).await;
            self.rec.record_plain(LIST_PRODUCTS, &r);
            LIST_PRODUCTS
        } else {
            let word = WORDS[self.rng.random_range(0..WORDS.len())];
            let path = format!("/api/v1/products?q={word}&page_size=20");
            let r = self.api().get(&path, None).await;
            self.rec.record_plain(SEARCH_PRODUCTS, &r);
            SEARCH_PRODUCTS
        }
    }

    /// Cart steps until the deadline, each a whole cycle (add, set, read, maybe remove).
    async fn cart(&mut self) {
        self.prepare().await;
        while self.running() {
            while !self.cart_op().await {}
        }
    }

    /// The next request of the cart cycle: add a line, change its quantity, read the cart;
    /// past a few lines, remove the oldest. True when it ended a cycle.
    async fn cart_op(&mut self) -> bool {
        let token = self.token().map(str::to_owned);
        let token = token.as_deref();
        match self.cart.next {
            CartNext::Add => {
                let p = self.random_product();
                let r = self
                    .api()
                    .post(
                        "/api/v1/cart/items",
                        token,
                        &json!({"product_id": p, "quantity": 1}),
                    )
                    .await;
                self.rec.record_plain(ADD_ITEM, &r);
                if r.ok() && !self.cart.lines.contains(&p) {
                    self.cart.lines.push(p.clone());
                }
                self.cart.product = p;
                self.cart.next = CartNext::Set;
                false
            }
            CartNext::Set => {
                let q = self.rng.random_range(1..=5);
                let r = self
                    .api()
                    .put(
                        &format!("/api/v1/cart/items/{}", self.cart.product),
                        token,
                        &json!({"quantity": q}),
                    )
                    .await;
                self.rec.record_plain(SET_ITEM, &r);
                self.cart.next = CartNext::Get;
                false
            }
            CartNext::Get => {
                let r = self.api().get("/api/v1/cart", token).await;
                self.rec.record_plain(GET_CART, &r);
                if self.cart.lines.len() > CART_LINES {
                    self.cart.next = CartNext::Remove;
                    false
                } else {
                    self.cart.next = CartNext::Add;
                    true
                }
            }
            CartNext::Remove => {
                let oldest = self.cart.lines.remove(0);
                let r = self
                    .api()
                    .put(
                        &format!("/api/v1/cart/items/{oldest}"),
                        token,
                        &json!({"quantity": 0}),
                    )
                    .await;
                self.rec.record_plain(SET_ITEM, &r);
                self.cart.next = CartNext::Add;
                true
            }
        }
    }

    /// Purchases until the deadline.
    async fn checkout(&mut self) {
        self.prepare().await;
        while self.running() {
            self.checkout_once().await;
        }
    }

    /// Put one to three products in the cart and check out with a good card.
    async fn checkout_once(&mut self) {
        let token = self.token().map(str::to_owned);
        let token = token.as_deref();
        let body = json!({"address": address(), "card": good_card()});
        let n = self.shared.products.len();
        let k = self.rng.random_range(1..=3).min(n);
        for i in rand::seq::index::sample(&mut self.rng, n, k) {
            let p = &self.shared.products[i];
            let q = self.rng.random_range(1..=3);
            let r = self
                .api()
                .post(
                    "/api/v1/cart/items",
                    token,
                    &json!({"product_id": p, "quantity": q}),
                )
                .await;
            self.rec.record_plain(ADD_ITEM, &r);
        }
        let key = self.key();
        let r = self
            .api()
            .post_keyed("/api/v1/checkout", token, &body, key.as_deref())
            .await;
        self.rec.record_plain(CHECKOUT, &r);
        if r.status == 201 {
            let v = r.json();
            let paid = v.pointer("/payment/status").and_then(Value::as_str) == Some("succeeded");
            if let Some(id) = v.pointer("/order/id").and_then(Value::as_str) {
                self.acks.push(Ack {
                    user: self.user_index(),
                    order_id: id.to_owned(),
                    paid,
                });
            }
            self.rec.count("orders_placed", 1);
            self.rec.count("orders_paid", u64::from(paid));
        } else {
            // Whatever went wrong, start the next purchase from an empty cart.
            let r = self.api().delete("/api/v1/cart", token).await;
            self.rec.record_plain(EMPTY_CART, &r);
        }
    }

    /// Order one unit of the flash-sale product until it is sold out, paying for each.
    async fn flash_sale(&mut self) {
        while self.running() {
            if !self.flash_once().await {
                break;
            }
        }
    }

    /// One order of one unit of the flash-sale product, paid for unless buyers do not pay.
    /// False when the answer said it is sold out.
    async fn flash_once(&mut self) -> bool {
        let token = self.token().map(str::to_owned);
        let token = token.as_deref();
        let order = json!({
            "items": [{"product_id": self.shared.flash_product, "quantity": 1}],
            "address": address(),
        });
        let key = self.key();
        let r = self
            .api()
            .post_keyed("/api/v1/orders", token, &order, key.as_deref())
            .await;
        self.rec.record(PLACE_ORDER, &r, |status, code| {
            status == 409 && code == Some("insufficient_stock")
        });
        if r.status == 409 && r.error_code().as_deref() == Some("insufficient_stock") {
            self.rec.count("sold_out_seen", 1);
            return false;
        }
        if r.status != 201 {
            return true;
        }
        let Some(order_id) = r
            .json()
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return true;
        };
        self.rec.count("orders_placed", 1);
        self.acks.push(Ack {
            user: self.user_index(),
            order_id: order_id.clone(),
            paid: false,
        });
        if !self.shared.flash_pay {
            return true;
        }
        let key = self.key();
        let r = self
            .api()
            .post_keyed(
                "/api/v1/payments",
                token,
                &json!({"order_id": order_id}),
                key.as_deref(),
            )
            .await;
        self.rec.record_plain(OPEN_PAYMENT, &r);
        let Some(payment_id) = r
            .ok()
            .then(|| {
                r.json()
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .flatten()
        else {
            return true;
        };
        let key = self.key();
        let r = self
            .api()
            .post_keyed(
                &format!("/api/v1/payments/{payment_id}/confirm"),
                token,
                &good_card(),
                key.as_deref(),
            )
            .await;
        self.rec.record_plain(CONFIRM_PAYMENT, &r);
        if r.status == 200 && r.json().get("status").and_then(Value::as_str) == Some("succeeded") {
            self.rec.count("orders_paid", 1);
            if let Some(ack) = self.acks.last_mut() {
                ack.paid = true;
            }
        }
        true
    }
}
