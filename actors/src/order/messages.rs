//! Commands and queries of the order actor.

use actix::Message;

use mall_db::models::PaymentRow;
use mall_db::repo::orders::{IdempotencyBinding, OrderWithItems};

use super::error::OrderError;
use super::state::CancelReason;

/// What an order actor is asked. `by` is the caller's user id where ownership matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCmd {
    /// Read it.
    Get,
    /// Change the address and/or note (`Some(None)` clears the note).
    Edit {
        /// The caller (must own it).
        by: i64,
        /// A new address (JSON).
        address: Option<String>,
        /// A new note.
        note: Option<Option<String>>,
    },
    /// Cancel it (`by: None`: the system or an admin).
    Cancel {
        /// The caller, when a user asks.
        by: Option<i64>,
        /// Why.
        reason: CancelReason,
    },
    /// Settle a payment session: mark it succeeded and the order paid, atomically.
    Pay {
        /// The caller (must own it).
        by: i64,
        /// The session.
        payment_id: i64,
        /// The card's last four digits.
        last4: String,
        /// The request's Idempotency-Key, bound in the same transaction.
        idem: Option<IdempotencyBinding>,
    },
    /// Arm the deadline timer, or cancel the order as expired if the deadline has passed.
    Wake,
    /// A just-placed order: keep it as the actor's state (no read), then as `Wake`.
    Prime(Box<OrderWithItems>),
}

/// The order after the command (and the settled payment, for `Pay`).
pub type OrderReply = Result<(OrderWithItems, Option<PaymentRow>), OrderError>;

impl Message for OrderCmd {
    type Result = OrderReply;
}
