//! Settings of the entity runtime (`[actors]` in config.toml).

use std::time::Duration;

/// How actors are hosted and how long callers wait.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Messages an actor's mailbox holds before senders wait.
    pub mailbox_capacity: usize,
    /// How long a caller waits for an answer (mailbox wait included).
    pub call_timeout: Duration,
    /// An actor that received nothing for this long is passivated.
    pub idle_timeout: Duration,
    /// Most resident actors per kind; past it the least recently used is evicted.
    pub max_resident: usize,
    /// Threads (actix arbiters) hosting the actors of a kind.
    pub arbiters: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            mailbox_capacity: 64,
            call_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(300),
            max_resident: 100_000,
            arbiters: 2,
        }
    }
}
