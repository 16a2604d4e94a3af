//! Identity and access: tokens, passwords, the RBAC policy, and who the caller is.

pub mod authn;
pub mod cache;
pub mod identity;
pub mod jwt;
pub mod policy;
pub mod store;

pub use authn::{AuthUser, Authenticator};
pub use store::PolicyStore;
