//! `PaymentHandle`: what the HTTP layer (and checkout) call for payment sessions. A session is
//! owned by its order, so each call finds the session's order and goes to the order's entity.

use mall_db::clock;
use mall_db::domain::{OrderId, PaymentId, UserId};
use mall_db::models::PaymentRow;
use mall_db::repo::orders::IdempotencyBinding;
use mall_db::repo::payments;

use super::error::PaymentError;
use super::gateway::{self, Card};
use crate::deps::Deps;
use crate::order::messages::{OrderCmd, SessionAct};
use crate::order::{OrderError, OrderHandle, PaymentView};
use crate::runtime::Deadline;

/// Routes payment operations to the orders that own the sessions.
#[derive(Clone)]
pub struct PaymentHandle {
    orders: OrderHandle,
    deps: Deps,
}

impl From<OrderError> for PaymentError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::Payment(e) => e,
            OrderError::NotFound => PaymentError::NotFound,
            OrderError::InvalidState(why) => PaymentError::InvalidState(why),
            OrderError::Unavailable(why) => PaymentError::Unavailable(why),
            OrderError::NotOwner { shard } => PaymentError::NotOwner { shard },
            other => PaymentError::Internal(other.to_string()),
        }
    }
}

impl PaymentHandle {
    /// Payment sessions, kept by `orders`.
    pub fn new(deps: Deps, orders: OrderHandle) -> PaymentHandle {
        PaymentHandle { orders, deps }
    }

    /// Opens a session for the user's pending order, or returns its pending one:
    /// `(session, created)`.
    pub async fn open(
        &self,
        user: UserId,
        order: OrderId,
        idem: Option<IdempotencyBinding>,
        answer_by: Deadline,
    ) -> Result<(PaymentView, bool), PaymentError> {
        let cmd = OrderCmd::OpenSession {
            by: user,
            session: PaymentId(self.deps.ids.next_id()),
            expires_at: clock::after(clock::now(), self.deps.session_timeout),
            idem,
        };
        let answer = self.orders.call(order, cmd, answer_by).await?;
        let session = answer.session.ok_or_else(|| {
            PaymentError::Internal("opening a session answered without one".into())
        })?;
        Ok((session, answer.created))
    }

    /// What follows a session's opening by a checkout (which may have charged it at once):
    /// it is counted. Its deadline is armed by the sweeper, which looks ahead.
    pub fn opened(&self, row: &PaymentRow) {
        self.deps.outcomes.payment("opened");
        if row.status == super::PaymentStatus::Succeeded {
            self.deps.outcomes.payment("succeeded");
            tracing::info!(
                payment_id = row.id,
                order_id = row.order_id,
                "payment succeeded"
            );
        } else if row.last_error.is_some() {
            self.deps.outcomes.payment("declined");
        }
    }

    async fn session(
        &self,
        user: UserId,
        id: PaymentId,
        act: SessionAct,
        answer_by: Deadline,
    ) -> Result<PaymentView, PaymentError> {
        let order = {
            let mut conn = self.deps.db.read().await?;
            payments::order_of(&mut conn, id.get()).await?
        };
        let order = order.ok_or(PaymentError::NotFound)?;
        let cmd = OrderCmd::Session {
            by: user,
            session: id,
            act,
        };
        let answer = self.orders.call(OrderId(order), cmd, answer_by).await?;
        answer
            .session
            .ok_or_else(|| PaymentError::Internal("a session command answered without one".into()))
    }

    /// One of the user's sessions.
    pub async fn get(
        &self,
        user: UserId,
        id: PaymentId,
        answer_by: Deadline,
    ) -> Result<PaymentView, PaymentError> {
        self.session(user, id, SessionAct::Get, answer_by).await
    }

    /// Checks the card (400 before anything happens), then charges it.
    pub async fn confirm(
        &self,
        user: UserId,
        id: PaymentId,
        card: Card,
        idem: Option<IdempotencyBinding>,
        answer_by: Deadline,
    ) -> Result<PaymentView, PaymentError> {
        check_card(&card)?;
        let charge = gateway::charge(&card);
        let act = SessionAct::Confirm { charge, idem };
        self.session(user, id, act, answer_by).await
    }

    /// Cancels one of the user's pending sessions.
    pub async fn cancel(
        &self,
        user: UserId,
        id: PaymentId,
        answer_by: Deadline,
    ) -> Result<PaymentView, PaymentError> {
        self.session(user, id, SessionAct::Cancel, answer_by).await
    }
}

/// The card checks of the simulated gateway, as of today (UTC).
pub fn check_card(card: &Card) -> Result<(), PaymentError> {
    gateway::check(card, time::OffsetDateTime::now_utc().date())
        .map_err(|p| PaymentError::InvalidCard(p.field, p.reason))
}
