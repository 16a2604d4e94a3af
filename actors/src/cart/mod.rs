//! Carts: one per user, hosted by the runtime ([`actor::Cart`]) behind a `CartHandle`.

pub mod actor;
pub mod error;
pub mod handle;
pub mod messages;
pub mod prices;
pub mod state;

pub use error::CartError;
pub use handle::{CartHandle, CartLineView, CartView};
pub use messages::{CartAnswer, CartCmd};
pub use state::{CartOp, CartState};
