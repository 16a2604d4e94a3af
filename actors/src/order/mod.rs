//! Orders: one `OrderActor` per order behind an `OrderHandle`, with a durable payment deadline.

pub mod actor;
pub mod error;
pub mod handle;
pub mod messages;
pub mod state;

pub use error::OrderError;
pub use handle::{OrderHandle, Viewer};
pub use messages::OrderCmd;
pub use state::{CancelReason, OrderStatus};
