//! Payment sessions: open one for a payable order, record a decline, succeed (and mark the order
//! paid in the same transaction), cancel, expire, and the deadlines the sweeper looks for.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use time::PrimitiveDateTime;

use super::orders::IdempotencyBinding;
use super::{Page, Rollback, page_bounds};
use crate::domain::payment::CARD_DECLINED;
use crate::domain::{OrderStatus, PaymentStatus};
use crate::error::DbError;
use crate::models::{OrderRow, PaymentRow};
use crate::pool::DbConn;
use crate::schema::{orders, payments};
use crate::with_conn;

/// What opening a session did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A new session.
    Created(PaymentRow),
    /// The order already had a pending session: this one.
    Existing(PaymentRow),
    /// The order is not the user's (or does not exist).
    NoSuchOrder,
    /// The order is not `pending_payment`.
    NotPayable,
}

/// The error that rolls an effect back when its key is no longer held (see `bind!`): a caller
/// that gave up is answered 503, and so is this late effect, so nothing happens behind a
/// released key.
fn key_not_held() -> DbError {
    DbError::Unavailable(super::idempotency::KEY_NOT_HELD.to_owned())
}

/// Opens a session for the user's order, or returns its pending one. `id`, times and the
/// deadline come from the caller; the amount is always the order's.
#[tracing::instrument(
    name = "db.transaction",
    level = "info",
    skip_all,
    fields(op = "payments.open")
)]
pub async fn open(
    conn: &mut DbConn,
    id: i64,
    order_id: i64,
    user_id: i64,
    now: PrimitiveDateTime,
    expires_at: PrimitiveDateTime,
    idem: Option<IdempotencyBinding>,
) -> Result<Opened, DbError> {
    for _ in 0..2 {
        let outcome = with_conn!(conn, c => c.transaction(async |c| {
            let order: Option<OrderRow> = orders::table
                .find(order_id)
                .filter(orders::user_id.eq(user_id))
                .select(OrderRow::as_select())
                .first(c)
                .await
                .optional()?;
            let Some(order) = order else { return Ok::<_, DbError>(Some(Opened::NoSuchOrder)) };
            if order.status != OrderStatus::PendingPayment {
                return Ok(Some(Opened::NotPayable));
            }
            let pending: Option<PaymentRow> = payments::table
                .filter(payments::order_id.eq(order_id))
                .filter(payments::status.eq(PaymentStatus::Pending))
                .select(PaymentRow::as_select())
                .first(c)
                .await
                .optional()?;
            if let Some(p) = pending {
                if let Some(b) = &idem
                    && super::idempotency::bind!(c, b, format!("payment:{}", p.id))? == 0
                {
                    return Err(key_not_held());
                }
                return Ok(Some(Opened::Existing(p)));
            }
            let row = PaymentRow {
                id,
                order_id,
                user_id,
                amount_cents: order.total_cents,
                status: PaymentStatus::Pending,
                card_last4: None,
                last_error: None,
                attempts: 0,
                created_at: now,
                updated_at: now,
                expires_at,
                succeeded_at: None,
                cancelled_at: None,
                version: 1,
            };
            match diesel::insert_into(payments::table).values(&row).execute(c).await.map_err(DbError::from) {
                Ok(_) => {}
                // Another request opened one at the same moment: look again.
                Err(DbError::UniqueViolation(_)) => return Ok(None),
                Err(e) => return Err(e),
            }
            if let Some(b) = &idem
                && super::idempotency::bind!(c, b, format!("payment:{}", row.id))? == 0
            {
                return Err(key_not_held());
            }
            Ok(Some(Opened::Created(row)))
        }).await)?;
        if let Some(o) = outcome {
            return Ok(o);
        }
    }
    Err(DbError::Unavailable("payment session kept changing".into()))
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

/// What a successful charge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The session succeeded and its order is paid.
    Paid(Box<(PaymentRow, OrderRow)>),
    /// The session is not pending (or past its deadline): nothing written.
    SessionNotPending,
    /// The order is no longer `pending_payment`: nothing written.
    OrderNotPayable,
}

/// Marks a pending, unexpired session succeeded and its pending order paid, in one transaction
/// with conditional updates: an order is charged at most once and is never both paid and
/// cancelled, whatever races with it.
#[tracing::instrument(
    name = "db.transaction",
    level = "info",
    skip_all,
    fields(op = "payments.settle")
)]
pub async fn settle(
    conn: &mut DbConn,
    id: i64,
    last4: &str,
    now: PrimitiveDateTime,
    idem: Option<IdempotencyBinding>,
) -> Result<Settled, DbError> {
    let last4 = last4.to_owned();
    let outcome = with_conn!(conn, c => c.transaction(async |c| {
        let payment: Option<PaymentRow> = diesel::update(
            payments::table
                .find(id)
                .filter(payments::status.eq(PaymentStatus::Pending))
                .filter(payments::expires_at.gt(now)),
        )
        .set((
            payments::status.eq(PaymentStatus::Succeeded),
            payments::succeeded_at.eq(Some(now)),
            payments::attempts.eq(payments::attempts + 1),
            payments::card_last4.eq(Some(last4.clone())),
            payments::last_error.eq(None::<String>),
            payments::updated_at.eq(now),
            payments::version.eq(payments::version + 1),
        ))
        .returning(PaymentRow::as_returning())
        .get_result(c)
        .await
        .optional()?;
        let Some(payment) = payment else { return Ok::<_, Rollback<Settled>>(Settled::SessionNotPending) };
        let order: Option<OrderRow> = diesel::update(
            orders::table.find(payment.order_id).filter(orders::status.eq(OrderStatus::PendingPayment)),
        )
        .set((
            orders::status.eq(OrderStatus::Paid),
            orders::paid_at.eq(Some(now)),
            orders::updated_at.eq(now),
            orders::version.eq(orders::version + 1),
        ))
        .returning(OrderRow::as_returning())
        .get_result(c)
        .await
        .optional()?;
        let Some(order) = order else { return Err(Rollback::Answer(Settled::OrderNotPayable)) };
        if let Some(b) = &idem
            && super::idempotency::bind!(c, b, format!("payment:{}", payment.id))? == 0
        {
            return Err(Rollback::Db(key_not_held()));
        }
        Ok(Settled::Paid(Box::new((payment, order))))
    }).await);
    Rollback::settle(outcome)
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
