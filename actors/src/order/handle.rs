//! `OrderHandle`: what the HTTP layer (and checkout and payments) call for orders.

use std::sync::Arc;

use mall_db::clock;
use mall_db::domain::{CancelReason, OrderId, OrderStatus, UserId};
use mall_db::repo::orders::{self, IdempotencyBinding, WantedLine};
use mall_db::repo::placements::{Placed, Placement};
use mall_db::repo::{Page, payments};

use super::actor::Order;
use super::error::OrderError;
use super::messages::{OrderAnswer, OrderCmd};
use super::view::{OrderView, PaymentView, page_of};
use crate::deps::Deps;
use crate::runtime::{Deadline, Host, Registry, RuntimeConfig, RuntimeMetrics};

/// Who is asking: a user sees only their own orders; an admin sees all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    /// The caller.
    pub user: UserId,
    /// The caller may read anyone's orders.
    pub admin: bool,
}

/// Routes order operations to order entities.
#[derive(Clone)]
pub struct OrderHandle {
    registry: Arc<Registry<Host<Order>>>,
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
    pub fn registry(&self) -> &Arc<Registry<Host<Order>>> {
        &self.registry
    }

    /// Sends `cmd` to the order, answered by `answer_by`.
    pub(crate) async fn call(
        &self,
        id: OrderId,
        cmd: OrderCmd,
        answer_by: Deadline,
    ) -> Result<OrderAnswer, OrderError> {
        self.registry.call_by(&id.get(), cmd, answer_by).await?
    }

    /// Places an order: takes the stock of every line at once or not at all, copies prices,
    /// and sets the deadline (through the placement desk, which batches concurrent orders).
    pub async fn create(
        &self,
        user: UserId,
        lines: &[WantedLine],
        address: String,
        note: Option<String>,
        idem: Option<IdempotencyBinding>,
        answer_by: Deadline,
    ) -> Result<OrderView, OrderError> {
        let now = clock::now();
        // The order is born on the buyer's shard, which must be this node's.
        let ownership = &self.deps.ownership;
        let shard = ownership.shard_of(user.get());
        let fence = ownership
            .fence(shard)
            .map_err(|_| OrderError::NotOwner { shard })?;
        let placement = Placement {
            order: self.deps.new_order(user, address, note, now),
            lines: lines.to_vec(),
            now,
            idem,
            checkout: None,
            fence,
        };
        let placed = match self.deps.placer.place(placement, answer_by).await {
            Ok(placed) => placed,
            Err(e) => {
                let e = OrderError::from(e);
                if let Some(shard) = e.not_owner() {
                    ownership.fenced(shard);
                }
                return Err(e);
            }
        };
        self.placed(&placed);
        Ok(OrderView::from(&placed.order))
    }

    /// What follows an order's placement (here or by checkout): it is counted and the stock
    /// hook hears which products changed. Nothing is sent to the order: its first message
    /// loads it, and the sweeper, which looks ahead, arms its deadline.
    pub fn placed(&self, placed: &Placed) {
        let order = &placed.order.0;
        self.deps.outcomes.order("created");
        if order.status == OrderStatus::Paid {
            self.deps.outcomes.order("paid");
        }
        self.deps
            .stock_changed(placed.order.1.iter().map(|i| i.product_id).collect());
        tracing::info!(
            order_id = order.id,
            user_id = order.user_id,
            total_cents = order.total_cents,
            status = %order.status,
            "order placed"
        );
    }

    /// One order the viewer may see.
    pub async fn get(
        &self,
        viewer: Viewer,
        id: OrderId,
        answer_by: Deadline,
    ) -> Result<OrderView, OrderError> {
        let order = self.call(id, OrderCmd::Get, answer_by).await?.order;
        if order.user != viewer.user && !viewer.admin {
            return Err(OrderError::NotFound);
        }
        Ok(order)
    }

    /// The user's orders, newest first.
    pub async fn list(
        &self,
        user: UserId,
        status: Option<OrderStatus>,
        page: u32,
        page_size: u32,
    ) -> Result<Page<OrderView>, OrderError> {
        let mut conn = self.deps.db.read().await?;
        let found = orders::list_for_user(&mut conn, user.get(), status, page, page_size).await?;
        Ok(page_of(found))
    }

    /// Changes a pending order's address and/or note.
    pub async fn edit(
        &self,
        user: UserId,
        id: OrderId,
        address: Option<String>,
        note: Option<Option<String>>,
        answer_by: Deadline,
    ) -> Result<OrderView, OrderError> {
        let cmd = OrderCmd::Edit {
            by: user,
            address,
            note,
        };
        Ok(self.call(id, cmd, answer_by).await?.order)
    }

    /// Cancels the user's pending order (stock back, pending session cancelled).
    pub async fn cancel(
        &self,
        user: UserId,
        id: OrderId,
        answer_by: Deadline,
    ) -> Result<OrderView, OrderError> {
        let cmd = OrderCmd::Cancel {
            by: Some(user),
            reason: CancelReason::User,
        };
        Ok(self.call(id, cmd, answer_by).await?.order)
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
            let cmd = OrderCmd::Cancel { by: None, reason };
            match self.registry.call(&id, cmd).await? {
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
        id: OrderId,
        page: u32,
        page_size: u32,
        answer_by: Deadline,
    ) -> Result<Page<PaymentView>, OrderError> {
        self.get(viewer, id, answer_by).await?;
        let mut conn = self.deps.db.read().await?;
        let found = payments::list_for_order(&mut conn, id.get(), page, page_size).await?;
        Ok(page_of(found))
    }
}
