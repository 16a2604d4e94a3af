//! What orders (and the payment sessions they own) share: the database, ids, deadlines,
//! outcome metrics and the placement desk.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounterVec, Opts, Registry};

use mall_db::domain::UserId;
use mall_db::repo::orders::NewOrder;
use mall_db::{Db, IdGenerator, clock};

use crate::cluster::Ownership;
use crate::placement::Placer;

/// Orders and payments by outcome: `orders_total{outcome}`, `payments_total{outcome}`.
#[derive(Clone)]
pub struct OutcomeMetrics {
    orders: IntCounterVec,
    payments: IntCounterVec,
}

impl OutcomeMetrics {
    /// Creates and registers the counters.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let orders =
            IntCounterVec::new(Opts::new("orders_total", "Orders by outcome"), &["outcome"])?;
        let payments = IntCounterVec::new(
            Opts::new("payments_total", "Payment attempts and sessions by outcome"),
            &["outcome"],
        )?;
        registry.register(Box::new(orders.clone()))?;
        registry.register(Box::new(payments.clone()))?;
        Ok(OutcomeMetrics { orders, payments })
    }

    /// Counts an order outcome (`created`, `paid`, `cancelled_user`, `cancelled_expired`, ...).
    pub fn order(&self, outcome: &str) {
        self.orders.with_label_values(&[outcome]).inc();
    }

    /// Counts a payment outcome (`opened`, `succeeded`, `declined`, `cancelled`, `expired`).
    pub fn payment(&self, outcome: &str) {
        self.payments.with_label_values(&[outcome]).inc();
    }
}

/// Shared by every order entity, the payment handle and checkout.
#[derive(Clone)]
pub struct Deps {
    /// The database.
    pub db: Db,
    /// Ids for new orders and payments.
    pub ids: Arc<IdGenerator>,
    /// An unpaid order's deadline after creation (`order.payment_timeout_secs`).
    pub order_timeout: Duration,
    /// A payment session's deadline after opening (`payment.session_timeout_secs`).
    pub session_timeout: Duration,
    /// Outcome counters.
    pub outcomes: OutcomeMetrics,
    /// Told which products' stock changed (an order took or returned it), e.g. to drop caches.
    pub on_stock_change: Option<StockHook>,
    /// Places new orders, in batches.
    pub placer: Placer,
    /// Which shards this node owns (every shard, unfenced, on a single node).
    pub ownership: Arc<Ownership>,
}

/// A callback taking the ids of products whose stock changed.
pub type StockHook = Arc<dyn Fn(Vec<i64>) + Send + Sync>;

impl Deps {
    /// A new order of `user` placed `now`: a fresh id and the payment deadline.
    pub fn new_order(
        &self,
        user: UserId,
        address: String,
        note: Option<String>,
        now: time::PrimitiveDateTime,
    ) -> NewOrder {
        NewOrder {
            id: self.ids.next_id(),
            user_id: user.get(),
            address,
            note,
            expires_at: clock::after(now, self.order_timeout),
        }
    }

    /// Reports a stock change to the hook, if any.
    pub fn stock_changed(&self, product_ids: Vec<i64>) {
        if let Some(hook) = &self.on_stock_change {
            hook(product_ids);
        }
    }
}
