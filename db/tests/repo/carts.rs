//! Cart writes (`mall_db::repo::carts`): guarded by the cart's version, created once, and safe
//! with two writers on one SQLite file.

use futures_util::future::join_all;
use mall_db::Db;
use mall_db::clock;
use mall_db::repo::carts::{self, LineWrite, StoredLine, WriteOutcome};
use mall_db::repo::products;

use crate::common::{add_product, add_user, next_id, rd, wr};

on_both_backends!(a_cart_is_created_once_then_written_at_its_version);

async fn write(db: &Db, user: i64, version: Option<i64>) -> WriteOutcome {
    carts::write(&mut wr(db).await, user, version, &[], clock::now())
        .await
        .expect("cart write")
}

async fn a_cart_is_created_once_then_written_at_its_version(db: &Db) {
    let user = add_user(db, "cart-once@example.com", &[]).await.id;
    assert_eq!(write(db, user, None).await, WriteOutcome::Written(1));
    assert_eq!(
        write(db, user, None).await,
        WriteOutcome::Conflict,
        "it exists"
    );
    assert_eq!(
        write(db, user, Some(2)).await,
        WriteOutcome::Conflict,
        "not at 2"
    );
    assert_eq!(write(db, user, Some(1)).await, WriteOutcome::Written(2));
    let stored = carts::load(&mut rd(db).await, user).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
}

/// Two writers on one SQLite file, as two processes would be, creating carts at once: each
/// creation starts with its write, so none is refused with "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_sqlite_file_create_carts() {
    let database = mall_db::testing::TestDatabase::sqlite().await;
    let first = crate::common::migrated(&database).await;
    let second = crate::common::connect(database.url());
    let mut users = Vec::new();
    for i in 0..40 {
        users.push(
            add_user(&first, &format!("two-carts-{i}@example.com"), &[])
                .await
                .id,
        );
    }
    let creations = users.iter().enumerate().map(|(i, &user)| {
        let db = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        async move {
            let mut conn = wr(&db).await;
            carts::write(&mut conn, user, None, &[], clock::now()).await
        }
    });
    let failed: Vec<String> = join_all(creations)
        .await
        .into_iter()
        .filter_map(|r| match r {
            Ok(WriteOutcome::Written(1)) => None,
            other => Some(format!("{other:?}")),
        })
        .collect();
    assert!(failed.is_empty(), "creations failed: {failed:?}");
}

on_both_backends!(a_line_is_upserted_at_the_carts_version_and_only_for_a_live_product);

/// The commonest write, one upserted line (a single statement on PostgreSQL): it bumps the
/// version, is refused at a stale version, and writes nothing for a deleted product.
async fn a_line_is_upserted_at_the_carts_version_and_only_for_a_live_product(db: &Db) {
    let user = add_user(db, "cart-line@example.com", &[]).await.id;
    let kettle = add_product(db, user, "kettle", 100, 10).await;
    let lamp = add_product(db, user, "lamp", 100, 10).await;
    let upsert = |product_id: i64, quantity: i32, position: i64, version: i64| async move {
        let line = StoredLine {
            product_id,
            quantity,
            position,
        };
        carts::write(
            &mut wr(db).await,
            user,
            Some(version),
            &[LineWrite::Upsert(line)],
            clock::now(),
        )
        .await
        .expect("cart write")
    };
    assert_eq!(write(db, user, None).await, WriteOutcome::Written(1));
    assert_eq!(upsert(kettle, 2, 0, 1).await, WriteOutcome::Written(2));
    assert_eq!(upsert(kettle, 5, 0, 2).await, WriteOutcome::Written(3));
    assert_eq!(upsert(lamp, 1, 1, 2).await, WriteOutcome::Conflict, "stale");
    assert_eq!(upsert(lamp, 1, 1, 3).await, WriteOutcome::Written(4));
    products::soft_delete(&mut wr(db).await, lamp, clock::now())
        .await
        .expect("deleted");
    assert_eq!(upsert(lamp, 3, 1, 4).await, WriteOutcome::ProductGone(lamp));
    let unknown = next_id();
    assert_eq!(
        upsert(unknown, 1, 2, 4).await,
        WriteOutcome::ProductGone(unknown)
    );
    let stored = carts::load(&mut rd(db).await, user).await.unwrap().unwrap();
    assert_eq!(stored.version, 4, "refused writes change nothing");
    let lines: Vec<(i64, i32)> = stored
        .lines
        .iter()
        .map(|l| (l.product_id, l.quantity))
        .collect();
    assert_eq!(lines, [(kettle, 5), (lamp, 1)]);
}
