//! What a cart is asked: a [`CartOp`] (answered with the cart's new state) or a [`CheckOut`]
//! (answered with the order it placed), as one [`CartCmd`].

use actix::Message;
use time::PrimitiveDateTime;

use mall_db::repo::orders::{IdempotencyBinding, NewOrder};
use mall_db::repo::placements::{Charge, Placed};

use super::error::CheckoutError;
pub use super::state::CartOp;
use super::state::CartState;

/// Place the whole cart as an order, open its payment session (charged when `charge` says so)
/// and empty the cart, all in one transaction, inside one turn of the cart (so nothing is added
/// to the cart meanwhile).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckOut {
    /// The order's id, address, note and deadline (its lines are the cart's).
    pub order: NewOrder,
    /// When the checkout was asked for.
    pub now: PrimitiveDateTime,
    /// The request's `Idempotency-Key`, bound to the order in the same transaction.
    pub idem: Option<IdempotencyBinding>,
    /// The payment session's id.
    pub session_id: i64,
    /// The payment session's deadline.
    pub session_expires_at: PrimitiveDateTime,
    /// The gateway's answer for the checkout's card, if one came.
    pub charge: Option<Charge>,
}

/// A message to a cart: plain data that serialises (it may one day cross nodes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CartCmd {
    /// Change or read it.
    Op(CartOp),
    /// Check it out.
    CheckOut(Box<CheckOut>),
}

/// A cart's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartAnswer {
    /// The cart after an operation.
    Cart(CartState),
    /// What a checkout placed.
    Placed(Box<Placed>),
}

impl Message for CartCmd {
    type Result = Result<CartAnswer, CheckoutError>;
}
