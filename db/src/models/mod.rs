//! Rows as Rust structs, one module per table group.

pub mod order;
pub mod product;
pub mod role;
pub mod session;
pub mod user;

pub use order::{OrderItemRow, OrderRow, PaymentRow};
pub use product::{NewProduct, ProductRow};
pub use role::{PermissionRow, RoleWithPermissions};
pub use session::{RefreshTokenRow, SessionRow};
pub use user::{NewUser, UserRow};
