//! Product reads from each node's memory: `ETag` and `If-None-Match` (304), every change seen by
//! the next read on the node that made it, and on the other nodes through change notices
//! (PostgreSQL `LISTEN/NOTIFY` without Redis, Redis pub/sub with it), with the cache's lifetime
//! bounding how stale a node can be when a notice is lost.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::commerce::{id, place_order, product};
use crate::harness::{App, Backend, Resp, Server, ServerBuilder, eventually};
use crate::redis_instance::free_port;

both_backends!(reads_carry_an_etag_and_every_change_shows_at_once);

fn path(product_id: &str) -> String {
    format!("/api/v1/products/{product_id}")
}

async fn read(server: &Server, product_id: &str, if_none_match: Option<&str>) -> Resp {
    let req = server.request(reqwest::Method::GET, &path(product_id));
    match if_none_match {
        Some(tag) => req.header("if-none-match", tag).send().await,
        None => req.send().await,
    }
}

/// A 200 read's body and tag.
async fn fetch(server: &Server, product_id: &str) -> (Value, String) {
    let resp = read(server, product_id, None).await;
    let body = resp.expect(200);
    let tag = resp.header("etag").expect("a product read carries an ETag");
    (body, tag)
}

async fn reads_carry_an_etag_and_every_change_shows_at_once(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await.access;
    let p = product(&app, &admin, "Tagged kettle", 2_500, 10).await;

    let first = read(&app, &p, None).await;
    let body = first.expect(200);
    assert_eq!(
        (body["id"].as_str(), body["stock"].as_i64()),
        (Some(p.as_str()), Some(10))
    );
    let tag = first.header("etag").expect("ETag");
    assert!(
        tag.starts_with('"') && tag.ends_with('"'),
        "a strong tag: {tag}"
    );
    assert_eq!(first.header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(
        fetch(&app, &p).await.1,
        tag,
        "an unchanged product keeps its tag"
    );

    // The tag given back, weakly, in a list, or `*`: 304 with the tag and no body.
    for given in [
        tag.clone(),
        format!("W/{tag}"),
        format!("\"nope\", {tag}"),
        "*".into(),
    ] {
        let resp = read(&app, &p, Some(&given)).await;
        assert_eq!(resp.status, 304, "If-None-Match: {given}");
        assert_eq!(resp.text, "", "a 304 has no body");
        assert_eq!(resp.header("etag").as_deref(), Some(tag.as_str()));
    }
    read(&app, &p, Some("\"another\"")).await.expect(200);

    // A change is seen by the very next read, with a new tag; the old tag no longer matches.
    app.patch(&path(&p), Some(&admin), &json!({"price_cents": 2_300}))
        .await
        .expect(200);
    let (body, changed) = fetch(&app, &p).await;
    assert_eq!(body["price_cents"], 2_300);
    assert_ne!(changed, tag);
    read(&app, &p, Some(&tag)).await.expect(200);

    // So is an order taking stock, and its cancellation giving it back.
    let buyer = app.new_user("etag-buyer").await;
    let order = place_order(&app, buyer.access(), &[(&p, 3)]).await;
    assert_eq!(fetch(&app, &p).await.0["stock"], 7);
    app.post(
        &format!("/api/v1/orders/{}/cancel", id(&order)),
        Some(buyer.access()),
        &json!({}),
    )
    .await
    .expect(200);
    assert_eq!(fetch(&app, &p).await.0["stock"], 10);

    // A deleted product is gone at once, whatever tag is given.
    app.delete(&path(&p), Some(&admin), None).await.expect(204);
    read(&app, &p, Some("*"))
        .await
        .expect_error(404, "not_found");
}

/// Two `mall` processes on one fresh PostgreSQL database with the same secret and admin,
/// each configured by `configure`.
async fn two_nodes(
    db_url: &str,
    configure: impl Fn(ServerBuilder) -> ServerBuilder,
) -> (Server, Server) {
    let a = configure(ServerBuilder::new(db_url)).start().await;
    let b = configure(
        ServerBuilder::new(db_url)
            .secret(a.secret())
            .env("MALL__BOOTSTRAP__ADMIN_PASSWORD", &a.process.admin_password),
    )
    .start()
    .await;
    (a, b)
}

/// B caches a product, A changes its fields and then its stock: B shows each change long before
/// its cache would expire (the entries here live a minute), so the notice carried it.
async fn the_other_node_hears_of_every_change(a: &Server, b: &Server) {
    let admin = a.admin().await.access;
    let p = product(a, &admin, "Shared kettle", 1_000, 50).await;
    let (_, tag) = fetch(b, &p).await;
    assert_eq!(
        read(b, &p, Some(&tag)).await.status,
        304,
        "B serves its copy"
    );
    // B's carts are priced from B's price list.
    let shopper = b.new_user("notice-shopper").await;
    let cart = b
        .post(
            "/api/v1/cart/items",
            Some(shopper.access()),
            &json!({"product_id": p, "quantity": 2}),
        )
        .await
        .expect(200);
    assert_eq!(cart["total_cents"], 2_000);

    a.patch(
        &path(&p),
        Some(&admin),
        &json!({"name": "Renamed kettle", "price_cents": 1_100}),
    )
    .await
    .expect(200);
    let (seen, took) = eventually(Duration::from_secs(10), || async {
        fetch(b, &p).await.0["name"] == "Renamed kettle"
    })
    .await;
    assert!(seen, "the other node never saw the change");
    assert!(took < Duration::from_secs(5), "took {took:?}: not a notice");
    let (repriced, _) = eventually(Duration::from_secs(5), || async {
        let cart = b
            .get("/api/v1/cart", Some(shopper.access()))
            .await
            .expect(200);
        cart["total_cents"] == 2_200
    })
    .await;
    assert!(repriced, "the other node's cart kept the old price");

    let buyer = a.new_user("notice-buyer").await;
    place_order(a, buyer.access(), &[(&p, 4)]).await;
    let (seen, _) = eventually(Duration::from_secs(5), || async {
        fetch(b, &p).await.0["stock"] == 46
    })
    .await;
    assert!(seen, "the other node never saw the stock an order took");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_without_redis_hear_changes_through_postgres() {
    let db = Backend::Postgres.database().await;
    let (a, b) = two_nodes(db.url(), |s| s.env("MALL__CATALOG__CACHE_TTL_MS", "60000")).await;
    the_other_node_hears_of_every_change(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_redis_hear_changes_through_it() {
    let db = Backend::Postgres.database().await;
    let prefix = format!("test-{}:", Uuid::new_v4().simple());
    let (a, b) = two_nodes(db.url(), |s| {
        s.env("MALL__CATALOG__CACHE_TTL_MS", "60000")
            .env("MALL__REDIS__URL", "redis://127.0.0.1:6379")
            .env("MALL__REDIS__KEY_PREFIX", &prefix)
    })
    .await;
    the_other_node_hears_of_every_change(&a, &b).await;
}

/// Redis configured but dead: no notice gets through, and the cache's lifetime is what bounds
/// how long the other node shows the old product.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_notice_is_bounded_by_the_cache_lifetime() {
    let db = Backend::Postgres.database().await;
    let ttl = Duration::from_secs(2);
    let dead_redis = format!("redis://127.0.0.1:{}", free_port());
    let (a, b) = two_nodes(db.url(), |s| {
        s.env("MALL__CATALOG__CACHE_TTL_MS", &ttl.as_millis().to_string())
            .env("MALL__REDIS__URL", &dead_redis)
    })
    .await;
    let admin = a.admin().await.access;
    let p = product(&a, &admin, "Lonely kettle", 1_000, 5).await;
    let cached_at = Instant::now();
    fetch(&b, &p).await;
    a.patch(&path(&p), Some(&admin), &json!({"price_cents": 999}))
        .await
        .expect(200);
    let stale = fetch(&b, &p).await.0["price_cents"] == 1_000;
    if cached_at.elapsed() < ttl / 2 {
        assert!(stale, "no notice can arrive, so B still shows its copy");
    }
    let (fresh, _) = eventually(ttl * 3, || async {
        fetch(&b, &p).await.0["price_cents"] == 999
    })
    .await;
    assert!(fresh, "the copy outlived the cache's lifetime");
    assert!(
        cached_at.elapsed() >= ttl,
        "fresh before the lifetime ended: a notice got through after all"
    );
}
