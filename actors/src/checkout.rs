//! Checkout: the caller's cart becomes an order (the cart is emptied only once the order
//! exists), a payment session is opened for it, and a card, when given, is charged.

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
    /// Carts.
    pub carts: CartHandle,
    /// Orders.
    pub orders: OrderHandle,
    /// Payment sessions.
    pub payments: PaymentHandle,
}

impl Checkout {
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
        // The order exists: now the cart may be emptied. Failing here loses nothing.
        if let Err(e) = self.carts.clear(user_id).await {
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
