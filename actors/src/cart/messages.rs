//! The cart actor's messages: a [`CartOp`], answered with the cart's new state, and
//! [`CheckOut`], answered with the order it placed.

use actix::Message;
use time::PrimitiveDateTime;

use mall_db::repo::orders::{IdempotencyBinding, NewOrder};
use mall_db::repo::placements::{Charge, Placed};

use super::error::CartError;
pub use super::state::CartOp;
use super::state::CartState;
use crate::checkout::CheckoutError;

impl Message for CartOp {
    type Result = Result<CartState, CartError>;
}

/// Place the whole cart as an order, open its payment session (charged when `charge` says so)
/// and empty the cart, all in one transaction, inside one turn of the cart's actor (so nothing
/// is added to the cart meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
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

impl Message for CheckOut {
    type Result = Result<Placed, CheckoutError>;
}
