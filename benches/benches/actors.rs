//! Micro benchmarks of the entity runtime: a round trip to an actor that does no I/O (the
//! runtime's own cost: registry lookup, mailbox, turn, reply), and one cart add on SQLite (the
//! whole write path: turn, product check, version-checked write-through, pricing).

use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler, Message, System};
use criterion::{Criterion, criterion_group, criterion_main};

use mall_actors::cart::CartHandle;
use mall_actors::placement::{PlacementConfig, Placer};
use mall_actors::runtime::{Call, Entity, KindMetrics, Registry, RuntimeConfig, RuntimeMetrics};
use mall_db::models::{NewProduct, NewUser};
use mall_db::{Db, IdGenerator, PoolOptions, clock, repo};

/// An entity that answers at once: the runtime's cost alone.
struct Echo;

impl Actor for Echo {
    type Context = Context<Self>;
}

impl Entity for Echo {
    type Key = u64;
    type Deps = ();
    const KIND: &'static str = "echo";
    fn activate(_: u64, _: (), _: KindMetrics) -> Self {
        Echo
    }
}

#[derive(Clone)]
struct Ping(u64);

impl Message for Ping {
    type Result = u64;
}

impl Handler<Call<Ping>> for Echo {
    type Result = u64;
    fn handle(&mut self, call: Call<Ping>, _: &mut Context<Self>) -> u64 {
        call.cmd.0
    }
}

fn round_trip(c: &mut Criterion) {
    let system = System::new();
    let registry = system.block_on(async {
        let metrics =
            RuntimeMetrics::new(&prometheus::Registry::new()).unwrap_or_else(|e| panic!("{e}"));
        Registry::<Echo>::new((), RuntimeConfig::default(), &metrics)
    });
    c.bench_function("actor/round_trip_no_io", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let answer = registry.call(&(i % 64), Ping(i)).await;
                    assert_eq!(answer, Ok(i));
                }
                start.elapsed()
            })
        })
    });
}

fn cart_add_sqlite(c: &mut Criterion) {
    let system = System::new();
    let (_tmp, handle, user, product) = system.block_on(async {
        let tmp = mall_db::testing::TestDatabase::sqlite().await;
        mall_db::migrate::run_pending_async(tmp.url())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let db = Db::connect(tmp.url(), &PoolOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let ids = IdGenerator::new(1);
        let now = clock::now();
        let mut conn = db.write().await.unwrap_or_else(|e| panic!("{e}"));
        let user = NewUser {
            id: ids.next_id(),
            email: "bench@example.com".into(),
            email_norm: "bench@example.com".into(),
            name: "Bench".into(),
            password_hash: "unused".into(),
            password_changed_at: now,
            created_at: now,
            updated_at: now,
        };
        let user = repo::users::insert(&mut conn, user, &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .id;
        let product = NewProduct {
            id: ids.next_id(),
            merchant_id: user,
            name: "Tea".into(),
            description: String::new(),
            price_cents: 1250,
            stock: 1_000_000,
            image_url: None,
            created_at: now,
            updated_at: now,
        };
        let product = repo::products::insert(&mut conn, product, &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .0
            .id;
        drop(conn);
        let registry = prometheus::Registry::new();
        let metrics = RuntimeMetrics::new(&registry).unwrap_or_else(|e| panic!("{e}"));
        let placer = Placer::start(db.clone(), PlacementConfig::default(), &registry)
            .unwrap_or_else(|e| panic!("{e}"));
        (
            tmp,
            CartHandle::start(db, placer, RuntimeConfig::default(), &metrics),
            user,
            product,
        )
    });
    c.bench_function("cart/add_item_sqlite", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let mut timed = Duration::ZERO;
                for i in 0..iters {
                    // A line holds at most 999: empty the cart now and then, outside the timing.
                    if i % 900 == 0 {
                        handle.clear(user).await.unwrap_or_else(|e| panic!("{e}"));
                    }
                    let start = Instant::now();
                    handle
                        .add_item(user, product, 1)
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    timed += start.elapsed();
                }
                timed
            })
        })
    });
}

criterion_group!(benches, round_trip, cart_add_sqlite);
criterion_main!(benches);
