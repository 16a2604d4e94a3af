//! Fencing epochs (DESIGN.md, "Cluster"): the owner of a shard records the epoch of its claim
//! before it serves the shard, and every write of an owned entity checks that epoch in the
//! same transaction. On PostgreSQL the check takes a share lock on the shard's row, so a new
//! owner's [`advance`] waits for the old owner's open transactions to end, and every old-owner
//! transaction that starts later sees the greater epoch and rolls back: an owner that was
//! paused or cut off writes nothing once a newer epoch exists.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use time::PrimitiveDateTime;

use crate::error::DbError;
use crate::pool::DbConn;
use crate::schema::shard_epochs;

pub use crate::domain::Fence;

fn shard_key(shard: u32) -> i32 {
    // Shards are few (`cluster.shards`, at most a few thousand): always in range.
    i32::try_from(shard).unwrap_or(i32::MAX)
}

/// Records `epoch` as `shard`'s epoch, owned by `node_id`, unless an equal or greater one is
/// there already. Returns whether it was recorded. On PostgreSQL it waits for every open
/// transaction that checked the shard's previous epoch.
pub async fn advance(
    conn: &mut DbConn,
    shard: u32,
    epoch: i64,
    node_id: &str,
    now: PrimitiveDateTime,
) -> Result<bool, DbError> {
    let inserted = diesel::insert_into(shard_epochs::table)
        .values((
            shard_epochs::shard.eq(shard_key(shard)),
            shard_epochs::epoch.eq(epoch),
            shard_epochs::node_id.eq(node_id),
            shard_epochs::updated_at.eq(now),
        ))
        .on_conflict_do_nothing();
    if crate::with_conn!(&mut *conn, c => inserted.execute(c).await)? == 1 {
        return Ok(true);
    }
    // Only ever upwards; on PostgreSQL the row lock waits for the share locks of open checks.
    let raised = diesel::update(
        shard_epochs::table
            .filter(shard_epochs::shard.eq(shard_key(shard)))
            .filter(shard_epochs::epoch.lt(epoch)),
    )
    .set((
        shard_epochs::epoch.eq(epoch),
        shard_epochs::node_id.eq(node_id),
        shard_epochs::updated_at.eq(now),
    ));
    Ok(crate::with_conn!(conn, c => raised.execute(c).await)? == 1)
}

/// The epoch recorded for `shard`, if any.
pub async fn current(conn: &mut DbConn, shard: u32) -> Result<Option<i64>, DbError> {
    let q = shard_epochs::table
        .filter(shard_epochs::shard.eq(shard_key(shard)))
        .select(shard_epochs::epoch);
    Ok(crate::with_conn!(conn, c => q.first(c).await.optional())?)
}

/// Reads a shard's epoch inside a write transaction, share-locked on PostgreSQL until it ends.
pub(crate) trait ReadEpoch {
    /// The epoch recorded for `shard`, if any.
    fn epoch_for_share(
        &mut self,
        shard: u32,
    ) -> impl std::future::Future<Output = diesel::QueryResult<Option<i64>>> + Send;
}

macro_rules! epoch_query {
    ($shard:expr) => {
        shard_epochs::table
            .filter(shard_epochs::shard.eq(shard_key($shard)))
            .select(shard_epochs::epoch)
    };
}

impl ReadEpoch for crate::AsyncPgConnection {
    async fn epoch_for_share(&mut self, shard: u32) -> diesel::QueryResult<Option<i64>> {
        epoch_query!(shard).for_share().first(self).await.optional()
    }
}

impl ReadEpoch for crate::SqliteConn {
    async fn epoch_for_share(&mut self, shard: u32) -> diesel::QueryResult<Option<i64>> {
        // SQLite has one writer at a time: the write transaction is the lock.
        epoch_query!(shard).first(self).await.optional()
    }
}

/// Whether `found` (the recorded epoch) still lets `fence` write.
pub(crate) fn holds(fence: Fence, found: Option<i64>) -> Result<(), DbError> {
    if found == Some(fence.epoch) {
        Ok(())
    } else {
        Err(DbError::Fenced { shard: fence.shard })
    }
}

/// Checks, inside the caller's transaction, that `fence` is still the shard's epoch; a
/// greater (or missing) one is [`DbError::Fenced`]. On PostgreSQL the row stays share-locked
/// until the transaction ends, so the epoch cannot move while it writes.
pub async fn check(conn: &mut DbConn, fence: Fence) -> Result<(), DbError> {
    let found = crate::with_conn!(conn, c => c.epoch_for_share(fence.shard).await)?;
    holds(fence, found)
}

/// Runs `work` as a write of the entity `fence` guards: in one transaction that first checks
/// the fence. Without a fence (a single node) `work` runs as it is, with no transaction added.
pub async fn guarded<T, E>(
    conn: &mut DbConn,
    fence: Option<Fence>,
    op: &'static str,
    work: impl AsyncFnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DbError>,
{
    match fence {
        None => work(conn).await,
        Some(_) => transaction(conn, fence, op, work).await,
    }
}

/// Runs `work` in one transaction that, with a fence, first checks it: for writes that need a
/// transaction of their own whether fenced or not.
pub async fn transaction<T, E>(
    conn: &mut DbConn,
    fence: Option<Fence>,
    op: &'static str,
    work: impl AsyncFnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DbError>,
{
    conn.transaction(op, async |c| {
        if let Some(fence) = fence {
            check(c, fence).await?;
        }
        work(c).await
    })
    .await
}
