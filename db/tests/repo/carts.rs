//! Cart writes (`mall_db::repo::carts`): guarded by the cart's version, created once, and safe
//! with two writers on one SQLite file.

use futures_util::future::join_all;
use mall_db::Db;
use mall_db::clock;
use mall_db::repo::carts::{self, WriteOutcome};

use crate::common::{add_user, rd, wr};

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
