//! `PaymentActor`: one per payment session. It serialises everything done to the session
//! (so of twenty concurrent confirms exactly one charges), keeps a timer armed for the session's
//! deadline, and settles a successful charge through the order's actor, which marks the session
//! succeeded and the order paid in one transaction.
//!
//! The session row is also written by its order's cancellation (which cancels the pending
//! session in the same transaction), so this actor rereads the row at the start of every turn
//! instead of trusting a cache; it keeps only the deadline for its timer.

use actix::{Actor, Context, Handler};

use mall_db::clock;
use mall_db::models::PaymentRow;
use mall_db::repo::payments::{self, status};

use super::error::PaymentError;
use super::gateway::{self, Charge};
use super::messages::PaymentCmd;
use super::state::{PaymentEvent, PaymentStatus};
use crate::deps::Deps;
use crate::order::{OrderError, OrderHandle};
use crate::runtime::timer::DeadlineTimer;
use crate::runtime::turn;
use crate::runtime::{Call, Entity, KindMetrics};

/// What every payment actor needs.
#[derive(Clone)]
pub struct PaymentDeps {
    /// Shared with orders.
    pub deps: Deps,
    /// To settle a charge through the order's actor.
    pub orders: OrderHandle,
}

/// One payment session.
pub struct PaymentActor {
    id: i64,
    deps: PaymentDeps,
    // The deadline of a pending session, for the timer.
    pending_until: Option<time::PrimitiveDateTime>,
    timer: DeadlineTimer,
    metrics: KindMetrics,
}

impl Actor for PaymentActor {
    type Context = Context<Self>;
}

impl Entity for PaymentActor {
    type Key = i64;
    type Deps = PaymentDeps;
    const KIND: &'static str = "payment";

    fn activate(id: i64, deps: PaymentDeps, metrics: KindMetrics) -> Self {
        PaymentActor {
            id,
            deps,
            pending_until: None,
            timer: DeadlineTimer::default(),
            metrics,
        }
    }
}

impl Handler<Call<PaymentCmd>> for PaymentActor {
    type Result = actix::AtomicResponse<Self, Result<PaymentRow, PaymentError>>;

    fn handle(&mut self, call: Call<PaymentCmd>, _ctx: &mut Context<Self>) -> Self::Result {
        if call.is_stale() {
            return turn::refuse(Err(PaymentError::Unavailable(
                "the caller stopped waiting".into(),
            )));
        }
        let (deps, id, cmd) = (self.deps.clone(), self.id, call.cmd);
        turn::atomic(
            self,
            call.sent_at,
            call.span,
            &self.metrics,
            execute(deps, id, cmd),
            |(row, reply), act: &mut Self, ctx| {
                act.pending_until = row
                    .filter(|r| r.status == status::PENDING)
                    .map(|r| r.expires_at);
                act.rearm(ctx);
                reply
            },
        )
    }
}

impl PaymentActor {
    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let deadline = self.pending_until;
        let mut timer = std::mem::take(&mut self.timer);
        timer.keep(
            ctx,
            deadline,
            &self.metrics,
            |act: &mut Self| &mut act.timer,
            PaymentCmd::Wake,
        );
        self.timer = timer;
    }
}

fn status_of(row: &PaymentRow) -> PaymentStatus {
    PaymentStatus::parse(&row.status).unwrap_or(PaymentStatus::Cancelled)
}

/// One turn: the session as it is now (for the timer) and the reply.
async fn execute(
    deps: PaymentDeps,
    id: i64,
    cmd: PaymentCmd,
) -> (Option<PaymentRow>, Result<PaymentRow, PaymentError>) {
    let row = {
        let loaded = async {
            let mut conn = deps.deps.db.read().await?;
            Ok::<_, PaymentError>(payments::load(&mut conn, id).await?)
        };
        match loaded.await {
            Ok(Some(row)) => row,
            Ok(None) => return (None, Err(PaymentError::NotFound)),
            Err(e) => return (None, Err(e)),
        }
    };
    let reply = run(&deps, row.clone(), cmd).await;
    let now_state = match &reply {
        Ok(r) => Some(r.clone()),
        Err(PaymentError::Declined(r)) => Some((**r).clone()),
        Err(_) => Some(row),
    };
    (now_state, reply)
}

async fn run(
    deps: &PaymentDeps,
    row: PaymentRow,
    cmd: PaymentCmd,
) -> Result<PaymentRow, PaymentError> {
    let now = clock::now();
    let expired = status_of(&row) == PaymentStatus::Pending && row.expires_at <= now;
    let owner = |by: i64| {
        if row.user_id == by {
            Ok(())
        } else {
            Err(PaymentError::NotFound)
        }
    };
    match cmd {
        PaymentCmd::Get { by } => {
            owner(by)?;
            Ok(row)
        }
        PaymentCmd::Wake => {
            if expired {
                close(deps, &row, PaymentEvent::Expire, now).await
            } else {
                Ok(row)
            }
        }
        PaymentCmd::Cancel { by } => {
            owner(by)?;
            if expired {
                close(deps, &row, PaymentEvent::Expire, now).await?;
                return Err(PaymentError::InvalidState(
                    "the payment session has expired".into(),
                ));
            }
            close(deps, &row, PaymentEvent::Cancel, now).await
        }
        PaymentCmd::Confirm { by, card, idem } => {
            owner(by)?;
            if expired {
                close(deps, &row, PaymentEvent::Expire, now).await?;
                return Err(PaymentError::InvalidState(
                    "the payment session has expired".into(),
                ));
            }
            let charge = gateway::charge(&card);
            status_of(&row).on(PaymentEvent::Charged(charge))?;
            match charge {
                Charge::Declined => {
                    let mut conn = deps.deps.db.write().await?;
                    let declined = payments::record_decline(&mut conn, row.id, &card.last4(), now)
                        .await?
                        .ok_or_else(|| {
                            PaymentError::InvalidState("the payment session is not pending".into())
                        })?;
                    deps.deps.outcomes.payment("declined");
                    Err(PaymentError::Declined(Box::new(declined)))
                }
                Charge::Approved => {
                    match deps
                        .orders
                        .pay(by, row.order_id, row.id, card.last4(), idem)
                        .await
                    {
                        Ok((_, Some(paid))) => {
                            tracing::info!(
                                payment_id = paid.id,
                                order_id = paid.order_id,
                                "payment succeeded"
                            );
                            Ok(paid)
                        }
                        Ok((_, None)) => {
                            Err(PaymentError::Internal("settled without a payment".into()))
                        }
                        Err(OrderError::InvalidState(why)) => Err(PaymentError::InvalidState(why)),
                        Err(OrderError::NotFound) => Err(PaymentError::NotFound),
                        Err(OrderError::Unavailable(why)) => Err(PaymentError::Unavailable(why)),
                        Err(other) => Err(PaymentError::Internal(other.to_string())),
                    }
                }
            }
        }
    }
}

async fn close(
    deps: &PaymentDeps,
    row: &PaymentRow,
    event: PaymentEvent,
    now: time::PrimitiveDateTime,
) -> Result<PaymentRow, PaymentError> {
    let to = status_of(row).on(event)?;
    let mut conn = deps.deps.db.write().await?;
    let closed = payments::close(&mut conn, row.id, to.as_str(), now)
        .await?
        .ok_or_else(|| PaymentError::InvalidState("the payment session is not pending".into()))?;
    deps.deps.outcomes.payment(to.as_str());
    Ok(closed)
}
