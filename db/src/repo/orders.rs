//! Orders: creation that takes stock all or nothing, reads, detail changes, cancellation that
//! gives stock back, and the deadlines the sweeper looks for.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use time::PrimitiveDateTime;

use super::{Page, page_bounds};
use crate::error::DbError;
use crate::models::{OrderItemRow, OrderRow};
use crate::pool::DbConn;
use crate::schema::{order_items, orders, payments, products};
use crate::with_conn;

/// Order statuses as stored.
pub mod status {
    /// Waiting to be paid.
    pub const PENDING: &str = "pending_payment";
    /// Paid.
    pub const PAID: &str = "paid";
    /// Cancelled (see `cancel_reason`).
    pub const CANCELLED: &str = "cancelled";
}

/// An order with its lines.
pub type OrderWithItems = (OrderRow, Vec<OrderItemRow>);

/// A line to buy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WantedLine {
    /// The product.
    pub product_id: i64,
    /// How many (1..=999).
    pub quantity: i32,
}

/// An order to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// Its id.
    pub id: i64,
    /// The buyer.
    pub user_id: i64,
    /// The shipping address (JSON).
    pub address: String,
    /// The note.
    pub note: Option<String>,
    /// Its payment deadline.
    pub expires_at: PrimitiveDateTime,
}

/// Why an order could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// A line names a product that does not exist or was deleted.
    #[error("product {0} not found")]
    ProductNotFound(i64),
    /// A line wants more than there is.
    #[error("product {product_id}: only {available} available")]
    InsufficientStock {
        /// The product short of stock.
        product_id: i64,
        /// What it has.
        available: i64,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for CreateError {
    fn from(e: diesel::result::Error) -> Self {
        CreateError::Db(e.into())
    }
}

/// A key to bind to what a request created, inside the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyBinding {
    /// The caller.
    pub user_id: i64,
    /// The `Idempotency-Key`.
    pub key: String,
}

/// Creates the order: takes the stock of every line with one conditional update each (in
/// product-id order, so concurrent orders lock rows in the same order), copies names and prices,
/// and binds `idem` to it — all in one transaction, so a shortfall changes nothing.
pub async fn create(
    conn: &mut DbConn,
    order: NewOrder,
    lines: &[WantedLine],
    now: PrimitiveDateTime,
    idem: Option<IdempotencyBinding>,
) -> Result<OrderWithItems, CreateError> {
    let mut sorted: Vec<WantedLine> = lines.to_vec();
    sorted.sort_by_key(|l| l.product_id);
    with_conn!(conn, c => c.transaction(async |c| {
        for line in &sorted {
            let q = i64::from(line.quantity);
            let taken = diesel::update(
                products::table
                    .find(line.product_id)
                    .filter(products::deleted_at.is_null())
                    .filter(products::stock.ge(q)),
            )
            .set(products::stock.eq(products::stock - q))
            .execute(c)
            .await?;
            if taken == 0 {
                let found: Option<(i64, bool)> = products::table
                    .find(line.product_id)
                    .select((products::stock, products::deleted_at.is_not_null()))
                    .first(c)
                    .await
                    .optional()?;
                return Err(match found {
                    Some((available, false)) => CreateError::InsufficientStock { product_id: line.product_id, available },
                    _ => CreateError::ProductNotFound(line.product_id),
                });
            }
        }
        let ids: Vec<i64> = sorted.iter().map(|l| l.product_id).collect();
        let priced: Vec<(i64, String, i64)> = products::table
            .filter(products::id.eq_any(ids))
            .select((products::id, products::name, products::price_cents))
            .load(c)
            .await?;
        let mut items = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let Some((_, name, price)) = priced.iter().find(|(id, _, _)| *id == line.product_id) else {
                return Err(CreateError::ProductNotFound(line.product_id));
            };
            items.push(OrderItemRow {
                order_id: order.id,
                position: i32::try_from(i).unwrap_or(i32::MAX),
                product_id: line.product_id,
                name: name.clone(),
                unit_price_cents: *price,
                quantity: line.quantity,
                line_total_cents: price.saturating_mul(i64::from(line.quantity)),
            });
        }
        let row = OrderRow {
            id: order.id,
            user_id: order.user_id,
            status: status::PENDING.to_owned(),
            total_cents: items.iter().map(|i| i.line_total_cents).fold(0i64, i64::saturating_add),
            address: order.address.clone(),
            note: order.note.clone(),
            created_at: now,
            updated_at: now,
            expires_at: order.expires_at,
            paid_at: None,
            cancelled_at: None,
            cancel_reason: None,
            version: 1,
        };
        diesel::insert_into(orders::table).values(&row).execute(c).await?;
        for item in &items {
            diesel::insert_into(order_items::table).values(item).execute(c).await?;
        }
        if let Some(b) = &idem {
            super::idempotency::bind!(c, b, format!("order:{}", row.id))?;
        }
        Ok((row, items))
    }).await)
}

/// The order and its lines.
pub async fn load(conn: &mut DbConn, id: i64) -> Result<Option<OrderWithItems>, DbError> {
    with_conn!(conn, c => {
        let row: Option<OrderRow> = orders::table.find(id).select(OrderRow::as_select()).first(c).await.optional()?;
        let Some(row) = row else { return Ok(None) };
        let items: Vec<OrderItemRow> = order_items::table
            .filter(order_items::order_id.eq(id))
            .order(order_items::position.asc())
            .select(OrderItemRow::as_select())
            .load(c)
            .await?;
        Ok(Some((row, items)))
    })
}

/// The user's orders, newest first, optionally of one status.
pub async fn list_for_user(
    conn: &mut DbConn,
    user_id: i64,
    status: Option<&str>,
    page: u32,
    page_size: u32,
) -> Result<Page<OrderWithItems>, DbError> {
    let (offset, limit) = page_bounds(page, page_size);
    macro_rules! filtered {
        () => {{
            let mut q = orders::table
                .filter(orders::user_id.eq(user_id))
                .into_boxed();
            if let Some(s) = status {
                q = q.filter(orders::status.eq(s.to_owned()));
            }
            q
        }};
    }
    let (rows, total, items) = with_conn!(conn, c => {
        let total: i64 = filtered!().count().get_result(c).await?;
        let rows: Vec<OrderRow> = filtered!()
            .order((orders::created_at.desc(), orders::id.desc()))
            .offset(offset)
            .limit(limit)
            .select(OrderRow::as_select())
            .load(c)
            .await?;
        let ids: Vec<i64> = rows.iter().map(|o| o.id).collect();
        let items: Vec<OrderItemRow> = order_items::table
            .filter(order_items::order_id.eq_any(ids))
            .order((order_items::order_id.asc(), order_items::position.asc()))
            .select(OrderItemRow::as_select())
            .load(c)
            .await?;
        Ok::<_, DbError>((rows, total, items))
    })?;
    let items = rows
        .into_iter()
        .map(|o| {
            let mine = items
                .iter()
                .filter(|i| i.order_id == o.id)
                .cloned()
                .collect();
            (o, mine)
        })
        .collect();
    Ok(Page { items, total })
}

/// Changes the address and/or note of a pending order at `version`. `Ok(None)`: the order is
/// not pending at that version any more (nothing written).
pub async fn update_details(
    conn: &mut DbConn,
    id: i64,
    version: i64,
    address: Option<&str>,
    note: Option<Option<&str>>,
    now: PrimitiveDateTime,
) -> Result<Option<OrderRow>, DbError> {
    let target = orders::table
        .find(id)
        .filter(orders::version.eq(version))
        .filter(orders::status.eq(status::PENDING));
    let changes = (
        address.map(|a| orders::address.eq(a.to_owned())),
        note.map(|n| orders::note.eq(n.map(str::to_owned))),
        orders::updated_at.eq(now),
        orders::version.eq(version + 1),
    );
    let q = diesel::update(target).set(changes);
    Ok(with_conn!(conn, c => q.returning(OrderRow::as_returning()).get_result(c).await.optional())?)
}

/// Cancels a pending order with `reason`: gives its stock back and cancels its pending payment
/// session, in one transaction. `Ok(None)`: it was not pending (nothing written).
pub async fn cancel(
    conn: &mut DbConn,
    id: i64,
    reason: &str,
    now: PrimitiveDateTime,
) -> Result<Option<OrderRow>, DbError> {
    let reason = reason.to_owned();
    with_conn!(conn, c => c.transaction(async |c| {
        let row: Option<OrderRow> = diesel::update(orders::table.find(id).filter(orders::status.eq(status::PENDING)))
            .set((
                orders::status.eq(status::CANCELLED),
                orders::cancelled_at.eq(Some(now)),
                orders::cancel_reason.eq(Some(reason.clone())),
                orders::updated_at.eq(now),
                orders::version.eq(orders::version + 1),
            ))
            .returning(OrderRow::as_returning())
            .get_result(c)
            .await
            .optional()?;
        let Some(row) = row else { return Ok::<_, DbError>(None) };
        let lines: Vec<(i64, i32)> = order_items::table
            .filter(order_items::order_id.eq(id))
            .order(order_items::product_id.asc())
            .select((order_items::product_id, order_items::quantity))
            .load(c)
            .await?;
        for (product_id, quantity) in lines {
            diesel::update(products::table.find(product_id))
                .set(products::stock.eq(products::stock + i64::from(quantity)))
                .execute(c)
                .await?;
        }
        diesel::update(payments::table.filter(payments::order_id.eq(id)).filter(payments::status.eq("pending")))
            .set((
                payments::status.eq("cancelled"),
                payments::cancelled_at.eq(Some(now)),
                payments::updated_at.eq(now),
                payments::version.eq(payments::version + 1),
            ))
            .execute(c)
            .await?;
        Ok(Some(row))
    }).await)
}

/// Pending orders whose deadline is before `before`, soonest first (at most `limit`).
pub async fn due(
    conn: &mut DbConn,
    before: PrimitiveDateTime,
    limit: i64,
) -> Result<Vec<(i64, PrimitiveDateTime)>, DbError> {
    let q = orders::table
        .filter(orders::status.eq(status::PENDING))
        .filter(orders::expires_at.le(before))
        .order(orders::expires_at.asc())
        .limit(limit)
        .select((orders::id, orders::expires_at));
    Ok(with_conn!(conn, c => q.load(c).await)?)
}

/// The user's pending orders (to cancel when the account closes).
pub async fn pending_of_user(conn: &mut DbConn, user_id: i64) -> Result<Vec<i64>, DbError> {
    let q = orders::table
        .filter(orders::user_id.eq(user_id))
        .filter(orders::status.eq(status::PENDING))
        .select(orders::id);
    Ok(with_conn!(conn, c => q.load(c).await)?)
}
