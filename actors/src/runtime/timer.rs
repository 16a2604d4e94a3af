//! An actor's deadline timer: at most one armed, for the entity's deadline (a column), that
//! sends the actor a wake-up message when it goes off.

use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Message, SpawnHandle};
use time::PrimitiveDateTime;

use super::metrics::KindMetrics;
use super::registry::Call;

/// How long until `at` (zero when it has passed).
pub fn until(at: PrimitiveDateTime, now: PrimitiveDateTime) -> Duration {
    Duration::try_from(at - now).unwrap_or(Duration::ZERO)
}

/// The timer slot of an actor.
#[derive(Debug, Default)]
pub struct DeadlineTimer {
    handle: Option<SpawnHandle>,
}

impl DeadlineTimer {
    /// Makes the timer match `deadline`: armed once while there is one (firing `wake` into the
    /// actor's own mailbox), cancelled when there is none. `slot` finds this timer in the actor.
    pub fn keep<A, M>(
        &mut self,
        ctx: &mut Context<A>,
        deadline: Option<PrimitiveDateTime>,
        metrics: &KindMetrics,
        slot: fn(&mut A) -> &mut DeadlineTimer,
        wake: M,
    ) where
        A: Actor<Context = Context<A>> + Handler<Call<M>>,
        M: Message + Send + 'static,
        M::Result: Send + 'static,
    {
        match (deadline, self.handle) {
            (Some(at), None) => {
                let fired = metrics.timers_fired.clone();
                let handle = ctx.run_later(until(at, mall_db::clock::now()), move |act, ctx| {
                    fired.inc();
                    slot(act).handle = None;
                    ctx.notify(Call::internal(wake));
                });
                self.handle = Some(handle);
                metrics.timers_armed.inc();
            }
            (None, Some(handle)) => {
                ctx.cancel_future(handle);
                self.handle = None;
            }
            _ => {}
        }
    }
}
