//! Placing orders, many in one transaction. A batch locks the rows of every product it names
//! once (in id order), decides in memory which orders the stock covers (in arrival order),
//! takes each product's stock with one conditional update for the whole batch, writes every
//! order, line and payment session with one multi-row insert each, empties the carts that
//! checked out, binds idempotency keys, and commits once. A hot product's row is then locked and
//! committed once per batch instead of once per buyer, which is what lets a flash sale go faster
//! than the database's single-row update rate.
//!
//! Every order is still all or nothing: an order the stock does not cover is refused whole and
//! takes nothing, and the others in its batch are not affected by it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use time::PrimitiveDateTime;

use super::orders::{IdempotencyBinding, NewOrder, OrderWithItems, WantedLine, status};
use super::payments::status as payment_status;
use crate::error::DbError;
use crate::models::{OrderItemRow, OrderRow, PaymentRow};
use crate::money::{self, Overflow};
use crate::pool::{DbConn, SqliteConn};
use crate::schema::{cart_lines, carts, order_items, orders, payments, products};
use crate::with_conn;

/// One order to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The order's id, buyer, address, note and deadline.
    pub order: NewOrder,
    /// What it buys, in the order the buyer gave (each product once).
    pub lines: Vec<WantedLine>,
    /// When it was asked for (its `created_at`).
    pub now: PrimitiveDateTime,
    /// The `Idempotency-Key` to bind to the order, inside the same transaction.
    pub idem: Option<IdempotencyBinding>,
    /// What a checkout adds to the order in the same transaction.
    pub checkout: Option<CheckoutPart>,
}

/// The rest of a checkout: the buyer's cart is emptied and a payment session opened (and, when a
/// card came with the checkout, charged) with the order, so a purchase is one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutPart {
    /// The cart must still be at this version (it holds exactly the order's lines).
    pub cart_version: i64,
    /// The session's id.
    pub session_id: i64,
    /// The session's deadline.
    pub session_expires_at: PrimitiveDateTime,
    /// What the payment gateway answered for the checkout's card, if one was given.
    pub charge: Option<Charge>,
}

/// The gateway's answer for a card, asked before the order is placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    /// Approved: the session succeeds and the order is paid as it is placed.
    Approved {
        /// The card's last four digits.
        last4: String,
    },
    /// Declined: the session stays pending with `last_error = "card_declined"`.
    Declined {
        /// The card's last four digits.
        last4: String,
    },
}

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
    /// A line names a product that does not exist or was deleted.
    #[error("product {0} not found")]
    ProductNotFound(i64),
    /// A line wants more than is left.
    #[error("product {product_id}: only {available} available")]
    InsufficientStock {
        /// The product short of stock.
        product_id: i64,
        /// What is left of it for this order.
        available: i64,
    },
    /// The checkout's cart was not at the version it read (another writer changed it).
    #[error("the cart changed")]
    CartChanged,
    /// The order's `Idempotency-Key` is no longer waiting for it: its caller gave up and the key
    /// was released, or another attempt of the same request bound it first.
    #[error("the Idempotency-Key is no longer held for this order")]
    KeyNotHeld,
    /// A total left `i64` (impossible within the API's bounds: a bug or an old row).
    #[error(transparent)]
    Overflow(#[from] Overflow),
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

/// A product as a placement sees it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Stocked {
    /// Its id.
    pub id: i64,
    /// Units left.
    pub stock: i64,
    /// Deleted products cannot be bought.
    pub deleted: bool,
    /// Copied to the order line.
    pub name: String,
    /// Copied to the order line.
    pub price_cents: i64,
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

/// Writes a batch's new rows.
trait InsertRows {
    fn insert_rows(&mut self, rows: NewRows) -> impl Future<Output = QueryResult<()>> + Send;
}

impl InsertRows for crate::AsyncPgConnection {
    async fn insert_rows(&mut self, rows: NewRows) -> QueryResult<()> {
        for chunk in rows.orders.chunks(INSERT_CHUNK) {
            diesel::insert_into(orders::table)
                .values(chunk)
                .execute(self)
                .await?;
        }
        for chunk in rows.items.chunks(INSERT_CHUNK) {
            diesel::insert_into(order_items::table)
                .values(chunk)
                .execute(self)
                .await?;
        }
        for chunk in rows.payments.chunks(INSERT_CHUNK) {
            diesel::insert_into(payments::table)
                .values(chunk)
                .execute(self)
                .await?;
        }
        Ok(())
    }
}

impl InsertRows for SqliteConn {
    fn insert_rows(&mut self, rows: NewRows) -> impl Future<Output = QueryResult<()>> + Send {
        // diesel-async's SQLite wrapper has no multi-row insert; the synchronous connection it
        // wraps has, so the inserts run there, in one hop to the blocking thread.
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
    }
}

/// Which orders of a group the stock covers, in arrival order: for each, the units it takes per
/// product, or why it is refused. `left` is what the products have; it is reduced as orders
/// are accepted.
pub fn allocate<'a>(
    left: &mut HashMap<i64, Stocked>,
    orders: impl IntoIterator<Item = &'a [WantedLine]>,
) -> Vec<Result<(), PlaceError>> {
    orders
        .into_iter()
        .map(|lines| {
            let mut wanted: BTreeMap<i64, i64> = BTreeMap::new();
            for l in lines {
                *wanted.entry(l.product_id).or_default() += i64::from(l.quantity);
            }
            for (&product_id, &quantity) in &wanted {
                match left.get(&product_id) {
                    Some(p) if !p.deleted => {
                        if p.stock < quantity {
                            return Err(PlaceError::InsufficientStock {
                                product_id,
                                available: p.stock,
                            });
                        }
                    }
                    _ => return Err(PlaceError::ProductNotFound(product_id)),
                }
            }
            for (product_id, quantity) in wanted {
                if let Some(p) = left.get_mut(&product_id) {
                    p.stock -= quantity;
                }
            }
            Ok(())
        })
        .collect()
}

/// The rows a placed order adds.
type OrderRows = (OrderRow, Vec<OrderItemRow>, Option<PaymentRow>);

/// The rows a placed order adds, priced from `products`.
fn rows_of(p: &Placement, products: &HashMap<i64, Stocked>) -> Result<OrderRows, Overflow> {
    let items = p
        .lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let (name, price) = products
                .get(&line.product_id)
                .map(|s| (s.name.clone(), s.price_cents))
                .unwrap_or_default();
            Ok(OrderItemRow {
                order_id: p.order.id,
                position: i32::try_from(i).unwrap_or(i32::MAX),
                product_id: line.product_id,
                name,
                unit_price_cents: price,
                quantity: line.quantity,
                line_total_cents: money::line_total(price, line.quantity)?,
            })
        })
        .collect::<Result<Vec<OrderItemRow>, Overflow>>()?;
    let total_cents = money::sum(items.iter().map(|i| i.line_total_cents))?;
    let charge = p.checkout.as_ref().and_then(|c| c.charge.as_ref());
    let paid = matches!(charge, Some(Charge::Approved { .. }));
    let order = OrderRow {
        id: p.order.id,
        user_id: p.order.user_id,
        status: if paid { status::PAID } else { status::PENDING }.to_owned(),
        total_cents,
        address: p.order.address.clone(),
        note: p.order.note.clone(),
        created_at: p.now,
        updated_at: p.now,
        expires_at: p.order.expires_at,
        paid_at: paid.then_some(p.now),
        cancelled_at: None,
        cancel_reason: None,
        version: 1,
    };
    let payment = p.checkout.as_ref().map(|c| {
        let (status, last4, last_error, attempts) = match &c.charge {
            None => (payment_status::PENDING, None, None, 0),
            Some(Charge::Approved { last4 }) => {
                (payment_status::SUCCEEDED, Some(last4.clone()), None, 1)
            }
            Some(Charge::Declined { last4 }) => (
                payment_status::PENDING,
                Some(last4.clone()),
                Some("card_declined".to_owned()),
                1,
            ),
        };
        PaymentRow {
            id: c.session_id,
            order_id: p.order.id,
            user_id: p.order.user_id,
            amount_cents: total_cents,
            status: status.to_owned(),
            card_last4: last4,
            last_error,
            attempts,
            created_at: p.now,
            updated_at: p.now,
            expires_at: c.session_expires_at,
            succeeded_at: paid.then_some(p.now),
            cancelled_at: None,
            version: 1,
        }
    });
    Ok((order, items, payment))
}

/// One try at placing the orders `group` names, in one transaction.
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
        let stocked = c.read_for_update(ids.clone()).await?;
        let products: HashMap<i64, Stocked> = stocked.into_iter().map(|s| (s.id, s)).collect();
        let mut left = products.clone();
        let verdicts = allocate(&mut left, group.iter().map(|&i| batch[i].lines.as_slice()));
        // Every accepted order is priced before anything is written.
        let mut priced = Vec::with_capacity(group.len());
        for (k, (&i, verdict)) in group.iter().zip(verdicts).enumerate() {
            priced.push(match verdict {
                Ok(()) => Ok(rows_of(&batch[i], &products).map_err(|e| Abort::Drop(k, e.into()))?),
                Err(refused) => Err(refused),
            });
        }

        // Carts first: a checkout whose cart changed is taken out of the batch.
        let mut emptied: Vec<i64> = Vec::new();
        for (k, (&i, rows)) in group.iter().zip(&priced).enumerate() {
            let (Ok(_), Some(part)) = (rows, &batch[i].checkout) else { continue };
            let user = batch[i].order.user_id;
            let bumped = diesel::update(carts::table.find(user).filter(carts::version.eq(part.cart_version)))
                .set((carts::version.eq(part.cart_version + 1), carts::updated_at.eq(batch[i].now)))
                .execute(c)
                .await?;
            if bumped == 0 {
                return Err(Abort::Drop(k, PlaceError::CartChanged));
            }
            emptied.push(user);
        }
        if !emptied.is_empty() {
            diesel::delete(cart_lines::table.filter(cart_lines::user_id.eq_any(emptied))).execute(c).await?;
        }

        // Each product's stock, once for the whole batch, in id order.
        for id in &ids {
            let (Some(before), Some(after)) = (products.get(id), left.get(id)) else { continue };
            let taken = before.stock - after.stock;
            if taken == 0 {
                continue;
            }
            let updated = diesel::update(
                products::table
                    .find(*id)
                    .filter(products::deleted_at.is_null())
                    .filter(products::stock.ge(taken)),
            )
            .set(products::stock.eq(products::stock - taken))
            .execute(c)
            .await?;
            if updated == 0 {
                return Err(Abort::StockMoved);
            }
        }

        let mut order_rows = Vec::new();
        let mut item_rows = Vec::new();
        let mut payment_rows = Vec::new();
        let mut answers = Vec::with_capacity(group.len());
        for (&i, rows) in group.iter().zip(priced) {
            let (order, items, payment) = match rows {
                Ok(rows) => rows,
                Err(refused) => {
                    answers.push(Err(refused));
                    continue;
                }
            };
            order_rows.push(order.clone());
            item_rows.extend(items.iter().cloned());
            payment_rows.extend(payment.iter().cloned());
            let cart_version = batch[i].checkout.as_ref().map(|part| part.cart_version + 1);
            answers.push(Ok(Placed { order: (order, items), payment, cart_version }));
        }
        c.insert_rows(NewRows { orders: order_rows, items: item_rows, payments: payment_rows }).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: i64, stock: i64) -> (i64, Stocked) {
        (
            id,
            Stocked {
                id,
                stock,
                deleted: false,
                name: format!("p{id}"),
                price_cents: 100,
            },
        )
    }

    fn line(product_id: i64, quantity: i32) -> WantedLine {
        WantedLine {
            product_id,
            quantity,
        }
    }

    #[test]
    fn orders_are_covered_in_arrival_order_all_or_nothing() {
        let mut left: HashMap<i64, Stocked> = [product(1, 5), product(2, 1)].into();
        let orders = [
            vec![line(1, 2)],
            vec![line(1, 2), line(2, 2)], // short of product 2: takes nothing
            vec![line(1, 3)],             // 3 of 1 are still there
            vec![line(2, 1)],
            vec![line(1, 1)], // none left
        ];
        let verdicts = allocate(&mut left, orders.iter().map(Vec::as_slice));
        assert!(verdicts[0].is_ok());
        assert!(matches!(
            verdicts[1],
            Err(PlaceError::InsufficientStock {
                product_id: 2,
                available: 1
            })
        ));
        assert!(verdicts[2].is_ok());
        assert!(verdicts[3].is_ok());
        assert!(matches!(
            verdicts[4],
            Err(PlaceError::InsufficientStock {
                product_id: 1,
                available: 0
            })
        ));
        assert_eq!(left[&1].stock, 0);
        assert_eq!(left[&2].stock, 0);
    }

    #[test]
    fn unknown_and_deleted_products_are_not_found_and_take_nothing() {
        let mut left: HashMap<i64, Stocked> = [product(1, 5), product(2, 5)].into();
        left.get_mut(&2).unwrap().deleted = true;
        let orders = [vec![line(1, 1), line(9, 1)], vec![line(1, 1), line(2, 1)]];
        let verdicts = allocate(&mut left, orders.iter().map(Vec::as_slice));
        assert!(matches!(verdicts[0], Err(PlaceError::ProductNotFound(9))));
        assert!(matches!(verdicts[1], Err(PlaceError::ProductNotFound(2))));
        assert_eq!(left[&1].stock, 5);
    }

    #[test]
    fn the_first_short_line_by_product_id_is_the_one_reported() {
        let mut left: HashMap<i64, Stocked> = [product(1, 0), product(2, 0)].into();
        let orders = [vec![line(2, 1), line(1, 1)]];
        let verdicts = allocate(&mut left, orders.iter().map(Vec::as_slice));
        assert!(matches!(
            verdicts[0],
            Err(PlaceError::InsufficientStock { product_id: 1, .. })
        ));
    }
}
