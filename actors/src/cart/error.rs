//! `CartError`: everything a cart operation can refuse or fail with; `CheckoutError`: what a
//! checkout (a turn of the cart) can refuse or fail with.

use crate::order::OrderError;
use crate::payment::PaymentError;
use crate::runtime::RuntimeError;

/// Why a cart operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    /// A quantity outside 1..=999 (0 only for set), or a line that would pass 999.
    #[error("invalid quantity: {0}")]
    InvalidQuantity(String),
    /// Adding a 101st line.
    #[error("the cart already has {0} lines")]
    CartFull(usize),
    /// The product does not exist or was deleted.
    #[error("product not found")]
    ProductNotFound,
    /// The cart has no line for that product.
    #[error("no such line in the cart")]
    LineNotFound,
    /// Another node owns the shard the entity lives on (or none does right now): the request
    /// belongs there. Never shown to a client (the HTTP layer forwards, or answers 503).
    #[error("shard {shard} is owned by another node")]
    NotOwner {
        /// The shard.
        shard: u32,
    },
    /// The database or the actor did not answer; retry later.
    #[error("cart unavailable: {0}")]
    Unavailable(String),
    /// A bug.
    #[error("cart failure: {0}")]
    Internal(String),
}

impl From<mall_db::DbError> for CartError {
    fn from(e: mall_db::DbError) -> Self {
        match e {
            mall_db::DbError::Unavailable(why) => CartError::Unavailable(why),
            mall_db::DbError::Fenced { shard } => CartError::NotOwner { shard },
            // The product vanished between the check and the write.
            mall_db::DbError::ForeignKeyViolation(_) => CartError::ProductNotFound,
            other => CartError::Internal(other.to_string()),
        }
    }
}

impl From<RuntimeError> for CartError {
    fn from(e: RuntimeError) -> Self {
        CartError::Unavailable(e.to_string())
    }
}

impl CheckoutError {
    /// The shard, when the refusal is that another node owns it.
    pub fn not_owner(&self) -> Option<u32> {
        match self {
            CheckoutError::Cart(CartError::NotOwner { shard })
            | CheckoutError::Payment(PaymentError::NotOwner { shard }) => Some(*shard),
            CheckoutError::Order(e) => e.not_owner(),
            _ => None,
        }
    }
}

/// Why a checkout did not happen.
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
    /// The card is invalid (checked before anything).
    #[error(transparent)]
    Payment(#[from] PaymentError),
}
