//! Fencing epochs: a newer owner's epoch fences an older owner's writes off, on both backends;
//! on PostgreSQL an owner taking over waits for the old owner's open transaction.

use std::time::Duration;

use mall_db::repo::fences::{self, Fence};
use mall_db::{Db, DbError, clock};

on_both_backends!(a_newer_epoch_fences_the_older_owner_off);

async fn a_newer_epoch_fences_the_older_owner_off(db: &Db) {
    let now = clock::now();
    let mut conn = db.write().await.unwrap();
    let old = Fence {
        shard: 3,
        epoch: 10,
    };
    // Nothing recorded for the shard: no fence holds.
    assert!(matches!(
        fences::check(&mut conn, old).await,
        Err(DbError::Fenced { shard: 3 })
    ));
    assert!(fences::advance(&mut conn, 3, 10, "a", now).await.unwrap());
    fences::check(&mut conn, old).await.unwrap();
    // An older or equal epoch never replaces a newer one.
    assert!(!fences::advance(&mut conn, 3, 9, "b", now).await.unwrap());
    assert!(!fences::advance(&mut conn, 3, 10, "b", now).await.unwrap());
    assert_eq!(fences::current(&mut conn, 3).await.unwrap(), Some(10));
    // A newer owner fences the old one off: its guarded write does not run.
    assert!(fences::advance(&mut conn, 3, 12, "b", now).await.unwrap());
    let mut ran = false;
    let outcome: Result<(), DbError> = fences::guarded(&mut conn, Some(old), "test", async |_| {
        ran = true;
        Ok(())
    })
    .await;
    assert!(matches!(outcome, Err(DbError::Fenced { shard: 3 })));
    assert!(!ran, "a fenced write must not run");
    let new = Fence {
        shard: 3,
        epoch: 12,
    };
    fences::transaction(&mut conn, Some(new), "test", async |c| {
        fences::check(c, new).await
    })
    .await
    .unwrap();
    // Shards are independent; no fence (a single node) runs the work unchecked.
    assert_eq!(fences::current(&mut conn, 4).await.unwrap(), None);
    fences::guarded(&mut conn, None, "test", async |_| Ok::<_, DbError>(()))
        .await
        .unwrap();
}

/// An owner taking a shard over waits for the old owner's transaction that checked the old
/// epoch; once the new epoch is in, the old owner's next transaction is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taking_over_waits_for_the_old_owners_open_write() {
    let database = mall_db::testing::TestDatabase::postgres_migrated().await;
    let db = crate::common::migrated(&database).await;
    let now = clock::now();
    let old = Fence { shard: 7, epoch: 5 };
    {
        let mut conn = db.write().await.unwrap();
        assert!(fences::advance(&mut conn, 7, 5, "old", now).await.unwrap());
    }
    let (checked_tx, checked_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let writer_db = db.clone();
    let writer = tokio::spawn(async move {
        let mut conn = writer_db.write().await.unwrap();
        fences::guarded(&mut conn, Some(old), "test", async |_| {
            let _ = checked_tx.send(());
            let _ = release_rx.await;
            Ok::<_, DbError>(())
        })
        .await
    });
    checked_rx.await.unwrap();
    let taker_db = db.clone();
    let taker = tokio::spawn(async move {
        let mut conn = taker_db.write().await.unwrap();
        fences::advance(&mut conn, 7, 6, "new", clock::now()).await
    });
    // The take-over is blocked while the old owner's write is open (bounded wait).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !taker.is_finished(),
        "advance did not wait for the open write"
    );
    release_tx.send(()).unwrap();
    writer.await.unwrap().unwrap();
    assert!(taker.await.unwrap().unwrap());
    let mut conn = db.write().await.unwrap();
    assert!(matches!(
        fences::check(&mut conn, old).await,
        Err(DbError::Fenced { shard: 7 })
    ));
}
