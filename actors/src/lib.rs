//! mall-actors: the entity-actor runtime (registry, activation, passivation, timers) and the
//! cart, order and payment actors. It sits between the HTTP layer and mall-db; the runtime and
//! its first actors arrive with the runtime issue, so for now it only re-exports the layer below.

pub use mall_db as db;
