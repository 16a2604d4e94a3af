//! Idempotency-Key records: claims, replays, mismatches, and records whose request died.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mall_db::repo::idempotency::{self, ABANDONED_AFTER, Claim};
use mall_db::schema::idempotency_keys;
use mall_db::{Db, clock, with_conn};
use time::Duration;

use crate::common::{add_user, wr};

on_both_backends!(
    a_key_is_claimed_once_then_replayed,
    another_request_under_a_key_is_a_mismatch,
    a_dead_request_frees_its_key_or_shows_what_it_made,
    a_key_is_released_only_while_nothing_is_bound_to_it,
    expired_records_are_purged_and_live_ones_kept,
);

async fn claim(db: &Db, user: i64, key: &str, fp: &str) -> Claim {
    let now = clock::now();
    idempotency::claim(
        &mut wr(db).await,
        user,
        key,
        fp,
        now,
        now + Duration::hours(24),
    )
    .await
    .unwrap()
}

/// Makes the record look `age` old.
async fn age(db: &Db, user: i64, key: &str, age: Duration) {
    let created = clock::now() - age;
    let mut conn = wr(db).await;
    with_conn!(&mut conn, c => diesel::update(idempotency_keys::table.find((user, key.to_owned())))
        .set(idempotency_keys::created_at.eq(created))
        .execute(c)
        .await)
    .unwrap();
}

async fn a_key_is_claimed_once_then_replayed(db: &Db) {
    let u = add_user(db, "idem1@example.com", &[]).await.id;
    assert_eq!(claim(db, u, "k", "fp").await, Claim::Fresh);
    assert_eq!(claim(db, u, "k", "fp").await, Claim::InProgress);
    idempotency::complete(&mut wr(db).await, u, "k", 201, "{\"id\":\"1\"}")
        .await
        .unwrap();
    assert_eq!(
        claim(db, u, "k", "fp").await,
        Claim::Replay {
            status: 201,
            body: "{\"id\":\"1\"}".into()
        }
    );
    // Keys are per user.
    let v = add_user(db, "idem2@example.com", &[]).await.id;
    assert_eq!(claim(db, v, "k", "fp").await, Claim::Fresh);
}

async fn another_request_under_a_key_is_a_mismatch(db: &Db) {
    let u = add_user(db, "idem3@example.com", &[]).await.id;
    assert_eq!(claim(db, u, "k", "fp-a").await, Claim::Fresh);
    assert_eq!(claim(db, u, "k", "fp-b").await, Claim::Mismatch);
}

async fn a_dead_request_frees_its_key_or_shows_what_it_made(db: &Db) {
    let u = add_user(db, "idem4@example.com", &[]).await.id;
    // Died before its effect: after ABANDONED_AFTER the key is free again.
    assert_eq!(claim(db, u, "k1", "fp").await, Claim::Fresh);
    age(db, u, "k1", ABANDONED_AFTER - Duration::seconds(5)).await;
    assert_eq!(claim(db, u, "k1", "fp").await, Claim::InProgress);
    age(db, u, "k1", ABANDONED_AFTER + Duration::seconds(5)).await;
    assert_eq!(claim(db, u, "k1", "fp").await, Claim::Fresh);
    // Died after its effect bound the key: while young it is in progress, then it shows what it made.
    assert_eq!(claim(db, u, "k2", "fp").await, Claim::Fresh);
    let mut conn = wr(db).await;
    with_conn!(&mut conn, c => diesel::update(idempotency_keys::table.find((u, "k2".to_owned())))
        .set(idempotency_keys::resource.eq(Some("order:42")))
        .execute(c)
        .await)
    .unwrap();
    drop(conn);
    assert_eq!(claim(db, u, "k2", "fp").await, Claim::InProgress);
    age(db, u, "k2", ABANDONED_AFTER + Duration::seconds(5)).await;
    assert_eq!(
        claim(db, u, "k2", "fp").await,
        Claim::Made {
            resource: "order:42".into()
        }
    );
}

/// Binds `resource` to the key as an effect's transaction would; the rows bound.
async fn bind(db: &Db, user: i64, key: &str, resource: &str) -> usize {
    let mut conn = wr(db).await;
    with_conn!(&mut conn, c => diesel::update(
        idempotency_keys::table
            .find((user, key.to_owned()))
            .filter(idempotency_keys::resource.is_null()),
    )
    .set(idempotency_keys::resource.eq(Some(resource.to_owned())))
    .execute(c)
    .await)
    .unwrap()
}

async fn a_key_is_released_only_while_nothing_is_bound_to_it(db: &Db) {
    let u = add_user(db, "idem5@example.com", &[]).await.id;
    // Nothing bound: released, and the next claim is fresh.
    assert_eq!(claim(db, u, "k", "fp").await, Claim::Fresh);
    let released = idempotency::release(&mut wr(db).await, u, "k").await;
    assert_eq!(released.unwrap(), None);
    assert_eq!(claim(db, u, "k", "fp").await, Claim::Fresh);
    // Bound: kept, and release says what was made.
    assert_eq!(bind(db, u, "k", "order:7").await, 1);
    let released = idempotency::release(&mut wr(db).await, u, "k").await;
    assert_eq!(released.unwrap(), Some("order:7".to_owned()));
    assert_eq!(claim(db, u, "k", "fp").await, Claim::InProgress);
    // A second effect cannot bind a key already bound, nor a released one.
    assert_eq!(bind(db, u, "k", "order:8").await, 0);
    assert_eq!(claim(db, u, "k2", "fp").await, Claim::Fresh);
    idempotency::release(&mut wr(db).await, u, "k2")
        .await
        .unwrap();
    assert_eq!(bind(db, u, "k2", "order:9").await, 0);
}

async fn expired_records_are_purged_and_live_ones_kept(db: &Db) {
    let u = add_user(db, "idem6@example.com", &[]).await.id;
    let now = clock::now();
    let old = now - Duration::hours(25);
    for (key, created, expires) in [
        ("old", old, now - Duration::seconds(1)),
        ("live", now, now + Duration::hours(24)),
    ] {
        idempotency::claim(&mut wr(db).await, u, key, "fp", created, expires)
            .await
            .unwrap();
    }
    assert_eq!(
        idempotency::purge_expired(&mut wr(db).await, now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        idempotency::purge_expired(&mut wr(db).await, now)
            .await
            .unwrap(),
        0
    );
    assert_eq!(claim(db, u, "live", "fp").await, Claim::InProgress);
}
