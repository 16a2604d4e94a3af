//! The entity-actor runtime, generic over entity kinds: a registry per kind (activation,
//! passivation, LRU eviction, dead-actor recovery), its bookkeeping, settings, errors and metrics.

pub mod config;
pub mod error;
pub mod metrics;
pub mod registry;
pub mod residents;
pub mod timer;
pub mod turn;

pub use config::RuntimeConfig;
pub use error::RuntimeError;
pub use metrics::{KindMetrics, RuntimeMetrics};
pub use registry::{Call, Entity, Registry};
