//! mall-actors: the entity-actor runtime (registry, activation, passivation, eviction, dead-actor
//! recovery, metrics) and the actors built on it — for now the cart. It sits between the HTTP
//! layer and mall-db; actix types do not leak out of it: callers use handles such as `CartHandle`.

pub mod cart;
pub mod checkout;
pub mod cluster;
pub mod deadlines;
pub mod deps;
pub mod order;
pub mod payment;
pub mod placement;
pub mod runtime;

pub use mall_db as db;
