//! Payment sessions: one `PaymentActor` per session behind a `PaymentHandle`, against a
//! simulated gateway, with a durable session deadline.

pub mod actor;
pub mod error;
pub mod gateway;
pub mod handle;
pub mod messages;
pub mod state;

pub use error::PaymentError;
pub use gateway::Card;
pub use handle::{PaymentHandle, check_card};
pub use state::PaymentStatus;
