//! One turn of an actor: async work that no other message of the same actor can interleave with
//! (an `AtomicResponse`), timed for the runtime metrics.

use std::future::Future;
use std::time::Instant;

use actix::fut::{ActorFutureExt, WrapFuture};
use actix::{Actor, AtomicResponse};
use tracing::Instrument as _;

use super::metrics::KindMetrics;

/// Runs `work` as one turn of `actor`, then `apply` (with the actor and its context) turns its
/// output into the reply. The mailbox time (since `sent_at`) and the turn's time are recorded;
/// `work` runs inside `span` (the call's), which notes the mailbox wait.
pub fn atomic<A, X, T, F, G>(
    actor: &A,
    sent_at: Instant,
    span: tracing::Span,
    metrics: &KindMetrics,
    work: F,
    apply: G,
) -> AtomicResponse<A, T>
where
    A: Actor,
    F: Future<Output = X> + 'static,
    G: FnOnce(X, &mut A, &mut A::Context) -> T + 'static,
    X: 'static,
    T: 'static,
{
    let started = Instant::now();
    let waited = started.saturating_duration_since(sent_at).as_secs_f64();
    metrics.mailbox_seconds.observe(waited);
    span.record("mailbox_wait_ms", waited * 1000.0);
    let handler_seconds = metrics.handler_seconds.clone();
    AtomicResponse::new(Box::pin(work.instrument(span).into_actor(actor).map(
        move |out, act, ctx| {
            let reply = apply(out, act, ctx);
            handler_seconds.observe(started.elapsed().as_secs_f64());
            reply
        },
    )))
}

/// Answers at once without a turn (a stale message the actor will not act on).
pub fn refuse<A: Actor, T: 'static>(reply: T) -> AtomicResponse<A, T> {
    AtomicResponse::new(Box::pin(actix::fut::ready(reply)))
}
