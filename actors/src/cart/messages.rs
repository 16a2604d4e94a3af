//! The cart actor's one message: a [`CartOp`], answered with the cart's new state.

use actix::Message;

use super::error::CartError;
pub use super::state::CartOp;
use super::state::CartState;

impl Message for CartOp {
    type Result = Result<CartState, CartError>;
}
