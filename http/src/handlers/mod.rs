//! Route handlers: thin adapters from HTTP to the services, one module per area.

pub mod admin;
pub mod cart;
pub mod catalog;
pub mod checkout;
pub mod cluster;
pub mod identity;
pub mod ops;
pub mod orders;
pub mod payments;
