//! `OrderError`: everything an order operation (or one on its payment sessions) can refuse or
//! fail with.

use mall_db::domain::NotAllowed;
use mall_db::domain::placement::Refused;

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
    /// The placement refused the new order (a product missing or short, a total too large).
    #[error(transparent)]
    Refused(#[from] Refused),
    /// A command to one of its payment sessions was refused (the order owns its sessions).
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// Another node owns the shard the entity lives on (or none does right now): the request
    /// belongs there. Never shown to a client (the HTTP layer forwards, or answers 503).
    #[error("shard {shard} is owned by another node")]
    NotOwner {
        /// The shard.
        shard: u32,
    },
    /// The database or the actor did not answer; retry later.
    #[error("orders unavailable: {0}")]
    Unavailable(String),
    /// A bug.
    #[error("order failure: {0}")]
    Internal(String),
}

impl OrderError {
    /// The shard, when the refusal is that another node owns it (directly, or from one of the
    /// order's payment sessions).
    pub fn not_owner(&self) -> Option<u32> {
        match self {
            OrderError::NotOwner { shard }
            | OrderError::Payment(PaymentError::NotOwner { shard }) => Some(*shard),
            _ => None,
        }
    }
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
            mall_db::DbError::Fenced { shard } => OrderError::NotOwner { shard },
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
            PlaceError::Refused(refused) => OrderError::Refused(refused),
            PlaceError::CartChanged => {
                OrderError::Unavailable("the cart changed during the checkout; retry".into())
            }
            // The request gave up and its key was released: the answer it got (503) stands.
            PlaceError::KeyNotHeld => OrderError::Unavailable(e.to_string()),
            PlaceError::Db(db) => db.into(),
        }
    }
}
