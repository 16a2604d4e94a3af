//! The cart actor behind `CartHandle`, on SQLite and PostgreSQL: concurrent adds, passivation,
//! eviction, a panicking actor, a stuck turn, two nodes over one database, deleted products,
//! and a node fenced off its shard (its cart, and its orders through `Services`, untouched).
//!
//! Each scenario is an `async fn name(cx: &Ctx)` on a freshly migrated database of its own;
//! `on_both_backends!(name)` turns it into the tests `name::sqlite` and `name::postgres`, each
//! inside an actix `System` (the registries host their actors on arbiters).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test, with its reason"
)]

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use std::sync::Arc;

use futures_util::future::join_all;
use mall_actors::cart::prices::{self, Prices};
use mall_actors::cart::{CartCmd, CartError, CartHandle, CartOp, CartView};
use mall_actors::cluster::ownership::OwnershipMetrics;
use mall_actors::cluster::{NotOwner, Ownership};
use mall_actors::order::OrderError;
use mall_actors::placement::{PlacementConfig, Placer};
use mall_actors::runtime::Deadline;
use mall_actors::runtime::{RuntimeConfig, RuntimeError, RuntimeMetrics};
use mall_actors::services::{Services, ServicesConfig};
use mall_db::domain::placement::WantedLine;
use mall_db::domain::{OrderStatus, UserId};
use mall_db::models::{NewProduct, NewUser};
use mall_db::repo::carts::{self, StoredCart};
use mall_db::repo::{fences, products, users};
use mall_db::testing::TestDatabase;
use mall_db::{Db, IdGenerator, PoolOptions, clock};

/// Generates, for each `async fn name(cx: &Ctx)`, a module `name` holding the tests `sqlite` and
/// `postgres` (`macro_rules!` cannot paste identifiers), each on a new migrated database.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[actix_rt::test]
            async fn sqlite() {
                let database = mall_db::testing::TestDatabase::sqlite().await;
                let cx = crate::Ctx::new(&database).await;
                super::$name(&cx).await;
            }

            #[actix_rt::test]
            async fn postgres() {
                let database = mall_db::testing::TestDatabase::postgres().await;
                let cx = crate::Ctx::new(&database).await;
                super::$name(&cx).await;
            }
        }
    )+};
}

on_both_backends!(
    concurrent_adds_to_one_cart_lose_nothing,
    passivated_cart_comes_back_identical,
    evicted_cart_comes_back_identical,
    panicking_actor_is_unavailable_then_recovers,
    stuck_turn_times_out_instead_of_hanging,
    two_nodes_interleaving_adds_lose_nothing,
    two_nodes_racing_lose_nothing_and_invent_nothing,
    deleted_and_unknown_products_cannot_be_added,
    cart_rules_hold_through_the_actor,
    a_node_fenced_off_its_shard_writes_nothing,
    an_order_on_a_node_fenced_off_its_shard_is_not_touched,
);

/// One generator for the whole test binary, so ids never repeat across tests.
static IDS: LazyLock<IdGenerator> = LazyLock::new(|| IdGenerator::new(11));

/// A test's database and what every scenario needs from it.
pub struct Ctx {
    /// Its `database.url` (for a second pool, like another node's).
    url: String,
    /// A pool with the default options.
    db: Db,
    /// The user who sells every product of the test.
    merchant: i64,
}

impl Ctx {
    /// Migrates `database`, connects and creates a merchant.
    pub async fn new(database: &TestDatabase) -> Ctx {
        let url = database.url().to_owned();
        let applied = mall_db::migrate::run_pending_async(&url)
            .await
            .expect("migrations apply to a fresh database");
        assert!(
            !applied.is_empty(),
            "a fresh database had nothing to migrate"
        );
        let db = Db::connect(&url, &PoolOptions::default()).expect("pool opens");
        let mut cx = Ctx {
            url,
            db,
            merchant: 0,
        };
        cx.merchant = cx.user().await;
        cx
    }

    /// A new user; returns its id.
    async fn user(&self) -> i64 {
        let now = clock::now();
        let id = IDS.next_id();
        let user = NewUser {
            id,
            email: format!("user-{id}@example.com"),
            email_norm: format!("user-{id}@example.com"),
            name: "Cart Tester".to_owned(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
            password_changed_at: now,
            created_at: now,
            updated_at: now,
        };
        let mut conn = self.db.write().await.expect("write connection");
        users::insert(&mut conn, user, &["customer".to_owned()])
            .await
            .expect("user inserts")
            .id
    }

    /// A new live product at `price_cents`; returns its id.
    async fn product(&self, name: &str, price_cents: i64) -> i64 {
        let now = clock::now();
        let product = NewProduct {
            id: IDS.next_id(),
            merchant_id: self.merchant,
            name: name.to_owned(),
            description: format!("{name}, for cart tests"),
            price_cents,
            stock: 1_000,
            image_url: None,
            created_at: now,
            updated_at: now,
        };
        let mut conn = self.db.write().await.expect("write connection");
        products::insert(&mut conn, product, &[])
            .await
            .expect("product inserts")
            .0
            .id
    }

    /// `n` new products priced 100, 101, ...
    async fn products(&self, n: usize) -> Vec<i64> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            ids.push(self.product(&format!("product {i}"), 100 + i as i64).await);
        }
        ids
    }

    /// Takes a product out of the catalog.
    async fn delete_product(&self, id: i64) {
        let mut conn = self.db.write().await.expect("write connection");
        let deleted = products::soft_delete(&mut conn, id, clock::now())
            .await
            .expect("soft delete");
        assert!(deleted, "product {id} was live");
    }

    /// Records `epoch` as the shard's fencing epoch, as a node claiming it does. (The write
    /// connection is the only one on SQLite: it is given back at once.)
    async fn record_epoch(&self, shard: u32, epoch: i64, node: &str) {
        let mut conn = self.db.write().await.expect("write connection");
        let advanced = fences::advance(&mut conn, shard, epoch, node, clock::now()).await;
        assert!(
            advanced.expect("epoch recorded"),
            "epoch {epoch} was not the newest"
        );
    }

    /// The user's cart straight from the database.
    async fn stored(&self, user: i64) -> StoredCart {
        let mut conn = self.db.read().await.expect("read connection");
        carts::load(&mut conn, user)
            .await
            .expect("cart loads")
            .unwrap_or_else(|| panic!("user {user} has no stored cart"))
    }

    /// A node on the test's pool.
    fn node(&self, config: RuntimeConfig) -> Node {
        Node::start(self.db.clone(), config)
    }

    /// A node with a pool of its own, as another process would have.
    fn other_node(&self, config: RuntimeConfig) -> Node {
        let db = Db::connect(&self.url, &PoolOptions::default()).expect("second pool opens");
        Node::start(db, config)
    }
}

/// A cluster node's shard table, of 4 shards, its lease held for a minute: it owns a shard
/// once a test says it acquired it.
fn clustered() -> Arc<Ownership> {
    let metrics = OwnershipMetrics::new(&prometheus::Registry::new()).expect("metrics register");
    let ownership = Ownership::clustered(4, metrics);
    ownership.renewed(Instant::now(), Duration::from_secs(60));
    ownership
}

/// A cart registry with a metrics registry of its own.
struct Node {
    carts: CartHandle,
    /// The price list its carts answer with (the HTTP layer forgets changed products in it).
    prices: Arc<Prices>,
    metrics: prometheus::Registry,
}

impl Node {
    fn start(db: Db, config: RuntimeConfig) -> Node {
        Node::start_owning(db, config, Ownership::single(1))
    }

    /// A node whose shards are those `ownership` says (a cluster node).
    fn start_owning(db: Db, config: RuntimeConfig, ownership: Arc<Ownership>) -> Node {
        let metrics = prometheus::Registry::new();
        let runtime = RuntimeMetrics::new(&metrics).expect("metrics register");
        let placer = Placer::start(db.clone(), PlacementConfig::default(), &metrics)
            .expect("metrics register");
        let prices = Arc::new(prices::prices(1 << 20, Duration::from_secs(60)));
        Node {
            carts: CartHandle::start_owned(
                db,
                placer,
                ownership,
                Arc::clone(&prices),
                config,
                &runtime,
            ),
            prices,
            metrics,
        }
    }

    /// The value of `name{kind="cart"}` as the metrics registry exposes it (0 when absent).
    fn metric(&self, name: &str) -> f64 {
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&self.metrics.gather())
            .expect("metrics encode");
        let series = format!("{name}{{kind=\"cart\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .map_or(0.0, |v| {
                v.trim()
                    .parse()
                    .unwrap_or_else(|e| panic!("{name}: bad value {v:?}: {e}"))
            })
    }

    fn is_resident(&self, user: i64) -> bool {
        self.carts.registry().is_resident(&user)
    }
}

/// Default settings, with a call timeout generous enough for a loaded test machine: these
/// scenarios are about what is answered, not how fast.
fn patient() -> RuntimeConfig {
    RuntimeConfig {
        call_timeout: Duration::from_secs(30),
        ..RuntimeConfig::default()
    }
}

/// Quantities by product, as a cart view shows them.
fn quantities(view: &CartView) -> BTreeMap<i64, i32> {
    view.items
        .iter()
        .map(|l| (l.product_id, l.quantity))
        .collect()
}

/// Quantities by product, as stored.
fn stored_quantities(cart: &StoredCart) -> BTreeMap<i64, i32> {
    cart.lines
        .iter()
        .map(|l| (l.product_id, l.quantity))
        .collect()
}

/// Product ids in the order the view shows them.
fn order(view: &CartView) -> Vec<i64> {
    view.items.iter().map(|l| l.product_id).collect()
}

/// Product ids in the order they are stored (by position).
fn stored_order(cart: &StoredCart) -> Vec<i64> {
    cart.lines.iter().map(|l| l.product_id).collect()
}

#[track_caller]
fn assert_unavailable<T: std::fmt::Debug>(result: &Result<T, CartError>, what: &str) {
    assert!(
        matches!(result, Err(CartError::Unavailable(_))),
        "{what}: expected CartError::Unavailable, got {result:?}"
    );
}

/// 200 adds sent at once to one user's cart: every one is applied exactly once, as its own write.
async fn concurrent_adds_to_one_cart_lose_nothing(cx: &Ctx) {
    let node = cx.node(patient());
    let user = cx.user().await;
    let ids = cx.products(20).await;
    let created = node.carts.create(user).await.expect("create");
    assert_eq!(created.version, 1, "a new cart is version 1");
    assert!(created.items.is_empty());

    let mut adds = Vec::new();
    let mut expected: BTreeMap<i64, i32> = BTreeMap::new();
    for round in 0..10 {
        for (i, &product) in ids.iter().enumerate() {
            let quantity = 1 + ((round + i) % 3) as i32;
            *expected.entry(product).or_default() += quantity;
            adds.push((product, quantity));
        }
    }
    assert_eq!(adds.len(), 200);
    let answers = join_all(
        adds.iter()
            .map(|&(product, quantity)| node.carts.add_item(user, product, quantity.into())),
    )
    .await;
    let mut versions = Vec::new();
    for (answer, (product, quantity)) in answers.into_iter().zip(&adds) {
        let view = answer.unwrap_or_else(|e| panic!("add {quantity} of {product}: {e:?}"));
        versions.push(view.version);
    }
    // Each add was its own write: the answers carry the versions 2..=201, each once.
    versions.sort_unstable();
    assert_eq!(versions, (2..=201).collect::<Vec<i64>>());

    let view = node.carts.get(user).await.expect("get");
    assert_eq!(quantities(&view), expected, "quantities held by the actor");
    assert_eq!(view.version, 201, "200 writes after the creation");
    let prices: BTreeMap<i64, i64> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, 100 + i as i64))
        .collect();
    let total: i64 = expected
        .iter()
        .map(|(id, q)| prices[id] * i64::from(*q))
        .sum();
    assert_eq!(view.total_cents, total);
    for line in &view.items {
        assert_eq!(line.unit_price_cents, prices[&line.product_id]);
        assert_eq!(
            line.line_total_cents,
            line.unit_price_cents * i64::from(line.quantity)
        );
        assert!(line.available);
    }

    let stored = cx.stored(user).await;
    assert_eq!(stored_quantities(&stored), expected, "quantities stored");
    assert_eq!(stored.version, 201);
    assert_eq!(stored.updated_at, view.updated_at);
    assert_eq!(order(&view), stored_order(&stored), "line order");
}

/// A passivated cart is reloaded from the database as it was, and keeps working.
async fn passivated_cart_comes_back_identical(cx: &Ctx) {
    let node = cx.node(patient());
    let user = cx.user().await;
    let ids = cx.products(3).await;
    node.carts.add_item(user, ids[2], 2).await.expect("add");
    node.carts.add_item(user, ids[0], 3).await.expect("add");
    node.carts.add_item(user, ids[1], 1).await.expect("add");
    node.carts.set_quantity(user, ids[0], 7).await.expect("set");
    let before = node.carts.get(user).await.expect("get");
    assert_eq!(order(&before), [ids[2], ids[0], ids[1]]);
    assert!(node.is_resident(user));
    assert_eq!(node.metric("actor_activations_total"), 1.0);

    // Used just now: not idle for an hour.
    let registry = node.carts.registry();
    assert_eq!(registry.passivate_idle_for(Duration::from_secs(3600)), 0);
    assert!(node.is_resident(user));

    assert_eq!(registry.passivate_idle_for(Duration::ZERO), 1);
    assert!(!node.is_resident(user), "passivated");
    assert_eq!(registry.resident(), 0);
    assert_eq!(node.metric("actor_passivations_total"), 1.0);
    assert_eq!(node.metric("actors_live"), 0.0);

    let after = node.carts.get(user).await.expect("get after passivation");
    assert_eq!(after, before, "the reloaded cart");
    assert!(node.is_resident(user), "reactivated");
    assert_eq!(node.metric("actor_activations_total"), 2.0);

    // The reactivated actor writes on from the stored version.
    let next = node.carts.add_item(user, ids[1], 4).await.expect("add");
    assert_eq!(next.version, before.version + 1);
    assert_eq!(quantities(&next)[&ids[1]], 5);
    assert_eq!(stored_quantities(&cx.stored(user).await), quantities(&next));
}

/// Past `max_resident`, the least recently used cart is evicted and later reloaded as it was.
async fn evicted_cart_comes_back_identical(cx: &Ctx) {
    let node = cx.node(RuntimeConfig {
        max_resident: 1,
        ..patient()
    });
    let (first, second) = (cx.user().await, cx.user().await);
    let ids = cx.products(2).await;
    node.carts.add_item(first, ids[0], 2).await.expect("add");
    let before = node.carts.add_item(first, ids[1], 5).await.expect("add");
    assert!(node.is_resident(first));
    assert_eq!(node.metric("actor_evictions_total"), 0.0);

    let theirs = node
        .carts
        .add_item(second, ids[1], 1)
        .await
        .expect("add to the second cart");
    assert!(node.is_resident(second));
    assert!(!node.is_resident(first), "the first cart was evicted");
    assert_eq!(node.carts.registry().resident(), 1);
    assert_eq!(node.metric("actor_evictions_total"), 1.0);
    assert_eq!(node.metric("actors_live"), 1.0);

    let again = node.carts.get(first).await.expect("get the first cart");
    assert_eq!(again, before, "the evicted cart, reloaded");
    assert!(node.is_resident(first));
    assert!(!node.is_resident(second), "now the second one was evicted");
    assert_eq!(node.metric("actor_evictions_total"), 2.0);
    assert_eq!(node.carts.registry().resident(), 1);

    // Both carts go on from their stored versions, and never mix.
    let mine = node.carts.add_item(first, ids[0], 1).await.expect("add");
    assert_eq!(mine.version, before.version + 1);
    assert_eq!(
        quantities(&mine),
        BTreeMap::from([(ids[0], 3), (ids[1], 5)])
    );
    let theirs_now = node.carts.get(second).await.expect("get the second cart");
    assert_eq!(theirs_now, theirs);
}

/// A handler that panics makes the call fail (after one transparent retry), not hang; the next
/// call gets a fresh actor with the stored cart.
async fn panicking_actor_is_unavailable_then_recovers(cx: &Ctx) {
    let node = cx.node(patient());
    let user = cx.user().await;
    let ids = cx.products(3).await;
    node.carts.add_item(user, ids[0], 2).await.expect("add");
    let before = node.carts.add_item(user, ids[1], 3).await.expect("add");

    let crashed = tokio::time::timeout(
        Duration::from_secs(30),
        node.carts
            .registry()
            .call(&user, CartCmd::Op(CartOp::Crash)),
    )
    .await
    .expect("a panicking actor answers the caller, it does not hang it");
    assert!(
        matches!(crashed, Err(RuntimeError::Unavailable { kind: "cart" })),
        "expected RuntimeError::Unavailable for the cart kind, got {crashed:?}"
    );
    assert!(
        node.metric("actor_deaths_total") >= 1.0,
        "actor_deaths_total{{kind=\"cart\"}} = {}",
        node.metric("actor_deaths_total")
    );

    let view = node
        .carts
        .add_item(user, ids[2], 1)
        .await
        .expect("add after the crash");
    assert_eq!(
        quantities(&view),
        BTreeMap::from([(ids[0], 2), (ids[1], 3), (ids[2], 1)]),
        "the earlier lines survived the crash"
    );
    assert_eq!(view.version, before.version + 1);
    assert_eq!(order(&view), [ids[0], ids[1], ids[2]]);
    assert_eq!(stored_quantities(&cx.stored(user).await), quantities(&view));
    assert!(node.is_resident(user));
}

/// A turn stuck waiting for the database makes its caller fail after `call_timeout`, with
/// `CartError::Unavailable`; once the database is free again the cart works.
async fn stuck_turn_times_out_instead_of_hanging(cx: &Ctx) {
    let opts = PoolOptions {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(30),
        ..PoolOptions::default()
    };
    let db = Db::connect(&cx.url, &opts).expect("single-connection pool opens");
    // Open the connections now, so that connecting is not part of any timed call.
    drop(db.read().await.expect("read connection"));
    drop(db.write().await.expect("write connection"));
    let call_timeout = Duration::from_millis(500);
    let node = Node::start(
        db.clone(),
        RuntimeConfig {
            call_timeout,
            ..RuntimeConfig::default()
        },
    );
    let user = cx.user().await;
    let product = cx.product("slow", 250).await;
    node.carts
        .add_item(user, product, 1)
        .await
        .expect("add before the stall");
    assert_eq!(node.metric("actor_mailbox_timeouts_total"), 0.0);

    // SQLite: the only writer; PostgreSQL: the only connection.
    let held = db.write().await.expect("take the connection");
    let started = Instant::now();
    let stalled = tokio::time::timeout(
        Duration::from_secs(10),
        node.carts.add_item(user, product, 2),
    )
    .await
    .expect("a call whose turn is stuck must fail, not hang");
    let waited = started.elapsed();
    assert_unavailable(&stalled, "add while the database is held");
    assert!(
        waited >= call_timeout && waited < Duration::from_secs(2),
        "failed after {waited:?} (call_timeout {call_timeout:?})"
    );
    assert_eq!(node.metric("actor_mailbox_timeouts_total"), 1.0);

    drop(held);
    let after = tokio::time::timeout(
        Duration::from_secs(10),
        node.carts.add_item(user, product, 4),
    )
    .await
    .expect("no hang once the connection is back")
    .expect("add after the connection is back");
    // The timed-out add may still have been applied by its turn once the connection came back;
    // it must never be applied twice, and the add after it is applied once.
    let quantity = quantities(&after)[&product];
    assert!(
        quantity == 1 + 4 || quantity == 1 + 2 + 4,
        "quantity {quantity}: expected 5, or 7 if the timed-out add was applied"
    );
    let stored = cx.stored(user).await;
    assert_eq!(stored_quantities(&stored), quantities(&after));
    assert_eq!(stored.version, after.version);
}

/// Two registries over one database, like two nodes, take turns adding to one cart: each one's
/// cached cart is stale whenever the other wrote, and no add is lost.
async fn two_nodes_interleaving_adds_lose_nothing(cx: &Ctx) {
    let (a, b) = (cx.node(patient()), cx.other_node(patient()));
    let user = cx.user().await;
    let ids = cx.products(3).await;
    let created = a.carts.create(user).await.expect("create on node a");
    assert_eq!(created.version, 1);

    let mut expected: BTreeMap<i64, i32> = BTreeMap::new();
    for i in 0..24 {
        let (node, name) = if i % 2 == 0 { (&b, "b") } else { (&a, "a") };
        let product = ids[i % 3];
        let quantity = 1 + (i % 4) as i32;
        *expected.entry(product).or_default() += quantity;
        let view = node
            .carts
            .add_item(user, product, quantity.into())
            .await
            .unwrap_or_else(|e| panic!("add #{i} on node {name}: {e:?}"));
        assert_eq!(
            quantities(&view),
            expected,
            "add #{i} on node {name} answers the cart with every add so far"
        );
        assert_eq!(view.version, 2 + i as i64, "add #{i} on node {name}");
    }
    let stored = cx.stored(user).await;
    assert_eq!(stored_quantities(&stored), expected);
    assert_eq!(stored.version, 25, "24 writes after the creation");
    assert_eq!(stored_order(&stored), ids, "lines in the order first added");
}

/// A cluster node owns the user's shard under epoch 5 and writes the cart; another node takes
/// the shard over (epoch 7). The first node's next turn, cached state and all, writes nothing:
/// the write's transaction finds the newer epoch, the node stops serving the shard, and the
/// new owner goes on from what was written.
async fn a_node_fenced_off_its_shard_writes_nothing(cx: &Ctx) {
    let (old, new) = (clustered(), clustered());
    let user = cx.user().await;
    let product = cx.products(1).await[0];
    let shard = old.shard_of(user);
    let advance = async |epoch: i64, node: &str| cx.record_epoch(shard, epoch, node).await;
    advance(5, "old").await;
    old.acquired(shard, 5);
    let a = Node::start_owning(cx.db.clone(), patient(), Arc::clone(&old));
    a.carts
        .add_item(user, product, 1)
        .await
        .expect("the owner writes");

    advance(7, "new").await;
    new.acquired(shard, 7);
    let refused = a.carts.add_item(user, product, 1).await;
    assert_eq!(refused, Err(CartError::NotOwner { shard }));
    assert_eq!(
        stored_quantities(&cx.stored(user).await),
        BTreeMap::from([(product, 1)])
    );
    assert_eq!(
        old.fence(shard),
        Err(NotOwner { shard }),
        "it stopped serving the shard"
    );
    // Refused at once now, without touching the database.
    assert_eq!(
        a.carts.add_item(user, product, 1).await,
        Err(CartError::NotOwner { shard })
    );

    let b = Node::start_owning(cx.db.clone(), patient(), new);
    let view = b
        .carts
        .add_item(user, product, 1)
        .await
        .expect("the new owner writes");
    assert_eq!(quantities(&view), BTreeMap::from([(product, 2)]));
}

/// The same for an order: the node placed it under epoch 3; once another owner's epoch is
/// recorded, neither cancelling it nor placing another order writes anything there.
async fn an_order_on_a_node_fenced_off_its_shard_is_not_touched(cx: &Ctx) {
    let ownership = clustered();
    let user = cx.user().await;
    let product = cx.products(1).await[0];
    let shard = ownership.shard_of(user);
    let advance = async |epoch: i64, node: &str| cx.record_epoch(shard, epoch, node).await;
    advance(3, "old").await;
    ownership.acquired(shard, 3);
    let services = Services::start(
        cx.db.clone(),
        Arc::new(IdGenerator::new(7)),
        ServicesConfig {
            runtime: patient(),
            placement: PlacementConfig::default(),
            order_timeout: Duration::from_secs(900),
            session_timeout: Duration::from_secs(300),
            prices: Arc::new(prices::prices(1 << 20, Duration::from_secs(60))),
        },
        &prometheus::Registry::new(),
        None,
        Arc::clone(&ownership),
    )
    .expect("services start");
    let by = || Deadline::after(Duration::from_secs(10));
    let line = [WantedLine {
        product_id: product,
        quantity: 2,
    }];
    let address = r#"{"name":"A"}"#.to_owned();
    let order = services
        .orders
        .create(UserId(user), &line, address.clone(), None, None, by())
        .await
        .expect("the owner places it");

    advance(4, "new").await;
    let cancel = services.orders.cancel(UserId(user), order.id, by()).await;
    assert_eq!(cancel.map(|_| ()), Err(OrderError::NotOwner { shard }));
    assert!(!ownership.owns(shard), "it stopped serving the shard");
    let again = services
        .orders
        .create(UserId(user), &line, address, None, None, by())
        .await;
    assert_eq!(again.map(|_| ()), Err(OrderError::NotOwner { shard }));
    let mut conn = cx.db.read().await.expect("connection");
    let stored = mall_db::repo::orders::load(&mut conn, order.id.get())
        .await
        .expect("order loads")
        .expect("order exists");
    assert_eq!(
        stored.0.status,
        OrderStatus::PendingPayment,
        "not cancelled"
    );
    let stock = products::find(&mut conn, product)
        .await
        .expect("product loads")
        .expect("product exists")
        .0
        .stock;
    assert_eq!(stock, 998, "no stock came back, no second order took any");
}

/// Two nodes adding to one cart at the same time: an add either succeeds or is refused as
/// unavailable (the cart kept changing under it); the stored cart holds exactly the successful
/// ones, once each.
async fn two_nodes_racing_lose_nothing_and_invent_nothing(cx: &Ctx) {
    let (a, b) = (cx.node(patient()), cx.other_node(patient()));
    let user = cx.user().await;
    let ids = cx.products(3).await;
    a.carts.create(user).await.expect("create");

    let adds: Vec<(usize, i64, i32)> = (0..60)
        .map(|i| (i, ids[i % 3], 1 + (i % 2) as i32))
        .collect();
    let answers = join_all(adds.iter().map(|&(i, product, quantity)| {
        let node = if i % 2 == 0 { &a } else { &b };
        node.carts.add_item(user, product, quantity.into())
    }))
    .await;
    let mut applied: BTreeMap<i64, i32> = BTreeMap::new();
    let mut succeeded = 0;
    for (answer, &(i, product, quantity)) in answers.iter().zip(&adds) {
        match answer {
            Ok(_) => {
                *applied.entry(product).or_default() += quantity;
                succeeded += 1;
            }
            Err(CartError::Unavailable(_)) => {}
            Err(e) => panic!("add #{i}: unexpected {e:?}"),
        }
    }
    assert!(succeeded > 0, "no add succeeded");
    let stored = cx.stored(user).await;
    assert_eq!(
        stored_quantities(&stored),
        applied,
        "the stored cart holds exactly the {succeeded} successful adds"
    );
    assert_eq!(
        stored.version,
        1 + succeeded,
        "one write per successful add"
    );
    // Both nodes answer the final cart once they write again.
    let last = b.carts.add_item(user, ids[0], 1).await.expect("a lone add");
    *applied.entry(ids[0]).or_default() += 1;
    assert_eq!(quantities(&last), applied);
}

/// A deleted product can no longer be added (its line stays, unavailable and out of the total,
/// and can be removed); an unknown product cannot be added either.
async fn deleted_and_unknown_products_cannot_be_added(cx: &Ctx) {
    let node = cx.node(patient());
    let user = cx.user().await;
    let gone = cx.product("soon gone", 300).await;
    let kept = cx.product("kept", 120).await;
    let also = cx.product("also gone", 50).await;
    node.carts.add_item(user, gone, 2).await.expect("add");
    node.carts.add_item(user, kept, 1).await.expect("add");
    let before = node.carts.add_item(user, also, 4).await.expect("add");
    assert_eq!(before.total_cents, 2 * 300 + 120 + 4 * 50);
    cx.delete_product(gone).await;
    cx.delete_product(also).await;
    // As the change notice of the deletion does.
    node.prices.invalidate(&[gone, also]);

    assert_eq!(
        node.carts.add_item(user, gone, 1).await,
        Err(CartError::ProductNotFound),
        "add a deleted product that is in the cart"
    );
    assert_eq!(
        node.carts.set_quantity(user, gone, 5).await,
        Err(CartError::ProductNotFound),
        "raise the quantity of a deleted product"
    );
    let view = node.carts.get(user).await.expect("get");
    assert_eq!(view.version, before.version, "refusals write nothing");
    assert_eq!(quantities(&view), quantities(&before));
    let line = |id: i64| view.items.iter().find(|l| l.product_id == id).unwrap();
    assert!(!line(gone).available);
    assert!(!line(also).available);
    assert!(line(kept).available);
    assert_eq!(line(gone).name, "soon gone");
    assert_eq!(view.total_cents, 120, "deleted lines are not in the total");

    let view = node
        .carts
        .remove_item(user, gone)
        .await
        .expect("remove a deleted product's line");
    assert_eq!(order(&view), [kept, also]);
    let view = node
        .carts
        .set_quantity(user, also, 0)
        .await
        .expect("set a deleted product's line to 0");
    assert_eq!(order(&view), [kept]);
    assert_eq!(view.total_cents, 120);

    let unknown = IDS.next_id();
    assert_eq!(
        node.carts.add_item(user, unknown, 1).await,
        Err(CartError::ProductNotFound)
    );
    assert_eq!(
        node.carts.set_quantity(user, unknown, 1).await,
        Err(CartError::ProductNotFound)
    );
    assert_eq!(
        node.carts.add_item(user, gone, 1).await,
        Err(CartError::ProductNotFound),
        "add a deleted product that is no longer in the cart"
    );
    let view = node
        .carts
        .add_item(user, kept, 2)
        .await
        .expect("live products still add");
    assert_eq!(quantities(&view), BTreeMap::from([(kept, 3)]));
    assert_eq!(stored_quantities(&cx.stored(user).await), quantities(&view));
}

/// The cart's rules, through the actor and the database: quantity bounds, missing lines, line
/// order, clearing; refusals write nothing.
async fn cart_rules_hold_through_the_actor(cx: &Ctx) {
    let node = cx.node(patient());
    let user = cx.user().await;
    let ids = cx.products(3).await;

    let fresh = node.carts.get(user).await.expect("get creates the cart");
    assert!(fresh.items.is_empty());
    assert_eq!(fresh.total_cents, 0);
    assert_eq!(fresh.version, 1);
    assert_eq!(cx.stored(user).await.updated_at, fresh.updated_at);
    let again = node.carts.create(user).await.expect("create again");
    assert_eq!(again, fresh, "creating an existing cart changes nothing");

    for bad in [0, -1, 1000] {
        assert!(
            matches!(
                node.carts.add_item(user, ids[0], bad).await,
                Err(CartError::InvalidQuantity(_))
            ),
            "add {bad}"
        );
    }
    for bad in [-1, 1000] {
        assert!(
            matches!(
                node.carts.set_quantity(user, ids[0], bad).await,
                Err(CartError::InvalidQuantity(_))
            ),
            "set {bad}"
        );
    }
    node.carts.add_item(user, ids[0], 500).await.expect("500");
    let full = node.carts.add_item(user, ids[0], 499).await.expect("+499");
    assert_eq!(quantities(&full)[&ids[0]], 999);
    assert!(matches!(
        node.carts.add_item(user, ids[0], 1).await,
        Err(CartError::InvalidQuantity(_))
    ));
    assert_eq!(
        node.carts.remove_item(user, ids[1]).await,
        Err(CartError::LineNotFound)
    );
    assert_eq!(
        node.carts.set_quantity(user, ids[1], 0).await,
        Err(CartError::LineNotFound)
    );
    let unchanged = node.carts.get(user).await.expect("get");
    assert_eq!(unchanged, full, "refusals write nothing");
    assert_eq!(cx.stored(user).await.version, full.version);

    // Order of first addition: re-adding keeps a line's place, removing forgets it.
    node.carts.add_item(user, ids[2], 1).await.expect("add");
    node.carts.add_item(user, ids[1], 1).await.expect("add");
    node.carts.add_item(user, ids[2], 1).await.expect("add");
    node.carts.remove_item(user, ids[0]).await.expect("remove");
    let view = node.carts.add_item(user, ids[0], 1).await.expect("add");
    assert_eq!(order(&view), [ids[2], ids[1], ids[0]]);
    assert_eq!(stored_order(&cx.stored(user).await), order(&view));
    let view = node.carts.set_quantity(user, ids[1], 9).await.expect("set");
    assert_eq!(
        quantities(&view),
        BTreeMap::from([(ids[0], 1), (ids[1], 9), (ids[2], 2)])
    );

    let cleared = node.carts.clear(user).await.expect("clear");
    assert!(cleared.items.is_empty());
    assert_eq!(cleared.total_cents, 0);
    assert_eq!(cleared.version, view.version + 1);
    let stored = cx.stored(user).await;
    assert!(stored.lines.is_empty());
    assert_eq!(stored.version, cleared.version);
    assert_eq!(stored.updated_at, cleared.updated_at);
}
