//! The placement desk (`mall_actors::placement`) on SQLite and PostgreSQL: orders that wait
//! together are placed in one transaction, and an order whose caller gave up is not placed.

#![expect(
    clippy::expect_used,
    reason = "test code: a panic is a failed test, with its reason"
)]

use std::time::Duration;

use mall_actors::runtime::Deadline;

use mall_actors::placement::{PlacementConfig, Placer};
use mall_db::models::{NewProduct, NewUser};
use mall_db::repo::orders::{self, NewOrder, WantedLine};
use mall_db::repo::placements::{PlaceError, Placement};
use mall_db::repo::{products, users};
use mall_db::testing::TestDatabase;
use mall_db::{Db, DbError, IdGenerator, PoolOptions, clock};

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[actix_rt::test]
            async fn sqlite() {
                let database = mall_db::testing::TestDatabase::sqlite().await;
                super::$name(crate::Desk::new(&database).await).await;
            }

            #[actix_rt::test]
            async fn postgres() {
                let database = mall_db::testing::TestDatabase::postgres().await;
                super::$name(crate::Desk::new(&database).await).await;
            }
        }
    )+};
}

on_both_backends!(
    orders_waiting_together_share_one_transaction,
    an_order_whose_caller_gave_up_is_not_placed,
);

static IDS: std::sync::LazyLock<IdGenerator> = std::sync::LazyLock::new(|| IdGenerator::new(12));

/// A database with one connection for writes (so a test can hold it and keep the lane waiting),
/// a buyer, a product, and the metrics the desk registers.
struct Desk {
    db: Db,
    user: i64,
    product: i64,
    metrics: prometheus::Registry,
}

impl Desk {
    async fn new(database: &TestDatabase) -> Desk {
        mall_db::migrate::run_pending_async(database.url())
            .await
            .expect("migrations apply");
        let opts = PoolOptions {
            max_connections: 1,
            ..PoolOptions::default()
        };
        let db = Db::connect(database.url(), &opts).expect("pool opens");
        let now = clock::now();
        let id = IDS.next_id();
        let user = NewUser {
            id,
            email: format!("desk-{id}@example.com"),
            email_norm: format!("desk-{id}@example.com"),
            name: "Desk Tester".into(),
            password_hash: "$argon2id$not-a-real-hash".into(),
            password_changed_at: now,
            created_at: now,
            updated_at: now,
        };
        let mut conn = db.write().await.expect("write connection");
        let user = users::insert(&mut conn, user, &[]).await.expect("user").id;
        let product = NewProduct {
            id: IDS.next_id(),
            merchant_id: user,
            name: "Hot item".into(),
            description: String::new(),
            price_cents: 999,
            stock: 100,
            image_url: None,
            created_at: now,
            updated_at: now,
        };
        let product = products::insert(&mut conn, product, &[])
            .await
            .expect("product")
            .0
            .id;
        drop(conn);
        Desk {
            db,
            user,
            product,
            metrics: prometheus::Registry::new(),
        }
    }

    fn placer(&self) -> Placer {
        let config = PlacementConfig {
            lanes: 1,
            ..PlacementConfig::default()
        };
        Placer::start(self.db.clone(), config, &self.metrics).expect("metrics register")
    }

    fn order(&self) -> Placement {
        let now = clock::now();
        Placement {
            order: NewOrder {
                id: IDS.next_id(),
                user_id: self.user,
                address: "{}".into(),
                note: None,
                expires_at: now + time::Duration::minutes(15),
            },
            lines: vec![WantedLine {
                product_id: self.product,
                quantity: 1,
            }],
            now,
            idem: None,
            checkout: None,
            fence: None,
        }
    }

    /// A sample of the metrics, as `/metrics` shows it.
    fn metric(&self, series: &str) -> f64 {
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&self.metrics.gather())
            .expect("metrics encode");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{series} ")))
            .map_or(0.0, |v| v.trim().parse().expect("a number"))
    }

    async fn stock(&self) -> i64 {
        let mut conn = self.db.read().await.expect("read connection");
        products::find(&mut conn, self.product)
            .await
            .expect("read")
            .expect("live")
            .0
            .stock
    }
}

/// A deadline `secs` from now.
fn in_secs(secs: u64) -> Deadline {
    Deadline::after(Duration::from_secs(secs))
}

/// Lets the other tasks on this thread run until `done` holds.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..100_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the condition never held");
}

async fn orders_waiting_together_share_one_transaction(desk: Desk) {
    let placer = desk.placer();
    // Hold the only write connection: the lane takes the first order(s) and waits for it, and
    // every other order queues behind.
    let held = desk.db.write().await.expect("write connection");
    let calls: Vec<_> = (0..10)
        .map(|_| {
            actix_rt::spawn({
                let (placer, order) = (placer.clone(), desk.order());
                async move { placer.place(order, in_secs(30)).await }
            })
        })
        .collect();
    until(|| placer.handed_in() == 10).await;
    drop(held);
    for call in calls {
        call.await.expect("task").expect("placed");
    }
    assert_eq!(desk.metric("order_placement_batch_size_sum"), 10.0);
    let transactions = desk.metric("order_placement_batch_size_count");
    assert!(
        transactions <= 2.0,
        "10 orders waiting together took {transactions} transactions"
    );
    assert_eq!(desk.stock().await, 90);
}

async fn an_order_whose_caller_gave_up_is_not_placed(desk: Desk) {
    let placer = desk.placer();
    let held = desk.db.write().await.expect("write connection");
    let order = desk.order();
    let id = order.order.id;
    match placer
        .place(order, Deadline::after(Duration::from_millis(200)))
        .await
    {
        Err(PlaceError::Db(DbError::Unavailable(_))) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    drop(held);
    // The lane gets the connection now and must drop the order: place another behind it to
    // know the lane has moved past it.
    placer
        .place(desk.order(), in_secs(30))
        .await
        .expect("the next order is placed");
    let mut conn = desk.db.read().await.expect("read connection");
    assert_eq!(orders::load(&mut conn, id).await.expect("read"), None);
    drop(conn);
    assert_eq!(desk.stock().await, 99, "only the second order took stock");
}
