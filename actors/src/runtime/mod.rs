//! The entity-actor runtime, generic over entity kinds: what a kind declares and the one host
//! actor for all of them, a registry per kind (activation, passivation, LRU eviction, dead-actor
//! recovery), the deadline sweeper over every kind, their bookkeeping, settings, errors and
//! metrics.

pub mod config;
pub mod deadline;
pub mod error;
pub mod kind;
pub mod metrics;
pub mod registry;
pub mod residents;
pub mod sweeper;
pub mod timer;
pub mod turn;

pub use config::RuntimeConfig;
pub use deadline::Deadline;
pub use error::RuntimeError;
pub use kind::{Host, Kind};
pub use metrics::{KindMetrics, RuntimeMetrics};
pub use registry::{Call, Entity, Registry};
pub use sweeper::{Sweep, spawn_sweeper, sweep};
