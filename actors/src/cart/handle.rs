//! `CartHandle`: what the HTTP layer calls. It routes each operation to the user's cart actor
//! and prices the answer at current product prices.

use std::sync::Arc;

use time::PrimitiveDateTime;

use mall_db::{Db, money};

use mall_db::repo::placements::Placed;

use super::actor::{Cart, CartDeps};
use super::error::{CartError, CheckoutError};
use super::messages::{CartAnswer, CartCmd, CheckOut};
use super::prices::{self, Prices};
use super::state::{CartOp, CartState};
use crate::cluster::Ownership;
use crate::placement::Placer;
use crate::runtime::{Deadline, Host, Registry, RuntimeConfig, RuntimeMetrics};

/// One priced line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartLineView {
    /// The product.
    pub product_id: i64,
    /// Its current name.
    pub name: String,
    /// Its current price.
    pub unit_price_cents: i64,
    /// How many.
    pub quantity: i32,
    /// `unit_price_cents * quantity`.
    pub line_total_cents: i64,
    /// False once the product was deleted (it can no longer be bought).
    pub available: bool,
}

/// A cart priced at current prices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartView {
    /// Lines in the order they were first added.
    pub items: Vec<CartLineView>,
    /// The sum of the available lines.
    pub total_cents: i64,
    /// Last change.
    pub updated_at: PrimitiveDateTime,
    /// The stored version (changes with every write).
    pub version: i64,
}

/// Routes cart operations to cart actors.
#[derive(Clone)]
pub struct CartHandle {
    registry: Arc<Registry<Host<Cart>>>,
    db: Db,
    prices: Arc<Prices>,
}

impl CartHandle {
    /// Starts the cart registry (inside an actix `System`) and its passivation timer; checkouts
    /// place their orders through `placer`. Its price list is its own: nothing else changes the
    /// products (a benchmark's or a test's single node).
    pub fn start(
        db: Db,
        placer: Placer,
        config: RuntimeConfig,
        metrics: &RuntimeMetrics,
    ) -> CartHandle {
        let prices = Arc::new(prices::prices(1 << 24, std::time::Duration::from_secs(5)));
        Self::start_owned(db, placer, Ownership::single(1), prices, config, metrics)
    }

    /// [`CartHandle::start`] for a node that owns the shards `ownership` says (a cluster node),
    /// answering from `prices`, which whoever hears of product changes keeps fresh.
    pub fn start_owned(
        db: Db,
        placer: Placer,
        ownership: Arc<Ownership>,
        prices: Arc<Prices>,
        config: RuntimeConfig,
        metrics: &RuntimeMetrics,
    ) -> CartHandle {
        let deps = CartDeps {
            db: db.clone(),
            placer,
            ownership,
        };
        let registry = Registry::new(deps, config, metrics);
        registry.spawn_passivator();
        CartHandle {
            registry,
            db,
            prices,
        }
    }

    /// The registry (for tests and operations).
    pub fn registry(&self) -> &Arc<Registry<Host<Cart>>> {
        &self.registry
    }

    /// Runs `op` on the user's cart and prices the result.
    pub async fn run(&self, user_id: i64, op: CartOp) -> Result<CartView, CartError> {
        match self.registry.call(&user_id, CartCmd::Op(op)).await? {
            Ok(CartAnswer::Cart(state)) => self.price(state).await,
            Err(CheckoutError::Cart(e)) => Err(e),
            other => Err(CartError::Internal(format!(
                "a cart operation answered {other:?}"
            ))),
        }
    }

    /// Creates the user's cart if it has none.
    pub async fn create(&self, user_id: i64) -> Result<CartView, CartError> {
        self.run(user_id, CartOp::Create).await
    }

    /// The user's cart.
    pub async fn get(&self, user_id: i64) -> Result<CartView, CartError> {
        self.run(user_id, CartOp::Get).await
    }

    /// Adds `quantity` of a product.
    pub async fn add_item(
        &self,
        user_id: i64,
        product_id: i64,
        quantity: i64,
    ) -> Result<CartView, CartError> {
        self.run(
            user_id,
            CartOp::Add {
                product_id,
                quantity,
            },
        )
        .await
    }

    /// Sets a line's quantity (0 removes it).
    pub async fn set_quantity(
        &self,
        user_id: i64,
        product_id: i64,
        quantity: i64,
    ) -> Result<CartView, CartError> {
        self.run(
            user_id,
            CartOp::Set {
                product_id,
                quantity,
            },
        )
        .await
    }

    /// Removes a line.
    pub async fn remove_item(&self, user_id: i64, product_id: i64) -> Result<CartView, CartError> {
        self.run(user_id, CartOp::Remove { product_id }).await
    }

    /// Checks the user's cart out (see [`CheckOut`]), answering by `answer_by`.
    pub async fn check_out(
        &self,
        user_id: i64,
        cmd: CheckOut,
        answer_by: Deadline,
    ) -> Result<Placed, CheckoutError> {
        let cmd = CartCmd::CheckOut(Box::new(cmd));
        match self.registry.call_by(&user_id, cmd, answer_by).await {
            Ok(Ok(CartAnswer::Placed(placed))) => Ok(*placed),
            Ok(Ok(CartAnswer::Cart(_))) => Err(CheckoutError::Cart(CartError::Internal(
                "a checkout answered with a cart".into(),
            ))),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(CheckoutError::Cart(e.into())),
        }
    }

    /// Empties the cart.
    pub async fn clear(&self, user_id: i64) -> Result<CartView, CartError> {
        self.run(user_id, CartOp::Clear).await
    }

    async fn price(&self, state: CartState) -> Result<CartView, CartError> {
        let ids: Vec<i64> = state.lines.iter().map(|l| l.product_id).collect();
        let products = prices::lookup(&self.prices, &self.db, &ids).await?;
        let overflow = |e: money::Overflow| CartError::Internal(e.to_string());
        let items = state
            .lines
            .iter()
            .map(|l| {
                let (name, price, deleted) = products
                    .get(&l.product_id)
                    .map_or((String::new(), 0, true), |p| {
                        (p.name.clone(), p.price_cents, p.deleted)
                    });
                Ok(CartLineView {
                    product_id: l.product_id,
                    name,
                    unit_price_cents: price,
                    quantity: l.quantity,
                    line_total_cents: money::line_total(price, l.quantity).map_err(overflow)?,
                    available: !deleted,
                })
            })
            .collect::<Result<Vec<CartLineView>, CartError>>()?;
        let total_cents = money::sum(
            items
                .iter()
                .filter(|i| i.available)
                .map(|i| i.line_total_cents),
        )
        .map_err(overflow)?;
        Ok(CartView {
            items,
            total_cents,
            updated_at: state.updated_at.unwrap_or_else(mall_db::clock::now),
            version: state.version.unwrap_or(0),
        })
    }
}
