//! Checkout: the caller's cart becomes an order, its payment session is opened and, when a card
//! is given, charged, and the cart is emptied — one transaction, in one turn of the cart's actor
//! (see [`CheckOut`]), so a purchase is one commit and a double-submitted checkout finds the
//! cart already empty.
//!
//! The card is checked and put to the (simulated) gateway before the order is placed: its
//! answer decides whether the session is written as succeeded (the order paid) or as pending
//! with `last_error = "card_declined"`. The simulated gateway holds nothing, so an order the
//! stock refuses leaves nothing to release; a real gateway would authorise here and capture or
//! void once the placement answers.

use mall_db::clock;
use mall_db::domain::UserId;
use mall_db::repo::orders::IdempotencyBinding;

use crate::cart::CartHandle;
pub use crate::cart::error::CheckoutError;
use crate::cart::messages::CheckOut;
use crate::deps::Deps;
use crate::order::{OrderHandle, OrderView, PaymentView};
use crate::payment::{Card, PaymentError, PaymentHandle, check_card, gateway};
use crate::runtime::Deadline;

/// The services checkout uses.
#[derive(Clone)]
pub struct Checkout {
    carts: CartHandle,
    orders: OrderHandle,
    payments: PaymentHandle,
    deps: Deps,
}

impl Checkout {
    /// Checkout over these services.
    pub fn new(
        carts: CartHandle,
        orders: OrderHandle,
        payments: PaymentHandle,
        deps: Deps,
    ) -> Self {
        Checkout {
            carts,
            orders,
            payments,
            deps,
        }
    }

    /// Runs a checkout for `user`; returns the order and its session. A declined card is
    /// not an error: the order stays pending and the session pending with
    /// `last_error = "card_declined"`.
    pub async fn run(
        &self,
        user: UserId,
        address: String,
        note: Option<String>,
        card: Option<Card>,
        idem: Option<IdempotencyBinding>,
        answer_by: Deadline,
    ) -> Result<(OrderView, PaymentView), CheckoutError> {
        let charge = match &card {
            Some(card) => {
                check_card(card)?;
                Some(gateway::charge(card))
            }
            None => None,
        };
        let now = clock::now();
        let cmd = CheckOut {
            order: self.deps.new_order(user, address, note, now),
            now,
            idem,
            session_id: self.deps.ids.next_id(),
            session_expires_at: clock::after(now, self.deps.session_timeout),
            charge,
        };
        let placed = self.carts.check_out(user.get(), cmd, answer_by).await?;
        self.orders.placed(&placed);
        let payment = placed.payment.ok_or_else(|| {
            PaymentError::Internal("checkout placed an order without its session".into())
        })?;
        self.payments.opened(&payment);
        Ok((OrderView::from(&placed.order), PaymentView::from(&payment)))
    }
}
