//! Placing orders, many in one transaction: this module applies what
//! [`domain::placement::plan`](crate::domain::placement::plan) decides. A batch locks the rows of
//! every product it names once (in id order), has the plan say which orders the stock covers (in
//! arrival order) and the rows each adds, takes each product's stock with one conditional update for the whole batch, writes every
//! order, line and payment session with one multi-row insert each, empties the carts that
//! checked out, binds idempotency keys, and commits once. A hot product's row is then locked and
//! committed once per batch instead of once per buyer, which is what lets a flash sale go faster
//! than the database's single-row update rate.
//!
//! Every order is still all or nothing: an order the stock does not cover is refused whole and
//! takes nothing, and the others in its batch are not affected by it.

use std::collections::VecDeque;
use std::future::Future;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::fences::{self, ReadEpoch};
use super::orders::OrderWithItems;
use crate::domain::Fence;
use crate::domain::placement::{Refused, plan};
use crate::error::DbError;
use crate::models::{OrderItemRow, OrderRow, PaymentRow};
use crate::pool::{DbConn, SqliteConn};
use crate::schema::{cart_lines, carts, order_items, orders, payments, products};
use crate::with_conn;

pub use crate::domain::Charge;
pub use crate::domain::placement::{CheckoutPart, Placement, Stocked};

/// What placing an order made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The order and its lines.
    pub order: OrderWithItems,
    /// The payment session a checkout opened.
    pub payment: Option<PaymentRow>,
    /// The emptied cart's new version (checkout only).
    pub cart_version: Option<i64>,
}

/// Why an order was not placed (nothing of it was written).
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// The plan refused the order (a product missing, short of stock, or a total too large).
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The checkout's cart was not at the version it read (another writer changed it).
    #[error("the cart changed")]
    CartChanged,
    /// The order's `Idempotency-Key` is no longer waiting for it: its caller gave up and the key
    /// was released, or another attempt of the same request bound it first.
    #[error("the Idempotency-Key is no longer held for this order")]
    KeyNotHeld,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// How often a batch is retried when a product's stock moved between the read and the write
/// (the rows are locked ahead on both backends: this is a safety net, never expected to fire).
const STOCK_RETRIES: usize = 3;
/// Rows per multi-row insert (well inside both backends' limits on bound parameters).
const INSERT_CHUNK: usize = 500;

/// Places every order of `batch` and answers for each, in order. Refusals are per order; a
/// failure that belongs to one order (a constraint it breaks) is found by placing the batch's
/// orders one by one, so it does not fail the others.
pub async fn place(conn: &mut DbConn, batch: &[Placement]) -> Vec<Result<Placed, PlaceError>> {
    let mut answers: Vec<Option<Result<Placed, PlaceError>>> = batch.iter().map(|_| None).collect();
    let mut groups: VecDeque<Vec<usize>> = VecDeque::from([(0..batch.len()).collect()]);
    while let Some(mut group) = groups.pop_front() {
        let mut retries = 0;
        while !group.is_empty() {
            match attempt(conn, batch, &group).await {
                Ok(done) => {
                    for (&i, answer) in group.iter().zip(done) {
                        answers[i] = Some(answer);
                    }
                    break;
                }
                Err(Abort::Drop(k, why)) => {
                    answers[group.remove(k)] = Some(Err(why));
                }
                Err(Abort::StockMoved) if retries < STOCK_RETRIES => retries += 1,
                // Nothing to do with any one order: each of them is told to retry later.
                Err(abort @ (Abort::StockMoved | Abort::Db(DbError::Unavailable(_)))) => {
                    let why = match abort {
                        Abort::Db(DbError::Unavailable(why)) => why,
                        _ => "stock kept changing during the placement".to_owned(),
                    };
                    for &i in &group {
                        answers[i] = Some(Err(DbError::Unavailable(why.clone()).into()));
                    }
                    break;
                }
                Err(Abort::Db(e)) if group.len() == 1 => {
                    answers[group[0]] = Some(Err(e.into()));
                    break;
                }
                Err(Abort::Db(e)) => {
                    tracing::debug!(error = %e, orders = group.len(), "batch failed; placing its orders one by one");
                    groups.extend(group.iter().map(|&i| vec![i]));
                    break;
                }
            }
        }
    }
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(DbError::Unavailable("not placed".into()).into())))
        .collect()
}

/// Why one try at a batch rolled back.
enum Abort {
    /// The placement at this index of the group cannot be placed, for this reason; the others
    /// are tried again without it.
    Drop(usize, PlaceError),
    /// A product's stock was not what the batch read.
    StockMoved,
    /// The database failed.
    Db(DbError),
}

impl From<diesel::result::Error> for Abort {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Db(e.into())
    }
}

/// Reads the products a batch names, locked against other writers until it commits.
trait ReadForUpdate {
    fn read_for_update(
        &mut self,
        ids: Vec<i64>,
    ) -> impl Future<Output = QueryResult<Vec<Stocked>>> + Send;
}

macro_rules! stocked_query {
    ($ids:expr) => {
        products::table
            .filter(products::id.eq_any($ids))
            .order(products::id.asc())
            .select((
                products::id,
                products::stock,
                products::deleted_at.is_not_null(),
                products::name,
                products::price_cents,
            ))
    };
}

impl ReadForUpdate for crate::AsyncPgConnection {
    fn read_for_update(
        &mut self,
        ids: Vec<i64>,
    ) -> impl Future<Output = QueryResult<Vec<Stocked>>> + Send {
        // NO KEY UPDATE, the lock an UPDATE of the stock takes anyway: it does not block the
        // foreign-key checks of cart lines and order items naming the product.
        stocked_query!(ids).for_no_key_update().load(self)
    }
}

impl ReadForUpdate for SqliteConn {
    async fn read_for_update(&mut self, ids: Vec<i64>) -> QueryResult<Vec<Stocked>> {
        // SQLite has one writer at a time. A statement that writes nothing still takes the
        // write lock (as BEGIN IMMEDIATE would), waiting out the busy timeout, so another
        // process on the same file cannot commit between this read and the batch's writes.
        diesel::sql_query("UPDATE products SET stock = stock WHERE 0")
            .execute(&mut *self)
            .await?;
        stocked_query!(ids).load(self).await
    }
}

/// The rows a batch adds, written with one multi-row insert per table (in chunks).
struct NewRows {
    orders: Vec<OrderRow>,
    items: Vec<OrderItemRow>,
    payments: Vec<PaymentRow>,
}

/// Everything a batch writes once its plan is made, but the idempotency keys.
struct BatchWrites<'a> {
    /// The carts that checked out: `(user, the version read, now)`, in the group's order.
    bumps: Vec<(i64, i64, time::PrimitiveDateTime)>,
    /// Each product's stock to take, in id order.
    takes: &'a [(i64, i64)],
    rows: NewRows,
}

/// What the writes found.
struct Written {
    /// Rows each cart bump changed, in the order of `bumps` (0: the cart changed).
    bumped: Vec<usize>,
    /// Whether every stock update found its stock.
    stock_taken: bool,
}

/// Applies a batch's writes. On PostgreSQL the statements that do not wait on each other go
/// out together on the connection (pipelined): the cart bumps, the emptied carts' lines, the
/// stock updates and the orders in one flight, then the lines and the sessions that name those
/// orders in a second; on SQLite they run one after another.
trait WriteBatch {
    fn write_batch(
        &mut self,
        w: BatchWrites<'_>,
    ) -> impl Future<Output = QueryResult<Written>> + Send;
}

macro_rules! bump_query {
    ($user:expr, $version:expr, $now:expr) => {
        diesel::update(carts::table.find($user).filter(carts::version.eq($version)))
            .set((carts::version.eq($version + 1), carts::updated_at.eq($now)))
    };
}

macro_rules! empty_query {
    ($users:expr) => {
        diesel::delete(cart_lines::table.filter(cart_lines::user_id.eq_any($users)))
    };
}

macro_rules! take_query {
    ($id:expr, $taken:expr) => {
        diesel::update(
            products::table
                .find($id)
                .filter(products::deleted_at.is_null())
                .filter(products::stock.ge($taken)),
        )
        .set(products::stock.eq(products::stock - $taken))
    };
}

impl WriteBatch for crate::AsyncPgConnection {
    async fn write_batch(&mut self, w: BatchWrites<'_>) -> QueryResult<Written> {
        use futures_util::future::{join, join_all, join4};
        let conn: &crate::AsyncPgConnection = self;
        let users: Vec<i64> = w.bumps.iter().map(|b| b.0).collect();
        let bumps = join_all(
            w.bumps
                .iter()
                .map(|&(user, version, now)| bump_query!(user, version, now).execute(&mut &*conn)),
        );
        let emptied = async move {
            if users.is_empty() {
                return Ok(0);
            }
            empty_query!(users).execute(&mut &*conn).await
        };
        let takes = join_all(
            w.takes
                .iter()
                .map(|&(id, taken)| take_query!(id, taken).execute(&mut &*conn)),
        );
        let orders = join_all(w.rows.orders.chunks(INSERT_CHUNK).map(|chunk| {
            diesel::insert_into(orders::table)
                .values(chunk)
                .execute(&mut &*conn)
        }));
        let (bumped, emptied, taken, ordered) = join4(bumps, emptied, takes, orders).await;
        emptied?;
        let bumped = bumped.into_iter().collect::<QueryResult<Vec<usize>>>()?;
        let taken = taken.into_iter().collect::<QueryResult<Vec<usize>>>()?;
        ordered.into_iter().collect::<QueryResult<Vec<usize>>>()?;
        // The lines and sessions name their order: they go once the orders are in.
        let items = join_all(w.rows.items.chunks(INSERT_CHUNK).map(|chunk| {
            diesel::insert_into(order_items::table)
                .values(chunk)
                .execute(&mut &*conn)
        }));
        let sessions = join_all(w.rows.payments.chunks(INSERT_CHUNK).map(|chunk| {
            diesel::insert_into(payments::table)
                .values(chunk)
                .execute(&mut &*conn)
        }));
        let (items, sessions) = join(items, sessions).await;
        items
            .into_iter()
            .chain(sessions)
            .collect::<QueryResult<Vec<usize>>>()?;
        Ok(Written {
            bumped,
            stock_taken: taken.iter().all(|&n| n > 0),
        })
    }
}

impl WriteBatch for SqliteConn {
    async fn write_batch(&mut self, w: BatchWrites<'_>) -> QueryResult<Written> {
        let mut bumped = Vec::with_capacity(w.bumps.len());
        for &(user, version, now) in &w.bumps {
            bumped.push(bump_query!(user, version, now).execute(&mut *self).await?);
        }
        let users: Vec<i64> = w.bumps.iter().map(|b| b.0).collect();
        if !users.is_empty() {
            empty_query!(users).execute(&mut *self).await?;
        }
        let mut stock_taken = true;
        for &(id, taken) in w.takes {
            stock_taken &= take_query!(id, taken).execute(&mut *self).await? > 0;
        }
        // diesel-async's SQLite wrapper has no multi-row insert; the synchronous connection it
        // wraps has, so the inserts run there, in one hop to the blocking thread.
        let rows = w.rows;
        self.spawn_blocking(move |c| {
            for chunk in rows.orders.chunks(INSERT_CHUNK) {
                diesel::RunQueryDsl::execute(diesel::insert_into(orders::table).values(chunk), c)?;
            }
            for chunk in rows.items.chunks(INSERT_CHUNK) {
                diesel::RunQueryDsl::execute(
                    diesel::insert_into(order_items::table).values(chunk),
                    c,
                )?;
            }
            for chunk in rows.payments.chunks(INSERT_CHUNK) {
                diesel::RunQueryDsl::execute(
                    diesel::insert_into(payments::table).values(chunk),
                    c,
                )?;
            }
            Ok(())
        })
        .await?;
        Ok(Written {
            bumped,
            stock_taken,
        })
    }
}

/// One try at placing the orders `group` names, in one transaction: lock, plan, apply.
#[tracing::instrument(
    name = "db.transaction",
    level = "info",
    skip_all,
    fields(op = "placements.attempt")
)]
async fn attempt(
    conn: &mut DbConn,
    batch: &[Placement],
    group: &[usize],
) -> Result<Vec<Result<Placed, PlaceError>>, Abort> {
    let mut ids: Vec<i64> = group
        .iter()
        .flat_map(|&i| batch[i].lines.iter().map(|l| l.product_id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    with_conn!(conn, c => c.transaction(async |c| {
        // In a cluster each order's shard must still be its node's (see `fences`): one that
        // is not is taken out of the batch, the others go on.
        let mut checked: Vec<Fence> = Vec::new();
        for (k, &i) in group.iter().enumerate() {
            let Some(fence) = batch[i].fence else { continue };
            if checked.contains(&fence) {
                continue;
            }
            let found = c.epoch_for_share(fence.shard).await?;
            if let Err(fenced) = fences::holds(fence, found) {
                return Err(Abort::Drop(k, PlaceError::Db(fenced)));
            }
            checked.push(fence);
        }
        let stocked = c.read_for_update(ids.clone()).await?;
        let plan = plan(&stocked, group.iter().map(|&i| &batch[i]));

        let mut rows = NewRows { orders: Vec::new(), items: Vec::new(), payments: Vec::new() };
        let mut bumps = Vec::new();
        // Which of the group each cart bump is for.
        let mut bumped_for = Vec::new();
        let mut answers = Vec::with_capacity(group.len());
        for (k, (&i, born)) in group.iter().zip(plan.orders).enumerate() {
            let born = match born {
                Ok(born) => born,
                Err(refused) => {
                    answers.push(Err(refused.into()));
                    continue;
                }
            };
            if let Some(part) = &batch[i].checkout {
                bumps.push((batch[i].order.user_id, part.cart_version, batch[i].now));
                bumped_for.push(k);
            }
            rows.orders.push(born.order.clone());
            rows.items.extend(born.items.iter().cloned());
            rows.payments.extend(born.payment.iter().cloned());
            let cart_version = batch[i].checkout.as_ref().map(|part| part.cart_version + 1);
            answers.push(Ok(Placed { order: (born.order, born.items), payment: born.payment, cart_version }));
        }
        // A checkout whose cart changed is taken out of the batch; each product's stock is
        // taken once for the whole batch, in id order.
        let written = c.write_batch(BatchWrites { bumps, takes: &plan.takes, rows }).await?;
        if let Some(k) = written.bumped.iter().position(|&n| n == 0) {
            return Err(Abort::Drop(bumped_for[k], PlaceError::CartChanged));
        }
        if !written.stock_taken {
            return Err(Abort::StockMoved);
        }
        for (k, (&i, answer)) in group.iter().zip(&answers).enumerate() {
            if let (Ok(placed), Some(b)) = (answer, &batch[i].idem) {
                // The key must still wait for this order: a caller that gave up released it.
                if super::idempotency::bind!(c, b, format!("order:{}", placed.order.0.id))? == 0 {
                    return Err(Abort::Drop(k, PlaceError::KeyNotHeld));
                }
            }
        }
        Ok(answers)
    }).await)
}
