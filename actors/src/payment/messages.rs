//! Commands and queries of the payment actor.

use actix::Message;

use mall_db::models::PaymentRow;
use mall_db::repo::orders::IdempotencyBinding;

use super::error::PaymentError;
use super::gateway::Card;

/// What a payment actor is asked. `by` is the caller's user id (sessions are private).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentCmd {
    /// Read it.
    Get {
        /// The caller.
        by: i64,
    },
    /// Charge a (checked) card; on approval the order becomes paid.
    Confirm {
        /// The caller.
        by: i64,
        /// The card (never stored or logged; only its last four digits are kept).
        card: Card,
        /// The request's Idempotency-Key, bound in the same transaction as the success.
        idem: Option<IdempotencyBinding>,
    },
    /// Cancel a pending session.
    Cancel {
        /// The caller.
        by: i64,
    },
    /// Arm the deadline timer, or expire the session if its deadline passed.
    Wake,
}

impl Message for PaymentCmd {
    type Result = Result<PaymentRow, PaymentError>;
}
