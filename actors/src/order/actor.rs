//! `OrderActor`: one per order, a thin shell over [`OrderStatus`]: it loads the order on its
//! first turn, checks each command against the state machine, writes through with conditional
//! updates (status and version), and keeps a timer armed for the payment deadline while the
//! order is pending. The deadline is data (`expires_at`): a passivated or crashed actor's timer
//! is re-armed by the deadline sweeper.

use actix::{Actor, Context, Handler};

use mall_db::repo::orders::{self, OrderWithItems};
use mall_db::repo::payments::{self, Settled};
use mall_db::{clock, repo};

use super::error::OrderError;
use super::messages::{OrderCmd, OrderReply};
use super::state::{CancelReason, OrderEvent, OrderStatus, is_due};
use crate::deps::Deps;
use crate::runtime::timer::DeadlineTimer;
use crate::runtime::turn;
use crate::runtime::{Call, Entity, KindMetrics};

/// One order.
pub struct OrderActor {
    id: i64,
    deps: Deps,
    state: Option<OrderWithItems>,
    timer: DeadlineTimer,
    metrics: KindMetrics,
}

impl Actor for OrderActor {
    type Context = Context<Self>;
}

impl Entity for OrderActor {
    type Key = i64;
    type Deps = Deps;
    const KIND: &'static str = "order";

    fn activate(id: i64, deps: Deps, metrics: KindMetrics) -> Self {
        OrderActor {
            id,
            deps,
            state: None,
            timer: DeadlineTimer::default(),
            metrics,
        }
    }
}

fn status_of(o: &OrderWithItems) -> OrderStatus {
    // The CHECK constraint allows nothing else; an unknown value fails closed as final.
    OrderStatus::parse(&o.0.status).unwrap_or(OrderStatus::Cancelled)
}

impl Handler<Call<OrderCmd>> for OrderActor {
    type Result = actix::AtomicResponse<Self, OrderReply>;

    fn handle(&mut self, call: Call<OrderCmd>, _ctx: &mut Context<Self>) -> Self::Result {
        if call.is_stale() {
            return turn::refuse(Err(OrderError::Unavailable(
                "the caller stopped waiting".into(),
            )));
        }
        let (deps, id, cached, cmd) = (self.deps.clone(), self.id, self.state.clone(), call.cmd);
        turn::atomic(
            self,
            call.sent_at,
            call.span,
            &self.metrics,
            execute(deps, id, cached, cmd),
            |(keep, reply), act: &mut Self, ctx| {
                act.state = keep;
                act.rearm(ctx);
                reply
            },
        )
    }
}

impl OrderActor {
    /// Keeps exactly one timer armed for the deadline while the order is pending.
    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let deadline = self
            .state
            .as_ref()
            .filter(|o| status_of(o) == OrderStatus::PendingPayment)
            .map(|o| o.0.expires_at);
        let mut timer = std::mem::take(&mut self.timer);
        timer.keep(
            ctx,
            deadline,
            &self.metrics,
            |act: &mut Self| &mut act.timer,
            OrderCmd::Wake,
        );
        self.timer = timer;
    }
}

async fn load(deps: &Deps, id: i64) -> Result<Option<OrderWithItems>, OrderError> {
    let mut conn = deps.db.read().await?;
    Ok(orders::load(&mut conn, id).await?)
}

fn owned_by(o: &OrderWithItems, by: Option<i64>) -> Result<(), OrderError> {
    match by {
        Some(user) if o.0.user_id != user => Err(OrderError::NotFound),
        _ => Ok(()),
    }
}

/// One turn: the state to keep (None: reload next time) and the reply.
async fn execute(
    deps: Deps,
    id: i64,
    cached: Option<OrderWithItems>,
    cmd: OrderCmd,
) -> (Option<OrderWithItems>, OrderReply) {
    let order = match (cached, &cmd) {
        (Some(o), _) => o,
        (None, OrderCmd::Prime(placed)) => (**placed).clone(),
        (None, _) => match load(&deps, id).await {
            Ok(Some(o)) => o,
            Ok(None) => return (None, Err(OrderError::NotFound)),
            Err(e) => return (None, Err(e)),
        },
    };
    match run(&deps, order, cmd).await {
        Ok((next, payment)) => (Some(next.clone()), Ok((next, payment))),
        // A refusal may come from finding the order changed underneath: reload next time.
        Err(e) => (None, Err(e)),
    }
}

/// The state after a write that found the order changed underneath (another node, or a
/// payment settled elsewhere): reread it, and refuse with its real status.
async fn changed_under_us(
    deps: &Deps,
    id: i64,
    event: OrderEvent,
) -> Result<(OrderWithItems, Option<mall_db::models::PaymentRow>), OrderError> {
    let fresh = load(deps, id).await?.ok_or(OrderError::NotFound)?;
    status_of(&fresh).on(event)?;
    Err(OrderError::Unavailable(
        "the order changed during the request; retry".into(),
    ))
}

async fn run(
    deps: &Deps,
    order: OrderWithItems,
    cmd: OrderCmd,
) -> Result<(OrderWithItems, Option<mall_db::models::PaymentRow>), OrderError> {
    let status = status_of(&order);
    let now = clock::now();
    match cmd {
        OrderCmd::Get => Ok((order, None)),
        OrderCmd::Edit { by, address, note } => {
            owned_by(&order, Some(by))?;
            status.on(OrderEvent::EditDetails)?;
            let mut conn = deps.db.write().await?;
            let note_ref = note.as_ref().map(|n| n.as_deref());
            match orders::update_details(
                &mut conn,
                order.0.id,
                order.0.version,
                address.as_deref(),
                note_ref,
                now,
            )
            .await?
            {
                Some(row) => Ok(((row, order.1), None)),
                None => {
                    drop(conn);
                    changed_under_us(deps, order.0.id, OrderEvent::EditDetails).await
                }
            }
        }
        OrderCmd::Cancel { by, reason } => {
            owned_by(&order, by)?;
            status.on(OrderEvent::Cancel(reason))?;
            cancel(deps, order, reason, now).await
        }
        OrderCmd::Wake | OrderCmd::Prime(_) => {
            if is_due(status, order.0.expires_at, now) {
                cancel(deps, order, CancelReason::Expired, now).await
            } else {
                Ok((order, None))
            }
        }
        OrderCmd::Pay {
            by,
            payment_id,
            last4,
            idem,
        } => {
            owned_by(&order, Some(by))?;
            status.on(OrderEvent::Pay)?;
            let mut conn = deps.db.write().await?;
            match payments::settle(&mut conn, payment_id, &last4, now, idem).await? {
                Settled::Paid(settled) => {
                    let (payment, row) = *settled;
                    deps.outcomes.order("paid");
                    deps.outcomes.payment("succeeded");
                    Ok(((row, order.1), Some(payment)))
                }
                Settled::SessionNotPending => Err(OrderError::InvalidState(
                    "the payment session is not pending".into(),
                )),
                Settled::OrderNotPayable => {
                    drop(conn);
                    changed_under_us(deps, order.0.id, OrderEvent::Pay).await
                }
            }
        }
    }
}

async fn cancel(
    deps: &Deps,
    order: OrderWithItems,
    reason: CancelReason,
    now: time::PrimitiveDateTime,
) -> Result<(OrderWithItems, Option<mall_db::models::PaymentRow>), OrderError> {
    let mut conn = deps.db.write().await?;
    match repo::orders::cancel(&mut conn, order.0.id, reason.as_str(), now).await? {
        Some(row) => {
            deps.outcomes
                .order(&format!("cancelled_{}", reason.as_str()));
            deps.stock_changed(order.1.iter().map(|i| i.product_id).collect());
            tracing::info!(
                order_id = row.id,
                reason = reason.as_str(),
                "order cancelled"
            );
            Ok(((row, order.1), None))
        }
        None => {
            drop(conn);
            changed_under_us(deps, order.0.id, OrderEvent::Cancel(reason)).await
        }
    }
}
