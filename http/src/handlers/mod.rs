//! Route handlers: thin adapters from HTTP to the services, one module per area.

pub mod admin;
pub mod identity;
pub mod ops;
