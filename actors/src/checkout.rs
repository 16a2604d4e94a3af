//! Checkout: the caller's cart becomes an order (the cart is emptied only once the order
//! exists), a payment session is opened for it, and a card, when given, is charged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mall_db::models::PaymentRow;
use mall_db::repo::orders::{IdempotencyBinding, OrderWithItems, WantedLine};

use crate::cart::{CartError, CartHandle};
use crate::order::{OrderError, OrderHandle, Viewer};
use crate::payment::{Card, PaymentError, PaymentHandle, check_card};

/// Why a checkout did not happen (or stopped after the order was placed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckoutError {
    /// The cart has no lines.
    #[error("the cart is empty")]
    CartEmpty,
    /// Reading the cart failed.
    #[error(transparent)]
    Cart(#[from] CartError),
    /// Placing the order failed (nothing was taken).
    #[error(transparent)]
    Order(#[from] OrderError),
    /// The card is invalid (checked before anything), or the session failed.
    #[error(transparent)]
    Payment(#[from] PaymentError),
}

/// The services checkout uses.
#[derive(Clone)]
pub struct Checkout {
    carts: CartHandle,
    orders: OrderHandle,
    payments: PaymentHandle,
    // One checkout at a time per user: a double-submitted checkout must find the cart already
    // taken, not order it twice.
    running: Arc<Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Checkout {
    /// Checkout over these services.
    pub fn new(carts: CartHandle, orders: OrderHandle, payments: PaymentHandle) -> Self {
        Checkout {
            carts,
            orders,
            payments,
            running: Arc::default(),
        }
    }

    fn lock_of(&self, user_id: i64) -> Arc<tokio::sync::Mutex<()>> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        // Forget locks nobody holds or waits for, so the map stays small.
        running.retain(|_, l| Arc::strong_count(l) > 1);
        Arc::clone(running.entry(user_id).or_default())
    }

    /// Runs a checkout for `user_id`; returns the order and its session. A declined card is
    /// not an error: the session stays pending with `last_error = "card_declined"`.
    pub async fn run(
        &self,
        user_id: i64,
        address: String,
        note: Option<String>,
        card: Option<Card>,
        idem: Option<IdempotencyBinding>,
    ) -> Result<(OrderWithItems, PaymentRow), CheckoutError> {
        if let Some(card) = &card {
            check_card(card)?;
        }
        let lock = self.lock_of(user_id);
        let _one_at_a_time = lock.lock().await;
        let cart = self.carts.get(user_id).await?;
        if cart.items.is_empty() {
            return Err(CheckoutError::CartEmpty);
        }
        let lines: Vec<WantedLine> = cart
            .items
            .iter()
            .map(|i| WantedLine {
                product_id: i.product_id,
                quantity: i.quantity,
            })
            .collect();
        let order = self
            .orders
            .create(user_id, &lines, address, note, idem)
            .await?;
        // The order exists: now what it bought leaves the cart (lines added meanwhile stay).
        // Failing here loses nothing: the order is placed and the cart merely keeps its lines.
        let bought = lines.iter().map(|l| (l.product_id, l.quantity)).collect();
        if let Err(e) = self.carts.take(user_id, bought).await {
            tracing::warn!(user_id, order_id = order.0.id, error = %e, "cart not emptied after checkout");
        }
        let (mut payment, _) = self.payments.open(user_id, order.0.id, None).await?;
        if let Some(card) = card {
            payment = match self.payments.confirm(user_id, payment.id, card, None).await {
                Ok(p) => p,
                Err(PaymentError::Declined(p)) => *p,
                Err(e) => return Err(e.into()),
            };
        }
        let order = self
            .orders
            .get(
                Viewer {
                    user_id,
                    admin: false,
                },
                order.0.id,
            )
            .await?;
        Ok((order, payment))
    }
}
