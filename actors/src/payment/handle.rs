//! `PaymentHandle`: what the HTTP layer (and checkout) call for payment sessions.

use std::sync::Arc;

use mall_db::clock;
use mall_db::models::PaymentRow;
use mall_db::repo::orders::IdempotencyBinding;
use mall_db::repo::payments::{self, Opened};

use super::actor::{PaymentActor, PaymentDeps};
use super::error::PaymentError;
use super::gateway::{self, Card};
use super::messages::PaymentCmd;
use crate::deps::{Deps, deadline};
use crate::order::OrderHandle;
use crate::runtime::{Registry, RuntimeConfig, RuntimeMetrics};

/// Routes payment operations to payment actors.
#[derive(Clone)]
pub struct PaymentHandle {
    registry: Arc<Registry<PaymentActor>>,
    deps: Deps,
}

impl PaymentHandle {
    /// Starts the payment registry (inside an actix `System`) and its passivation timer.
    pub fn start(
        deps: Deps,
        orders: OrderHandle,
        config: RuntimeConfig,
        metrics: &RuntimeMetrics,
    ) -> PaymentHandle {
        let registry = Registry::new(
            PaymentDeps {
                deps: deps.clone(),
                orders,
            },
            config,
            metrics,
        );
        registry.spawn_passivator();
        PaymentHandle { registry, deps }
    }

    /// The registry (for the deadline sweeper and tests).
    pub fn registry(&self) -> &Arc<Registry<PaymentActor>> {
        &self.registry
    }

    async fn call(&self, id: i64, cmd: PaymentCmd) -> Result<PaymentRow, PaymentError> {
        self.registry.call(&id, cmd).await?
    }

    /// Opens a session for the user's pending order, or returns its pending one:
    /// `(session, created)`.
    pub async fn open(
        &self,
        user_id: i64,
        order_id: i64,
        idem: Option<IdempotencyBinding>,
    ) -> Result<(PaymentRow, bool), PaymentError> {
        let now = clock::now();
        let id = self.deps.ids.next_id();
        let expires_at = deadline(now, self.deps.session_timeout);
        let opened = {
            let mut conn = self.deps.db.write().await?;
            payments::open(&mut conn, id, order_id, user_id, now, expires_at, idem).await?
        };
        match opened {
            Opened::Created(row) => {
                self.opened(&row).await;
                Ok((row, true))
            }
            Opened::Existing(row) => Ok((row, false)),
            Opened::NoSuchOrder => Err(PaymentError::NotFound),
            Opened::NotPayable => Err(PaymentError::InvalidState(
                "the order is not awaiting payment".into(),
            )),
        }
    }

    /// What follows a session's opening (here or by checkout, which may have charged it at
    /// once): it is counted, and a pending session's actor arms the deadline timer. If that
    /// fails, the sweeper arms it.
    pub async fn opened(&self, row: &PaymentRow) {
        self.deps.outcomes.payment("opened");
        if row.status == payments::status::SUCCEEDED {
            self.deps.outcomes.payment("succeeded");
            tracing::info!(
                payment_id = row.id,
                order_id = row.order_id,
                "payment succeeded"
            );
            return;
        }
        if row.last_error.is_some() {
            self.deps.outcomes.payment("declined");
        }
        if let Err(e) = self.registry.call(&row.id, PaymentCmd::Wake).await {
            tracing::warn!(payment_id = row.id, error = %e, "payment actor not woken; the sweeper will");
        }
    }

    /// One of the user's sessions.
    pub async fn get(&self, user_id: i64, id: i64) -> Result<PaymentRow, PaymentError> {
        self.call(id, PaymentCmd::Get { by: user_id }).await
    }

    /// Checks the card (400 before anything happens), then charges it.
    pub async fn confirm(
        &self,
        user_id: i64,
        id: i64,
        card: Card,
        idem: Option<IdempotencyBinding>,
    ) -> Result<PaymentRow, PaymentError> {
        check_card(&card)?;
        self.call(
            id,
            PaymentCmd::Confirm {
                by: user_id,
                card,
                idem,
            },
        )
        .await
    }

    /// Cancels one of the user's pending sessions.
    pub async fn cancel(&self, user_id: i64, id: i64) -> Result<PaymentRow, PaymentError> {
        self.call(id, PaymentCmd::Cancel { by: user_id }).await
    }

    /// Wakes a session: arms its timer, or expires it when its deadline passed.
    pub async fn wake(&self, id: i64) -> Result<(), PaymentError> {
        self.call(id, PaymentCmd::Wake).await.map(|_| ())
    }
}

/// The card checks of the simulated gateway, as of today (UTC).
pub fn check_card(card: &Card) -> Result<(), PaymentError> {
    gateway::check(card, time::OffsetDateTime::now_utc().date())
        .map_err(|p| PaymentError::InvalidCard(p.field, p.reason))
}
