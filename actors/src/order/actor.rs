//! The order as an entity kind. An order owns its payment sessions: the order's turn is the
//! only writer of its row and of theirs after the placement that gives birth to them. That is
//! the choice the one-writer rule asks for, and why: paying settles a session and its order in
//! one transaction, and cancelling an order ends its pending session in the same transaction;
//! with one owner both stay single commits with no cross-actor call, and "charged at most
//! once, never both paid and cancelled" is decided in one turn. The cost is that the turns of
//! one order and its sessions queue behind each other, which is what a user's checkout does
//! anyway.
//!
//! The rules are in [`mall_db::domain`]; this shell loads, checks the command against them,
//! writes through with conditional updates (status and version) and replies. The timer follows
//! the earliest deadline (the order's while pending, a pending session's).

use mall_db::domain::payment::{PaymentEvent, SessionBirth};
use mall_db::domain::{CancelReason, Charge, OrderEvent, OrderStatus, PaymentStatus};
use mall_db::models::PaymentRow;
use mall_db::repo::deadlines::{self, Whose};
use mall_db::repo::orders::{self, IdempotencyBinding};
use mall_db::repo::{fences, idempotency, payments, products};
use mall_db::{DbError, clock};

use super::error::OrderError;
use super::messages::{OrderAnswer, OrderCmd, OrderReply, SessionAct};
pub use super::state::OrderState;
use super::view::PaymentView;
use crate::deps::Deps;
use crate::payment::PaymentError;
use crate::runtime::{Deadline, Kind, RuntimeError};

/// The order kind.
pub struct Order;

impl Kind for Order {
    type Key = i64;
    type Deps = Deps;
    type State = OrderState;
    type Cmd = OrderCmd;
    type Reply = OrderReply;
    const KIND: &'static str = "order";

    async fn load(deps: Deps, id: i64) -> Result<OrderState, OrderReply> {
        match load(&deps, id).await {
            // Activated only where its shard lives (a request may name an order of another
            // user's shard: the caller is told where it lives, and nothing is cached here).
            Ok(Some(state)) => {
                let shard = deps.ownership.shard_of(state.order.0.user_id);
                match deps.ownership.fence(shard) {
                    Ok(_) => Ok(state),
                    Err(_) => Err(Err(OrderError::NotOwner { shard })),
                }
            }
            Ok(None) => Err(Err(OrderError::NotFound)),
            Err(e) => Err(Err(e)),
        }
    }

    async fn turn(
        deps: Deps,
        _id: i64,
        mut state: OrderState,
        cmd: OrderCmd,
        _answer_by: Option<Deadline>,
    ) -> (Option<OrderState>, OrderReply) {
        let shard = deps.ownership.shard_of(state.order.0.user_id);
        state.fence = match deps.ownership.fence(shard) {
            Ok(fence) => fence,
            Err(_) => return (None, Err(OrderError::NotOwner { shard })),
        };
        match run(&deps, state, cmd).await {
            Ok((next, answer)) => (Some(next), Ok(answer)),
            Err(e) => {
                if let Some(shard) = e.not_owner() {
                    // A write found a newer epoch: this node lost the shard.
                    deps.ownership.fenced(shard);
                }
                // A refusal may come from finding the order changed underneath: reload.
                (None, Err(e))
            }
        }
    }

    fn generation(deps: &Deps) -> u64 {
        deps.ownership.generation()
    }

    fn refused(why: RuntimeError) -> OrderReply {
        Err(why.into())
    }

    fn deadline(state: &OrderState) -> Option<time::PrimitiveDateTime> {
        let order = &state.order.0;
        let own = (order.status == OrderStatus::PendingPayment).then_some(order.expires_at);
        let sessions = state
            .sessions
            .iter()
            .filter(|s| s.status == PaymentStatus::Pending)
            .map(|s| s.expires_at);
        own.into_iter().chain(sessions).min()
    }

    fn wake() -> Option<OrderCmd> {
        Some(OrderCmd::Wake)
    }

    async fn due(
        deps: Deps,
        before: time::PrimitiveDateTime,
        limit: i64,
    ) -> Result<Vec<i64>, DbError> {
        // Its own deadline or a pending session's: either way the order acts on it.
        let mut conn = deps.db.read().await?;
        let mut due = deadlines::due(&mut conn, Whose::Orders, before, limit).await?;
        due.extend(deadlines::due(&mut conn, Whose::Sessions, before, limit).await?);
        due.sort_by_key(|d| d.at);
        let mut seen = std::collections::HashSet::new();
        // Each node sweeps only the shards it owns.
        let ownership = &deps.ownership;
        Ok(due
            .into_iter()
            .filter(|d| ownership.owns(ownership.shard_of(d.user_id)))
            .map(|d| d.order_id)
            .filter(|id| seen.insert(*id))
            .collect())
    }
}

async fn load(deps: &Deps, id: i64) -> Result<Option<OrderState>, OrderError> {
    let mut conn = deps.db.read().await?;
    let Some(order) = orders::load(&mut conn, id).await? else {
        return Ok(None);
    };
    let sessions = payments::of_order(&mut conn, id).await?;
    Ok(Some(OrderState {
        order,
        sessions,
        fence: None,
    }))
}

fn owned_by(state: &OrderState, by: Option<mall_db::domain::UserId>) -> Result<(), OrderError> {
    match by {
        Some(user) if state.order.0.user_id != user.get() => Err(OrderError::NotFound),
        _ => Ok(()),
    }
}

fn status_of(state: &OrderState) -> OrderStatus {
    state.order.0.status
}

/// After a conditional write that found the order changed underneath (another writer, which a
/// single owner rules out but a takeover may not): reread it and refuse with its real status.
async fn changed_under_us(
    deps: &Deps,
    id: i64,
    event: OrderEvent,
) -> Result<(OrderState, OrderAnswer), OrderError> {
    let fresh = load(deps, id).await?.ok_or(OrderError::NotFound)?;
    status_of(&fresh).on(event)?;
    Err(OrderError::Unavailable(
        "the order changed during the request; retry".into(),
    ))
}

async fn run(
    deps: &Deps,
    mut state: OrderState,
    cmd: OrderCmd,
) -> Result<(OrderState, OrderAnswer), OrderError> {
    let now = clock::now();
    let id = state.order.0.id;
    match cmd {
        OrderCmd::Get => {
            let answer = OrderAnswer::of(&state);
            Ok((state, answer))
        }
        OrderCmd::Edit { by, address, note } => {
            owned_by(&state, Some(by))?;
            status_of(&state).on(OrderEvent::EditDetails)?;
            let mut conn = deps.db.write().await?;
            let note_ref = note.as_ref().map(|n| n.as_deref());
            let version = state.order.0.version;
            let address = address.as_deref();
            let edited = fences::guarded(&mut conn, state.fence, "orders.edit", async |c| {
                orders::update_details(c, id, version, address, note_ref, now).await
            })
            .await?;
            drop(conn);
            match edited {
                Some(row) => {
                    state.order.0 = row;
                    let answer = OrderAnswer::of(&state);
                    Ok((state, answer))
                }
                None => changed_under_us(deps, id, OrderEvent::EditDetails).await,
            }
        }
        OrderCmd::Cancel { by, reason } => {
            owned_by(&state, by)?;
            status_of(&state).on(OrderEvent::Cancel(reason))?;
            cancel(deps, state, reason, now).await
        }
        OrderCmd::Wake => {
            expire_due_sessions(deps, &mut state, now).await?;
            if status_of(&state).is_due(state.order.0.expires_at, now) {
                cancel(deps, state, CancelReason::Expired, now).await
            } else {
                let answer = OrderAnswer::of(&state);
                Ok((state, answer))
            }
        }
        OrderCmd::OpenSession {
            by,
            session,
            expires_at,
            idem,
        } => {
            owned_by(&state, Some(by)).map_err(|_| PaymentError::NotFound)?;
            if status_of(&state) != OrderStatus::PendingPayment {
                let why = "the order is not awaiting payment";
                return Err(PaymentError::InvalidState(why.into()).into());
            }
            // A pending session past its deadline is expired first: the user gets a live one.
            expire_due_sessions(deps, &mut state, now).await?;
            let pending = state
                .sessions
                .iter()
                .find(|s| s.status == PaymentStatus::Pending)
                .cloned();
            let created = pending.is_none();
            let row = pending.unwrap_or_else(|| new_session(&state, session, expires_at, now));
            let mut conn = deps.db.write().await?;
            fences::transaction(&mut conn, state.fence, "payments.open", async |c| {
                if created {
                    payments::insert(c, &row).await?;
                }
                bind(c, idem.as_ref(), &row).await
            })
            .await?;
            if created {
                deps.outcomes.payment("opened");
                state.sessions.push(row.clone());
            }
            let answer = OrderAnswer {
                session: Some(PaymentView::from(&row)),
                created,
                ..OrderAnswer::of(&state)
            };
            Ok((state, answer))
        }
        OrderCmd::Session { by, session, act } => {
            let index = state
                .sessions
                .iter()
                .position(|s| s.id == session.get() && s.user_id == by.get())
                .ok_or(PaymentError::NotFound)?;
            session_turn(deps, state, index, act, now).await
        }
    }
}

/// One command to the session at `index` of the order's sessions.
async fn session_turn(
    deps: &Deps,
    mut state: OrderState,
    index: usize,
    act: SessionAct,
    now: time::PrimitiveDateTime,
) -> Result<(OrderState, OrderAnswer), OrderError> {
    let row = state.sessions[index].clone();
    let answer = |state: &OrderState, row: PaymentRow| OrderAnswer {
        session: Some(PaymentView::from(&row)),
        ..OrderAnswer::of(state)
    };
    let confirm = match act {
        SessionAct::Get => {
            let answer = answer(&state, row);
            return Ok((state, answer));
        }
        SessionAct::Cancel => None,
        SessionAct::Confirm { charge, idem } => Some((charge, idem)),
    };
    if row.status.is_due(row.expires_at, now) {
        // Acting on a session past its deadline expires it; the refusal says so.
        close(deps, state.fence, &row, PaymentEvent::Expire, now).await?;
        return Err(PaymentError::InvalidState("the payment session has expired".into()).into());
    }
    let Some((charge, idem)) = confirm else {
        let closed = close(deps, state.fence, &row, PaymentEvent::Cancel, now).await?;
        state.sessions[index] = closed.clone();
        let answer = answer(&state, closed);
        return Ok((state, answer));
    };
    let event = match &charge {
        Charge::Approved { .. } => PaymentEvent::Approved,
        Charge::Declined { .. } => PaymentEvent::Declined,
    };
    row.status.on(event).map_err(PaymentError::from)?;
    if let Charge::Declined { last4 } = &charge {
        let mut conn = deps.db.write().await?;
        let declined = fences::guarded(&mut conn, state.fence, "payments.decline", async |c| {
            payments::record_decline(c, row.id, last4, now).await
        })
        .await?
        .ok_or_else(not_pending)?;
        deps.outcomes.payment("declined");
        return Err(PaymentError::Declined(Box::new(PaymentView::from(&declined))).into());
    }
    status_of(&state).on(OrderEvent::Pay)?;
    let order_id = state.order.0.id;
    let mut conn = deps.db.write().await?;
    let settled = fences::transaction(&mut conn, state.fence, "payments.settle", async |c| {
        let Some(payment) = payments::mark_succeeded(c, row.id, charge.last4(), now).await? else {
            return Err(Settle::SessionNotPending);
        };
        let Some(order) = orders::mark_paid(c, order_id, now).await? else {
            return Err(Settle::OrderNotPayable);
        };
        bind(c, idem.as_ref(), &payment).await?;
        Ok((payment, order))
    })
    .await;
    drop(conn);
    match settled {
        Ok((payment, order)) => {
            deps.outcomes.order("paid");
            deps.outcomes.payment("succeeded");
            tracing::info!(payment_id = payment.id, order_id, "payment succeeded");
            state.order.0 = order;
            state.sessions[index] = payment.clone();
            let answer = answer(&state, payment);
            Ok((state, answer))
        }
        Err(Settle::SessionNotPending) => Err(not_pending().into()),
        Err(Settle::OrderNotPayable) => changed_under_us(deps, order_id, OrderEvent::Pay).await,
        Err(Settle::Failed(e)) => Err(e),
    }
}

/// Why settling a charge rolled back.
enum Settle {
    /// The session is not pending (or past its deadline).
    SessionNotPending,
    /// The order is not pending: another writer got there first.
    OrderNotPayable,
    /// The database failed, or the request's key is no longer held.
    Failed(OrderError),
}

impl From<DbError> for Settle {
    fn from(e: DbError) -> Self {
        Settle::Failed(e.into())
    }
}

impl From<OrderError> for Settle {
    fn from(e: OrderError) -> Self {
        Settle::Failed(e)
    }
}

/// A new pending session of the order.
fn new_session(
    state: &OrderState,
    id: mall_db::domain::PaymentId,
    expires_at: time::PrimitiveDateTime,
    now: time::PrimitiveDateTime,
) -> PaymentRow {
    let birth = SessionBirth::of(None);
    PaymentRow {
        id: id.get(),
        order_id: state.order.0.id,
        user_id: state.order.0.user_id,
        amount_cents: state.order.0.total_cents,
        status: birth.status,
        card_last4: birth.card_last4,
        last_error: birth.last_error,
        attempts: birth.attempts,
        created_at: now,
        updated_at: now,
        expires_at,
        succeeded_at: None,
        cancelled_at: None,
        version: 1,
    }
}

/// Binds the request's key (if any) to `session` inside the caller's transaction; a key no
/// longer held rolls it back (its caller gave up and was answered 503: so is this late effect).
async fn bind(
    c: &mut mall_db::DbConn,
    idem: Option<&IdempotencyBinding>,
    session: &PaymentRow,
) -> Result<(), OrderError> {
    let Some(b) = idem else { return Ok(()) };
    if idempotency::bind_key(c, b, format!("payment:{}", session.id)).await? {
        Ok(())
    } else {
        Err(OrderError::Unavailable(
            idempotency::KEY_NOT_HELD.to_owned(),
        ))
    }
}

fn not_pending() -> PaymentError {
    PaymentError::InvalidState("the payment session is not pending".into())
}

/// Expires every pending session of the order past its deadline.
async fn expire_due_sessions(
    deps: &Deps,
    state: &mut OrderState,
    now: time::PrimitiveDateTime,
) -> Result<(), OrderError> {
    for i in 0..state.sessions.len() {
        let row = &state.sessions[i];
        if row.status.is_due(row.expires_at, now) {
            let closed = close(deps, state.fence, row, PaymentEvent::Expire, now).await?;
            state.sessions[i] = closed;
        }
    }
    Ok(())
}

/// Moves a pending session to `cancelled` or `expired`.
async fn close(
    deps: &Deps,
    fence: Option<mall_db::domain::Fence>,
    row: &PaymentRow,
    event: PaymentEvent,
    now: time::PrimitiveDateTime,
) -> Result<PaymentRow, PaymentError> {
    let to = row.status.on(event)?;
    let mut conn = deps.db.write().await?;
    let closed = fences::guarded(&mut conn, fence, "payments.close", async |c| {
        payments::close(c, row.id, to, now).await
    })
    .await?
    .ok_or_else(not_pending)?;
    deps.outcomes.payment(to.as_str());
    Ok(closed)
}

/// Cancels the order with `reason`: stock back, its pending session cancelled, one transaction.
async fn cancel(
    deps: &Deps,
    mut state: OrderState,
    reason: CancelReason,
    now: time::PrimitiveDateTime,
) -> Result<(OrderState, OrderAnswer), OrderError> {
    let id = state.order.0.id;
    let lines: Vec<(i64, i32)> = state
        .order
        .1
        .iter()
        .map(|i| (i.product_id, i.quantity))
        .collect();
    let mut conn = deps.db.write().await?;
    let cancelled = fences::transaction(&mut conn, state.fence, "orders.cancel", async |c| {
        let Some(row) = orders::mark_cancelled(c, id, reason, now).await? else {
            return Ok::<_, DbError>(None);
        };
        products::give_back(c, &lines).await?;
        let sessions = payments::cancel_pending_of(c, id, now).await?;
        Ok(Some((row, sessions)))
    })
    .await?;
    drop(conn);
    let Some((row, sessions)) = cancelled else {
        return changed_under_us(deps, id, OrderEvent::Cancel(reason)).await;
    };
    deps.outcomes.order(&format!("cancelled_{reason}"));
    deps.stock_changed(state.order.1.iter().map(|i| i.product_id).collect());
    tracing::info!(order_id = row.id, reason = %reason, "order cancelled");
    state.order.0 = row;
    for s in sessions {
        if let Some(mine) = state.sessions.iter_mut().find(|m| m.id == s.id) {
            *mine = s;
        }
    }
    let answer = OrderAnswer::of(&state);
    Ok((state, answer))
}
