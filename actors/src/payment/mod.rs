//! Payment sessions behind a `PaymentHandle`, against a simulated gateway, with a durable
//! session deadline. A session belongs to its order, whose entity owns and writes it (see
//! `order::actor`); the handle routes each session command to its order.

pub mod error;
pub mod gateway;
pub mod handle;

pub use error::PaymentError;
pub use gateway::Card;
pub use handle::{PaymentHandle, check_card};
pub use mall_db::domain::PaymentStatus;
