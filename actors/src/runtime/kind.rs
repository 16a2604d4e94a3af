//! What an entity kind declares, and the one actor shell that hosts every kind.
//!
//! A kind says what its state is, how it loads, when its deadline is, which command its timer
//! sends, which keys are due, and what one turn does. [`Host`] does the rest, once for all
//! kinds: activation (state loaded on the first turn, then cached), the stale-call check, the
//! atomic turn (no two messages of one entity interleave), dropping the cache after a failed
//! turn, keeping exactly one timer armed for the state's deadline, and passivation (through the
//! [`Registry`](super::Registry)). The turn writes through with its version check before it
//! replies, so a host may be stopped at any point and nothing acknowledged is lost.

use super::deadline::Deadline;
use std::future::Future;
use std::hash::Hash;

use actix::{Actor, AsyncContext, AtomicResponse, Context, Handler, Message, SpawnHandle};
use time::PrimitiveDateTime;

use mall_db::DbError;

use super::error::RuntimeError;
use super::metrics::KindMetrics;
use super::registry::{Call, Entity};
use super::turn;

/// One kind of entity: its state and its rules for loading, deadlines and turns.
pub trait Kind: Sized + Unpin + 'static {
    /// Identifies one entity.
    type Key: Clone + Eq + Hash + std::fmt::Debug + Send + Sync + Unpin + 'static;
    /// What every entity of the kind needs (database, settings).
    type Deps: Clone + Send + Sync + Unpin + 'static;
    /// The entity as its host caches it between turns.
    type State: Unpin + 'static;
    /// What it is asked.
    type Cmd: Message<Result = Self::Reply> + Clone + Send + 'static;
    /// What it answers.
    type Reply: Send + 'static;
    /// The kind's name in metrics and logs.
    const KIND: &'static str;

    /// Loads the entity (on its first turn, and after a turn that dropped the cache). An `Err`
    /// is the reply to give instead of a turn (say, "not found").
    fn load(
        deps: Self::Deps,
        key: Self::Key,
    ) -> impl Future<Output = Result<Self::State, Self::Reply>> + 'static;

    /// One turn: the state to cache afterwards (`None`: load again next time, because the
    /// turn failed in a way that may have left the cache stale) and the reply. `answer_by` is
    /// when the caller gives up (`None` for the host's own timer).
    fn turn(
        deps: Self::Deps,
        key: Self::Key,
        state: Self::State,
        cmd: Self::Cmd,
        answer_by: Option<Deadline>,
    ) -> impl Future<Output = (Option<Self::State>, Self::Reply)> + 'static;

    /// Runs in the handler before the turn: a test's fault injection (the cart's `Crash`)
    /// panics here, killing the host as a bug would.
    fn inject_fault(_cmd: &Self::Cmd) {}

    /// The reply to a call the host will not act on (its caller already gave up).
    fn refused(why: RuntimeError) -> Self::Reply;

    /// When the entity next needs a turn of its own (`None`: never, as things stand).
    fn deadline(_state: &Self::State) -> Option<PrimitiveDateTime> {
        None
    }

    /// A number that moves whenever cached states of this kind may have gone stale for a
    /// reason outside the entity (in a cluster: a shard changed hands). The host drops its
    /// cached state when it moved since the state was loaded.
    fn generation(_deps: &Self::Deps) -> u64 {
        0
    }

    /// The command the deadline timer (and the sweeper) sends.
    fn wake() -> Option<Self::Cmd> {
        None
    }

    /// Keys whose deadline is before `before`, soonest first, at most `limit`: the sweeper
    /// wakes them, so a deadline holds across passivation, crashes and restarts.
    fn due(
        _deps: Self::Deps,
        _before: PrimitiveDateTime,
        _limit: i64,
    ) -> impl Future<Output = Result<Vec<Self::Key>, DbError>> + Send + 'static {
        std::future::ready(Ok(Vec::new()))
    }
}

/// The actor hosting one entity of kind `K`.
pub struct Host<K: Kind> {
    key: K::Key,
    deps: K::Deps,
    // None until loaded, and again after a turn that may have left it stale.
    state: Option<K::State>,
    // The kind's generation when the cached state was kept.
    generation: u64,
    // The armed timer and the deadline it is armed for.
    timer: Option<(SpawnHandle, PrimitiveDateTime)>,
    metrics: KindMetrics,
}

impl<K: Kind> Actor for Host<K> {
    type Context = Context<Self>;
}

impl<K: Kind> Entity for Host<K> {
    type Key = K::Key;
    type Deps = K::Deps;
    const KIND: &'static str = K::KIND;

    fn activate(key: K::Key, deps: K::Deps, metrics: KindMetrics) -> Self {
        Host {
            key,
            deps,
            state: None,
            generation: 0,
            timer: None,
            metrics,
        }
    }
}

impl<K: Kind> Handler<Call<K::Cmd>> for Host<K> {
    type Result = AtomicResponse<Self, K::Reply>;

    fn handle(&mut self, call: Call<K::Cmd>, _ctx: &mut Context<Self>) -> Self::Result {
        K::inject_fault(&call.cmd);
        if call.is_stale() {
            return turn::refuse(K::refused(RuntimeError::Timeout { kind: K::KIND }));
        }
        // The state moves into the turn (no copy per message): turns are atomic, so nothing
        // else reads it until the turn puts back what it keeps.
        let generation = K::generation(&self.deps);
        let mut cached = self.state.take();
        if generation != self.generation {
            cached = None;
        }
        let (deps, key) = (self.deps.clone(), self.key.clone());
        let (cmd, answer_by) = (call.cmd, call.answer_by);
        let work = async move {
            let state = match cached {
                Some(state) => state,
                None => match K::load(deps.clone(), key.clone()).await {
                    Ok(state) => state,
                    Err(reply) => return (None, reply),
                },
            };
            K::turn(deps, key, state, cmd, answer_by).await
        };
        turn::atomic(
            self,
            call.sent_at,
            call.span,
            &self.metrics,
            work,
            move |(keep, reply), host: &mut Self, ctx| {
                host.state = keep;
                host.generation = generation;
                host.rearm(ctx);
                reply
            },
        )
    }
}

impl<K: Kind> Host<K> {
    /// Keeps exactly one timer armed, for the state's deadline, while it has one.
    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let deadline = self.state.as_ref().and_then(K::deadline);
        let armed = self.timer.map(|(_, at)| at);
        if deadline == armed {
            return;
        }
        if let Some((handle, _)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        let (Some(at), Some(wake)) = (deadline, K::wake()) else {
            return;
        };
        let fired = self.metrics.timers_fired.clone();
        let wait = super::timer::until(at, mall_db::clock::now());
        let handle = ctx.run_later(wait, move |host, ctx| {
            fired.inc();
            host.timer = None;
            ctx.notify(Call::internal(wake));
        });
        self.timer = Some((handle, at));
        self.metrics.timers_armed.inc();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::runtime::{Registry, RuntimeConfig, RuntimeMetrics};

    /// A toy kind with a deadline: a reminder that rings once, `delay` after it is loaded.
    struct Reminder;

    #[derive(Clone)]
    struct Loads {
        count: Arc<AtomicU32>,
        delay: Duration,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Bell {
        due: Option<PrimitiveDateTime>,
        rung: u32,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Cmd {
        Get,
        Ring,
        Fail,
    }

    impl Message for Cmd {
        type Result = Result<Bell, String>;
    }

    impl Kind for Reminder {
        type Key = u32;
        type Deps = Loads;
        type State = Bell;
        type Cmd = Cmd;
        type Reply = Result<Bell, String>;
        const KIND: &'static str = "reminder";

        async fn load(deps: Loads, _key: u32) -> Result<Bell, Self::Reply> {
            deps.count.fetch_add(1, Ordering::SeqCst);
            let due = mall_db::clock::after(mall_db::clock::now(), deps.delay);
            Ok(Bell {
                due: Some(due),
                rung: 0,
            })
        }

        async fn turn(
            _deps: Loads,
            _key: u32,
            mut bell: Bell,
            cmd: Cmd,
            _answer_by: Option<Deadline>,
        ) -> (Option<Bell>, Self::Reply) {
            match cmd {
                Cmd::Get => (Some(bell.clone()), Ok(bell)),
                Cmd::Ring => {
                    bell.due = None;
                    bell.rung += 1;
                    (Some(bell.clone()), Ok(bell))
                }
                Cmd::Fail => (None, Err("failed".into())),
            }
        }

        fn refused(why: RuntimeError) -> Self::Reply {
            Err(why.to_string())
        }

        fn deadline(bell: &Bell) -> Option<PrimitiveDateTime> {
            bell.due
        }

        fn wake() -> Option<Cmd> {
            Some(Cmd::Ring)
        }
    }

    fn registry(delay: Duration) -> (Arc<Registry<Host<Reminder>>>, KindMetrics, Arc<AtomicU32>) {
        let metrics = RuntimeMetrics::new(&prometheus::Registry::new()).unwrap();
        let count = Arc::new(AtomicU32::new(0));
        let deps = Loads {
            count: Arc::clone(&count),
            delay,
        };
        let registry = Registry::new(deps, RuntimeConfig::default(), &metrics);
        (registry, metrics.kind("reminder"), count)
    }

    #[actix_rt::test]
    async fn the_host_arms_one_timer_for_the_deadline_and_the_kind_hears_it() {
        let (reg, m, _) = registry(Duration::from_millis(30));
        let bell = reg.call(&1, Cmd::Get).await.unwrap().unwrap();
        assert_eq!(bell.rung, 0);
        assert_eq!(m.timers_armed.get(), 1);
        // A second turn with the same deadline does not arm another timer.
        reg.call(&1, Cmd::Get).await.unwrap().unwrap();
        assert_eq!(m.timers_armed.get(), 1);
        // The timer fires on the deadline (bounded wait, polled).
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while m.timers_fired.get() == 0 && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(m.timers_fired.get(), 1);
        let bell = reg.call(&1, Cmd::Get).await.unwrap().unwrap();
        assert_eq!((bell.rung, bell.due), (1, None));
        assert_eq!(
            m.timers_armed.get(),
            1,
            "no deadline left: nothing re-armed"
        );
    }

    #[actix_rt::test]
    async fn the_state_is_cached_between_turns_and_reloaded_after_a_failed_one() {
        let (reg, _, loads) = registry(Duration::from_secs(600));
        reg.call(&1, Cmd::Get).await.unwrap().unwrap();
        reg.call(&1, Cmd::Get).await.unwrap().unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(reg.call(&1, Cmd::Fail).await.unwrap(), Err("failed".into()));
        reg.call(&1, Cmd::Get).await.unwrap().unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[actix_rt::test]
    async fn a_call_whose_caller_gave_up_is_refused_without_a_turn() {
        let (reg, _, loads) = registry(Duration::from_secs(600));
        let gone = Deadline::after(Duration::ZERO);
        let answer = reg.call_by(&1, Cmd::Get, gone).await;
        // Either the registry's own wait or the host's stale check refuses it; no load happens.
        assert!(!matches!(answer, Ok(Ok(_))), "{answer:?}");
        assert_eq!(loads.load(Ordering::SeqCst), 0);
    }
}
