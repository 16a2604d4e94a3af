//! Payment sessions: reads, and the writes their order's owner composes in its transactions
//! (add one, record a decline, succeed, cancel, expire). Sessions born with a checkout are
//! written by [`placements`](super::placements).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use time::PrimitiveDateTime;

use super::{Page, page_bounds};
use crate::domain::PaymentStatus;
use crate::domain::payment::CARD_DECLINED;
use crate::error::DbError;
use crate::models::PaymentRow;
use crate::pool::DbConn;
use crate::schema::payments;
use crate::with_conn;

/// Adds a session (opened by its order's owner, which knows the order is payable).
pub async fn insert(conn: &mut DbConn, row: &PaymentRow) -> Result<(), DbError> {
    let q = diesel::insert_into(payments::table).values(row);
    with_conn!(conn, c => q.execute(c).await)?;
    Ok(())
}

/// One session.
pub async fn load(conn: &mut DbConn, id: i64) -> Result<Option<PaymentRow>, DbError> {
    Ok(
        with_conn!(conn, c => payments::table.find(id).select(PaymentRow::as_select()).first(c).await.optional())?,
    )
}

/// Every session of an order, oldest first (what its entity loads).
pub async fn of_order(conn: &mut DbConn, order_id: i64) -> Result<Vec<PaymentRow>, DbError> {
    Ok(with_conn!(conn, c => payments::table
        .filter(payments::order_id.eq(order_id))
        .order((payments::created_at.asc(), payments::id.asc()))
        .select(PaymentRow::as_select())
        .load(c)
        .await)?)
}

/// The order a session belongs to (it never changes).
pub async fn order_of(conn: &mut DbConn, id: i64) -> Result<Option<i64>, DbError> {
    let q = payments::table.find(id).select(payments::order_id);
    Ok(with_conn!(conn, c => q.first(c).await.optional())?)
}

/// An order's sessions, oldest first, a page at a time.
pub async fn list_for_order(
    conn: &mut DbConn,
    order_id: i64,
    page: u32,
    page_size: u32,
) -> Result<Page<PaymentRow>, DbError> {
    let (offset, limit) = page_bounds(page, page_size);
    with_conn!(conn, c => {
        let total: i64 = payments::table.filter(payments::order_id.eq(order_id)).count().get_result(c).await?;
        let items: Vec<PaymentRow> = payments::table
            .filter(payments::order_id.eq(order_id))
            .order((payments::created_at.asc(), payments::id.asc()))
            .offset(offset)
            .limit(limit)
            .select(PaymentRow::as_select())
            .load(c)
            .await?;
        Ok(Page { items, total })
    })
}

/// Records a declined charge on a pending session. `Ok(None)`: not pending any more.
pub async fn record_decline(
    conn: &mut DbConn,
    id: i64,
    last4: &str,
    now: PrimitiveDateTime,
) -> Result<Option<PaymentRow>, DbError> {
    let q = diesel::update(
        payments::table
            .find(id)
            .filter(payments::status.eq(PaymentStatus::Pending)),
    )
    .set((
        payments::attempts.eq(payments::attempts + 1),
        payments::last_error.eq(Some(CARD_DECLINED)),
        payments::card_last4.eq(Some(last4.to_owned())),
        payments::updated_at.eq(now),
        payments::version.eq(payments::version + 1),
    ));
    Ok(
        with_conn!(conn, c => q.returning(PaymentRow::as_returning()).get_result(c).await.optional())?,
    )
}

/// Marks a pending, unexpired session succeeded with the card's `last4`. `Ok(None)`: not
/// pending (or past its deadline); nothing written. Its owner marks the order paid in the same
/// transaction ([`orders::mark_paid`](super::orders::mark_paid)), so an order is charged at most
/// once and is never both paid and cancelled.
pub async fn mark_succeeded(
    conn: &mut DbConn,
    id: i64,
    last4: &str,
    now: PrimitiveDateTime,
) -> Result<Option<PaymentRow>, DbError> {
    let q = diesel::update(
        payments::table
            .find(id)
            .filter(payments::status.eq(PaymentStatus::Pending))
            .filter(payments::expires_at.gt(now)),
    )
    .set((
        payments::status.eq(PaymentStatus::Succeeded),
        payments::succeeded_at.eq(Some(now)),
        payments::attempts.eq(payments::attempts + 1),
        payments::card_last4.eq(Some(last4.to_owned())),
        payments::last_error.eq(None::<String>),
        payments::updated_at.eq(now),
        payments::version.eq(payments::version + 1),
    ));
    Ok(
        with_conn!(conn, c => q.returning(PaymentRow::as_returning()).get_result(c).await.optional())?,
    )
}

/// Cancels the order's pending session, if any (its order is being cancelled); returns it.
pub async fn cancel_pending_of(
    conn: &mut DbConn,
    order_id: i64,
    now: PrimitiveDateTime,
) -> Result<Vec<PaymentRow>, DbError> {
    let q = diesel::update(
        payments::table
            .filter(payments::order_id.eq(order_id))
            .filter(payments::status.eq(PaymentStatus::Pending)),
    )
    .set((
        payments::status.eq(PaymentStatus::Cancelled),
        payments::cancelled_at.eq(Some(now)),
        payments::updated_at.eq(now),
        payments::version.eq(payments::version + 1),
    ));
    Ok(with_conn!(conn, c => q.returning(PaymentRow::as_returning()).get_results(c).await)?)
}

/// Moves a pending session to `cancelled` or `expired`. `Ok(None)`: not pending any more.
pub async fn close(
    conn: &mut DbConn,
    id: i64,
    to: PaymentStatus,
    now: PrimitiveDateTime,
) -> Result<Option<PaymentRow>, DbError> {
    let cancelled_at = (to == PaymentStatus::Cancelled).then_some(now);
    let q = diesel::update(
        payments::table
            .find(id)
            .filter(payments::status.eq(PaymentStatus::Pending)),
    )
    .set((
        payments::status.eq(to),
        payments::cancelled_at.eq(cancelled_at),
        payments::updated_at.eq(now),
        payments::version.eq(payments::version + 1),
    ));
    Ok(
        with_conn!(conn, c => q.returning(PaymentRow::as_returning()).get_result(c).await.optional())?,
    )
}
