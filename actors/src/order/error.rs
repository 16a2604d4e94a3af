//! `OrderError`: everything an order operation (or one on its payment sessions) can refuse or
//! fail with.

use mall_db::domain::NotAllowed;

use crate::payment::PaymentError;
use crate::runtime::RuntimeError;

/// Why an order operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// No such order, or not the caller's.
    #[error("order not found")]
    NotFound,
    /// The order's status does not allow it.
    #[error("{0}")]
    InvalidState(String),
    /// A line names an unknown or deleted product.
    #[error("product {0} not found")]
    ProductNotFound(i64),
    /// A line wants more than there is.
    #[error("product {product_id}: only {available} available")]
    InsufficientStock {
        /// The product short of stock.
        product_id: i64,
        /// What it has.
        available: i64,
    },
    /// A command to one of its payment sessions was refused (the order owns its sessions).
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// The database or the actor did not answer; retry later.
    #[error("orders unavailable: {0}")]
    Unavailable(String),
    /// A bug.
    #[error("order failure: {0}")]
    Internal(String),
}

impl From<NotAllowed> for OrderError {
    fn from(e: NotAllowed) -> Self {
        OrderError::InvalidState(e.0)
    }
}

impl From<mall_db::DbError> for OrderError {
    fn from(e: mall_db::DbError) -> Self {
        match e {
            mall_db::DbError::Unavailable(why) => OrderError::Unavailable(why),
            other => OrderError::Internal(other.to_string()),
        }
    }
}

impl From<RuntimeError> for OrderError {
    fn from(e: RuntimeError) -> Self {
        OrderError::Unavailable(e.to_string())
    }
}

impl From<mall_db::repo::placements::PlaceError> for OrderError {
    fn from(e: mall_db::repo::placements::PlaceError) -> Self {
        use mall_db::repo::placements::PlaceError;
        match e {
            PlaceError::ProductNotFound(id) => OrderError::ProductNotFound(id),
            PlaceError::InsufficientStock {
                product_id,
                available,
            } => OrderError::InsufficientStock {
                product_id,
                available,
            },
            PlaceError::CartChanged => {
                OrderError::Unavailable("the cart changed during the checkout; retry".into())
            }
            // The request gave up and its key was released: the answer it got (503) stands.
            PlaceError::KeyNotHeld => OrderError::Unavailable(e.to_string()),
            PlaceError::Overflow(overflow) => OrderError::Internal(overflow.to_string()),
            PlaceError::Db(db) => db.into(),
        }
    }
}
