//! Carts: one `CartActor` per user behind a `CartHandle`.

pub mod actor;
pub mod error;
pub mod handle;
pub mod messages;
pub mod state;

pub use error::CartError;
pub use handle::{CartHandle, CartLineView, CartView};
pub use state::{CartOp, CartState};
