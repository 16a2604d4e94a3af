//! Orders and the payment sessions they own: one entity per order ([`actor::Order`]) behind an
//! `OrderHandle`, with durable deadlines for the order and its sessions.

pub mod actor;
pub mod error;
pub mod handle;
pub mod messages;
pub mod state;
pub mod view;

pub use error::OrderError;
pub use handle::{OrderHandle, Viewer};
pub use mall_db::domain::{CancelReason, OrderStatus};
pub use messages::{OrderAnswer, OrderCmd};
pub use view::{LineView, OrderView, PaymentView};
