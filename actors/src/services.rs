//! `Services`: the actor system wired once. It starts the placement desk, the cart and order
//! registries, and the handles over them (payments and checkout), and runs the deadline sweeper
//! over every kind with deadlines. The HTTP layer only holds what this returns.

use std::sync::Arc;
use std::time::Duration;

use mall_db::{Db, IdGenerator};

use crate::cart::CartHandle;
use crate::cart::prices::Prices;
use crate::checkout::Checkout;
use crate::cluster::Ownership;
use crate::deps::{Deps, OutcomeMetrics, StockHook};
use crate::order::OrderHandle;
use crate::payment::PaymentHandle;
use crate::placement::{PlacementConfig, Placer};
use crate::runtime::{RuntimeConfig, RuntimeMetrics, Sweep, spawn_sweeper};

/// How the services run.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    /// The entity runtime (`[actors]`).
    pub runtime: RuntimeConfig,
    /// The placement desk (`[placement]`).
    pub placement: PlacementConfig,
    /// An unpaid order's deadline after creation (`order.payment_timeout_secs`).
    pub order_timeout: Duration,
    /// A payment session's deadline after opening (`payment.session_timeout_secs`).
    pub session_timeout: Duration,
    /// The price list carts are answered with, kept fresh by whoever hears of product changes.
    pub prices: Arc<Prices>,
}

/// The running services; cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// Carts, one entity per user.
    pub carts: CartHandle,
    /// Orders (and the payment sessions they own), one entity per order.
    pub orders: OrderHandle,
    /// Payment sessions, through their orders.
    pub payments: PaymentHandle,
    /// Cart -> order -> payment.
    pub checkout: Checkout,
}

impl Services {
    /// Starts everything (inside an actix `System`); metrics go to `registry`,
    /// `on_stock_change` hears which products' stock an order took or gave back, and
    /// `ownership` says which shards' entities this node may activate and write.
    pub fn start(
        db: Db,
        ids: Arc<IdGenerator>,
        config: ServicesConfig,
        registry: &prometheus::Registry,
        on_stock_change: Option<StockHook>,
        ownership: Arc<Ownership>,
    ) -> Result<Services, prometheus::Error> {
        let runtime_metrics = RuntimeMetrics::new(registry)?;
        let placer = Placer::start(db.clone(), config.placement, registry)?;
        let carts = CartHandle::start_owned(
            db.clone(),
            placer.clone(),
            Arc::clone(&ownership),
            config.prices,
            config.runtime.clone(),
            &runtime_metrics,
        );
        let deps = Deps {
            db,
            ids,
            order_timeout: config.order_timeout,
            session_timeout: config.session_timeout,
            outcomes: OutcomeMetrics::new(registry)?,
            on_stock_change,
            placer,
            ownership,
        };
        let orders = OrderHandle::start(deps.clone(), config.runtime, &runtime_metrics);
        let payments = PaymentHandle::new(deps.clone(), orders.clone());
        let checkout = Checkout::new(carts.clone(), orders.clone(), payments.clone(), deps);
        Ok(Services {
            carts,
            orders,
            payments,
            checkout,
        })
    }

    /// The registries with deadlines, for the sweeper.
    pub fn with_deadlines(&self) -> Vec<Arc<dyn Sweep>> {
        let orders: Arc<dyn Sweep> = self.orders.registry().clone();
        vec![orders]
    }

    /// Starts the deadline sweeper: every `every`, it wakes whatever is due within `lookahead`
    /// (at once, too, so deadlines that passed while the mall was down are honoured).
    pub fn spawn_sweeper(&self, every: Duration, lookahead: Duration) {
        spawn_sweeper(self.with_deadlines(), every, lookahead);
    }
}
