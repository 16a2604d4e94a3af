//! mall-actors: the entity runtime (one host actor for every kind: activation, turns, timers,
//! passivation, eviction, dead-actor recovery, the deadline sweeper, metrics), the cart and order
//! kinds built on it (an order owns its payment sessions), checkout, the placement desk, and
//! `Services`, which wires them. It sits between the HTTP
//! layer and mall-db; actix types do not leak out of it: callers use handles such as `CartHandle`.

pub mod cart;
pub mod checkout;
pub mod cluster;
pub mod deps;
pub mod fresh;
pub mod order;
pub mod payment;
pub mod placement;
pub mod runtime;
pub mod services;

pub use mall_db as db;
