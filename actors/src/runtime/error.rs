//! `RuntimeError`: why a call to an entity got no answer.

/// A call that did not reach a handler, or whose answer did not come back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// No answer within `actors.call_timeout_ms` (a full mailbox or a slow turn).
    #[error("the {kind} actor did not answer in time")]
    Timeout {
        /// The entity kind.
        kind: &'static str,
    },
    /// The actor died twice in a row (its handler keeps panicking).
    #[error("the {kind} actor is unavailable")]
    Unavailable {
        /// The entity kind.
        kind: &'static str,
    },
}
