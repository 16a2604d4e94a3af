//! Orders: reads and the order's own writes (details, cancelled, paid), each one statement its
//! owner composes in a transaction of its own. Orders are created by
//! [`placements`](super::placements).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use time::PrimitiveDateTime;

use super::{Page, page_bounds};
use crate::domain::{CancelReason, OrderStatus};
use crate::error::DbError;
use crate::models::{OrderItemRow, OrderRow};
use crate::pool::DbConn;
use crate::schema::{order_items, orders};
use crate::with_conn;

pub use crate::domain::placement::{IdempotencyBinding, NewOrder, WantedLine};

/// An order with its lines.
pub type OrderWithItems = (OrderRow, Vec<OrderItemRow>);

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
    status: Option<OrderStatus>,
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
                q = q.filter(orders::status.eq(s));
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
        .filter(orders::status.eq(OrderStatus::PendingPayment));
    let changes = (
        address.map(|a| orders::address.eq(a.to_owned())),
        note.map(|n| orders::note.eq(n.map(str::to_owned))),
        orders::updated_at.eq(now),
        orders::version.eq(version + 1),
    );
    let q = diesel::update(target).set(changes);
    Ok(with_conn!(conn, c => q.returning(OrderRow::as_returning()).get_result(c).await.optional())?)
}

/// Marks a pending order cancelled with `reason`. `Ok(None)`: it was not pending (nothing
/// written). Its owner gives the stock back and ends its pending session in the same
/// transaction ([`products::give_back`](super::products::give_back),
/// [`payments::cancel_pending_of`](super::payments::cancel_pending_of)).
pub async fn mark_cancelled(
    conn: &mut DbConn,
    id: i64,
    reason: CancelReason,
    now: PrimitiveDateTime,
) -> Result<Option<OrderRow>, DbError> {
    let q = diesel::update(
        orders::table
            .find(id)
            .filter(orders::status.eq(OrderStatus::PendingPayment)),
    )
    .set((
        orders::status.eq(OrderStatus::Cancelled),
        orders::cancelled_at.eq(Some(now)),
        orders::cancel_reason.eq(Some(reason)),
        orders::updated_at.eq(now),
        orders::version.eq(orders::version + 1),
    ));
    Ok(with_conn!(conn, c => q.returning(OrderRow::as_returning()).get_result(c).await.optional())?)
}

/// Marks a pending order paid. `Ok(None)`: it was not pending (nothing written).
pub async fn mark_paid(
    conn: &mut DbConn,
    id: i64,
    now: PrimitiveDateTime,
) -> Result<Option<OrderRow>, DbError> {
    let q = diesel::update(
        orders::table
            .find(id)
            .filter(orders::status.eq(OrderStatus::PendingPayment)),
    )
    .set((
        orders::status.eq(OrderStatus::Paid),
        orders::paid_at.eq(Some(now)),
        orders::updated_at.eq(now),
        orders::version.eq(orders::version + 1),
    ));
    Ok(with_conn!(conn, c => q.returning(OrderRow::as_returning()).get_result(c).await.optional())?)
}

/// The user's pending orders (to cancel when the account closes).
pub async fn pending_of_user(conn: &mut DbConn, user_id: i64) -> Result<Vec<i64>, DbError> {
    let q = orders::table
        .filter(orders::user_id.eq(user_id))
        .filter(orders::status.eq(OrderStatus::PendingPayment))
        .select(orders::id);
    Ok(with_conn!(conn, c => q.load(c).await)?)
}
