//! What an order is asked, and what it answers. An order owns its payment sessions (see
//! [`super::actor`]), so the session commands come here too.

use actix::Message;
use time::PrimitiveDateTime;

use mall_db::domain::{CancelReason, Charge, PaymentId, UserId};
use mall_db::repo::orders::IdempotencyBinding;

use super::error::OrderError;
use super::view::{OrderView, PaymentView};

/// What an order is asked. `by` is the caller where ownership matters. Plain data that
/// serialises, so a command can one day be forwarded to the node owning the order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OrderCmd {
    /// Read it.
    Get,
    /// Change the address and/or note (`Some(None)` clears the note).
    Edit {
        /// The caller (must own it).
        by: UserId,
        /// A new address (JSON).
        address: Option<String>,
        /// A new note.
        note: Option<Option<String>>,
    },
    /// Cancel it (`by: None`: the system or an admin), with its pending session.
    Cancel {
        /// The caller, when a user asks.
        by: Option<UserId>,
        /// Why.
        reason: CancelReason,
    },
    /// Act on what is due: expire a session past its deadline, cancel the order past its own.
    Wake,
    /// Open a payment session, or answer the pending one.
    OpenSession {
        /// The caller (must own it).
        by: UserId,
        /// The new session's id (unused when one is pending).
        session: PaymentId,
        /// The new session's deadline.
        expires_at: PrimitiveDateTime,
        /// The request's Idempotency-Key, bound in the same transaction.
        idem: Option<IdempotencyBinding>,
    },
    /// Act on one of its payment sessions.
    Session {
        /// The caller (must own it).
        by: UserId,
        /// The session.
        session: PaymentId,
        /// What to do.
        act: SessionAct,
    },
}

/// What to do with a payment session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SessionAct {
    /// Read it.
    Get,
    /// Record the gateway's answer for a card: on approval the session succeeds and the order
    /// is paid, in one transaction.
    Confirm {
        /// The gateway's answer.
        charge: Charge,
        /// The request's Idempotency-Key, bound in the same transaction as the success.
        idem: Option<IdempotencyBinding>,
    },
    /// Cancel it.
    Cancel,
}

/// An order's answer: the order, and the session a session command concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderAnswer {
    /// The order and its lines.
    pub order: OrderView,
    /// The session acted on.
    pub session: Option<PaymentView>,
    /// True when `OpenSession` opened a new session.
    pub created: bool,
}

impl OrderAnswer {
    /// The order alone.
    pub(crate) fn of(state: &super::state::OrderState) -> Self {
        OrderAnswer {
            order: OrderView::from(&state.order),
            session: None,
            created: false,
        }
    }
}

/// The answer to any order command.
pub type OrderReply = Result<OrderAnswer, OrderError>;

impl Message for OrderCmd {
    type Result = OrderReply;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_plain_data_that_survive_a_round_trip() {
        let now = mall_db::clock::now();
        let cmds = [
            OrderCmd::Cancel {
                by: Some(UserId(7)),
                reason: CancelReason::AccountClosed,
            },
            OrderCmd::OpenSession {
                by: UserId(7),
                session: PaymentId(9),
                expires_at: now,
                idem: Some(IdempotencyBinding {
                    user_id: 7,
                    key: "k-1".into(),
                }),
            },
            OrderCmd::Session {
                by: UserId(7),
                session: PaymentId(9),
                act: SessionAct::Confirm {
                    charge: Charge::Declined {
                        last4: "0002".into(),
                    },
                    idem: None,
                },
            },
        ];
        for cmd in cmds {
            let json = serde_json::to_string(&cmd).unwrap();
            assert_eq!(
                serde_json::from_str::<OrderCmd>(&json).unwrap(),
                cmd,
                "{json}"
            );
        }
        let json = serde_json::to_string(&CancelReason::AccountClosed).unwrap();
        assert_eq!(json, r#""account_closed""#);
    }
}
