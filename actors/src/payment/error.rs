//! `PaymentError`: everything a payment operation can refuse or fail with.

use crate::runtime::RuntimeError;

/// Why a payment operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// No such session or order, or not the caller's.
    #[error("not found")]
    NotFound,
    /// The session's or the order's status does not allow it.
    #[error("{0}")]
    InvalidState(String),
    /// The card is malformed or expired: `(field, reason)`.
    #[error("invalid card: {0} {1}")]
    InvalidCard(&'static str, &'static str),
    /// The issuer declined; the session (still pending) is attached.
    #[error("card declined")]
    Declined(Box<crate::order::PaymentView>),
    /// Another node owns the shard the entity lives on (or none does right now): the request
    /// belongs there. Never shown to a client (the HTTP layer forwards, or answers 503).
    #[error("shard {shard} is owned by another node")]
    NotOwner {
        /// The shard.
        shard: u32,
    },
    /// The database or an actor did not answer; retry later.
    #[error("payments unavailable: {0}")]
    Unavailable(String),
    /// A bug.
    #[error("payment failure: {0}")]
    Internal(String),
}

impl From<mall_db::DbError> for PaymentError {
    fn from(e: mall_db::DbError) -> Self {
        match e {
            mall_db::DbError::Unavailable(why) => PaymentError::Unavailable(why),
            mall_db::DbError::Fenced { shard } => PaymentError::NotOwner { shard },
            other => PaymentError::Internal(other.to_string()),
        }
    }
}

impl From<mall_db::domain::NotAllowed> for PaymentError {
    fn from(e: mall_db::domain::NotAllowed) -> Self {
        PaymentError::InvalidState(e.0)
    }
}

impl From<RuntimeError> for PaymentError {
    fn from(e: RuntimeError) -> Self {
        PaymentError::Unavailable(e.to_string())
    }
}
