//! `OrderHandle`: what the HTTP layer (and checkout) call for orders.

use std::sync::Arc;
use std::time::Instant;

use mall_db::clock;
use mall_db::models::PaymentRow;
use mall_db::repo::orders::{self, IdempotencyBinding, OrderWithItems, WantedLine};
use mall_db::repo::placements::{Placed, Placement};
use mall_db::repo::{Page, payments};

use super::actor::OrderActor;
use super::error::OrderError;
use super::messages::OrderCmd;
use super::state::CancelReason;
use crate::deps::Deps;
use crate::runtime::{Registry, RuntimeConfig, RuntimeMetrics};

/// Who is asking: a user sees only their own orders; an admin sees all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    /// The caller.
    pub user_id: i64,
    /// The caller may read anyone's orders.
    pub admin: bool,
}

/// Routes order operations to order actors.
#[derive(Clone)]
pub struct OrderHandle {
    registry: Arc<Registry<OrderActor>>,
    deps: Deps,
}

impl OrderHandle {
    /// Starts the order registry (inside an actix `System`) and its passivation timer.
    pub fn start(deps: Deps, config: RuntimeConfig, metrics: &RuntimeMetrics) -> OrderHandle {
        let registry = Registry::new(deps.clone(), config, metrics);
        registry.spawn_passivator();
        OrderHandle { registry, deps }
    }

    /// The registry (for the deadline sweeper and tests).
    pub fn registry(&self) -> &Arc<Registry<OrderActor>> {
        &self.registry
    }

    /// Places an order: takes the stock of every line at once or not at all, copies prices,
    /// and sets the deadline (through the placement desk, which batches concurrent orders).
    pub async fn create(
        &self,
        user_id: i64,
        lines: &[WantedLine],
        address: String,
        note: Option<String>,
        idem: Option<IdempotencyBinding>,
        answer_by: Instant,
    ) -> Result<OrderWithItems, OrderError> {
        let now = clock::now();
        let placement = Placement {
            order: self.deps.new_order(user_id, address, note, now),
            lines: lines.to_vec(),
            now,
            idem,
            checkout: None,
        };
        let placed = self.deps.placer.place(placement, answer_by).await?;
        self.placed(&placed).await;
        Ok(placed.order)
    }

    /// What follows an order's placement (here or by checkout): it is counted, the stock hook
    /// hears which products changed, and a pending order's actor gets the order as its state (no
    /// read) and arms the deadline timer. If that last step fails, the sweeper arms it.
    pub async fn placed(&self, placed: &Placed) {
        let order = &placed.order;
        self.deps.outcomes.order("created");
        if order.0.status == orders::status::PAID {
            self.deps.outcomes.order("paid");
        }
        self.deps
            .stock_changed(order.1.iter().map(|i| i.product_id).collect());
        tracing::info!(
            order_id = order.0.id,
            user_id = order.0.user_id,
            total_cents = order.0.total_cents,
            status = %order.0.status,
            "order placed"
        );
        if order.0.status == orders::status::PENDING {
            let prime = OrderCmd::Prime(Box::new(order.clone()));
            if let Err(e) = self.registry.call(&order.0.id, prime).await {
                tracing::warn!(order_id = order.0.id, error = %e, "order actor not primed; the sweeper will wake it");
            }
        }
    }

    async fn call(
        &self,
        id: i64,
        cmd: OrderCmd,
    ) -> Result<(OrderWithItems, Option<PaymentRow>), OrderError> {
        self.registry.call(&id, cmd).await?
    }

    /// One order the viewer may see.
    pub async fn get(&self, viewer: Viewer, id: i64) -> Result<OrderWithItems, OrderError> {
        let (order, _) = self.call(id, OrderCmd::Get).await?;
        if order.0.user_id != viewer.user_id && !viewer.admin {
            return Err(OrderError::NotFound);
        }
        Ok(order)
    }

    /// The user's orders, newest first.
    pub async fn list(
        &self,
        user_id: i64,
        status: Option<&str>,
        page: u32,
        page_size: u32,
    ) -> Result<Page<OrderWithItems>, OrderError> {
        let mut conn = self.deps.db.read().await?;
        Ok(orders::list_for_user(&mut conn, user_id, status, page, page_size).await?)
    }

    /// Changes a pending order's address and/or note.
    pub async fn edit(
        &self,
        user_id: i64,
        id: i64,
        address: Option<String>,
        note: Option<Option<String>>,
    ) -> Result<OrderWithItems, OrderError> {
        Ok(self
            .call(
                id,
                OrderCmd::Edit {
                    by: user_id,
                    address,
                    note,
                },
            )
            .await?
            .0)
    }

    /// Cancels the user's pending order (stock back, pending session cancelled).
    pub async fn cancel(&self, user_id: i64, id: i64) -> Result<OrderWithItems, OrderError> {
        Ok(self
            .call(
                id,
                OrderCmd::Cancel {
                    by: Some(user_id),
                    reason: CancelReason::User,
                },
            )
            .await?
            .0)
    }

    /// Settles a payment session of the user's order (called by the payment actor).
    pub async fn pay(
        &self,
        user_id: i64,
        order_id: i64,
        payment_id: i64,
        last4: String,
        idem: Option<IdempotencyBinding>,
    ) -> Result<(OrderWithItems, Option<PaymentRow>), OrderError> {
        self.call(
            order_id,
            OrderCmd::Pay {
                by: user_id,
                payment_id,
                last4,
                idem,
            },
        )
        .await
    }

    /// Wakes an order: arms its timer, or cancels it as expired when its deadline passed.
    pub async fn wake(&self, id: i64) -> Result<(), OrderError> {
        self.call(id, OrderCmd::Wake).await.map(|_| ())
    }

    /// Cancels every pending order of a closing account; returns how many.
    pub async fn cancel_all_of(
        &self,
        user_id: i64,
        reason: CancelReason,
    ) -> Result<usize, OrderError> {
        let ids = {
            let mut conn = self.deps.db.read().await?;
            orders::pending_of_user(&mut conn, user_id).await?
        };
        let mut cancelled = 0;
        for id in ids {
            match self.call(id, OrderCmd::Cancel { by: None, reason }).await {
                Ok(_) => cancelled += 1,
                // Paid or cancelled meanwhile: nothing to do.
                Err(OrderError::InvalidState(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(cancelled)
    }

    /// The payment sessions of an order the viewer may see, oldest first.
    pub async fn payments_of(
        &self,
        viewer: Viewer,
        id: i64,
        page: u32,
        page_size: u32,
    ) -> Result<Page<PaymentRow>, OrderError> {
        self.get(viewer, id).await?;
        let mut conn = self.deps.db.read().await?;
        Ok(payments::list_for_order(&mut conn, id, page, page_size).await?)
    }
}
