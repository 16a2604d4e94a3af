//! The mall's rules, once, as plain values with no I/O: ids, money and quantities, the limits,
//! each entity's statuses and state machine (birth included), the gateway's answer, and how a
//! batch of orders is priced and covered by stock. Every layer reaches them from here (db is the
//! bottom of the stack), so no layer repeats one.

pub mod cart;
pub mod fence;
pub mod ids;
pub mod money;
pub mod order;
pub mod payment;
pub mod placement;
mod text;

pub use fence::Fence;
pub use ids::{OrderId, PaymentId, ProductId, UserId};
pub use order::{CancelReason, OrderEvent, OrderStatus};
pub use payment::{Charge, PaymentEvent, PaymentStatus};

/// A transition the state machine does not allow: the entity is not in a state where the
/// event can happen. The message says why, in words a user can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotAllowed(pub String);
