//! The registry of one entity kind: activates an actor on the first message for its key,
//! hands out nothing but answers, passivates idle actors, evicts the least recently used past
//! the cap, and notices dead actors (a handler that panicked) and reactivates them.
//!
//! Callers never hold an address: [`Registry::call`] looks it up, sends with a timeout, and
//! retries once, transparently, when it finds the actor dead.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Arbiter, ArbiterHandle, Context, Handler, MailboxError, Message};

use super::config::RuntimeConfig;
use super::deadline::Deadline;
use super::error::RuntimeError;
use super::metrics::{KindMetrics, RuntimeMetrics};
use super::residents::Residents;

/// An actor the registry can host: one per key, built from its key and shared dependencies.
/// It must load its state from the database before handling its first message ([`Host`]
/// does so at the start of its first turn).
///
/// [`Host`]: super::Host
pub trait Entity: Actor<Context = Context<Self>> {
    /// Identifies one entity (a user id for carts, an order id for orders).
    type Key: Clone + Eq + Hash + std::fmt::Debug + Send + Sync + 'static;
    /// What every actor of the kind needs (database, clock, settings).
    type Deps: Clone + Send + 'static;
    /// The kind's name in metrics and logs.
    const KIND: &'static str;
    /// Builds the actor for `key` (no I/O here: it runs on the hosting arbiter as it starts).
    fn activate(key: Self::Key, deps: Self::Deps, metrics: KindMetrics) -> Self;
}

/// A message on its way to an entity, stamped with when it was sent (for the mailbox-time
/// metric) and when its caller stops waiting.
#[derive(Debug, Clone)]
pub struct Call<C> {
    /// The command or query.
    pub cmd: C,
    /// When the caller sent it.
    pub sent_at: Instant,
    /// When the caller gives up (`None`: an actor's message to itself, always wanted).
    pub answer_by: Option<Deadline>,
    /// The span of the actor turn, a child of the caller's: the turn runs inside it.
    pub span: tracing::Span,
}

impl<C> Call<C> {
    /// A message an actor sends itself (a timer firing).
    pub fn internal(cmd: C) -> Self {
        Call {
            cmd,
            sent_at: Instant::now(),
            answer_by: None,
            // A trace of its own: the request that armed the timer ended long ago.
            span: tracing::info_span!(parent: None, "actor.timer"),
        }
    }

    /// True when the caller has already given up: the actor should not act on it, so a
    /// request that timed out (and was answered 503) does not take effect behind its back.
    pub fn is_stale(&self) -> bool {
        self.answer_by.is_some_and(|t| t.passed())
    }
}

impl<C: Message> Message for Call<C>
where
    C::Result: 'static,
{
    type Result = C::Result;
}

/// The registry of entities of kind `E`.
pub struct Registry<E: Entity> {
    residents: Mutex<Residents<E::Key, Addr<E>>>,
    arbiters: Vec<ArbiterHandle>,
    deps: E::Deps,
    config: RuntimeConfig,
    metrics: KindMetrics,
}

/// A stable, seed-free hash (FNV-1a) to spread keys over arbiters the same way in every process.
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl<E: Entity> Registry<E> {
    /// A registry hosting its actors on `config.arbiters` new threads. Must be called inside an
    /// actix `System`.
    pub fn new(deps: E::Deps, config: RuntimeConfig, metrics: &RuntimeMetrics) -> Arc<Self> {
        let arbiters = (0..config.arbiters.max(1))
            .map(|_| {
                let arbiter = Arbiter::new();
                let handle = arbiter.handle();
                // The thread lives as long as the System; dropping `Arbiter` does not stop it.
                drop(arbiter);
                handle
            })
            .collect();
        Arc::new(Registry {
            residents: Mutex::new(Residents::new(config.max_resident)),
            arbiters,
            deps,
            metrics: metrics.kind(E::KIND),
            config,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Residents<E::Key, Addr<E>>> {
        // Bookkeeping stays consistent even if a holder panicked: keep using it.
        self.residents.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn arbiter_for(&self, key: &E::Key) -> &ArbiterHandle {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        key.hash(&mut h);
        &self.arbiters[(h.finish() % self.arbiters.len() as u64) as usize]
    }

    /// The live address for `key`, activating the actor when there is none or it died.
    fn address(&self, key: &E::Key) -> Addr<E> {
        let now = Instant::now();
        let mut residents = self.lock();
        if let Some(addr) = residents.touch(key, now) {
            if addr.connected() {
                return addr.clone();
            }
            residents.remove(key);
            self.metrics.deaths.inc();
            tracing::warn!(kind = E::KIND, key = ?key, "actor found dead; reactivating");
        }
        let (k, deps, metrics, capacity) = (
            key.clone(),
            self.deps.clone(),
            self.metrics.clone(),
            self.config.mailbox_capacity,
        );
        let addr = E::start_in_arbiter(self.arbiter_for(key), move |ctx| {
            ctx.set_mailbox_capacity(capacity);
            E::activate(k, deps, metrics)
        });
        self.metrics.activations.inc();
        let evicted = residents.insert(key.clone(), addr.clone(), now);
        // Dropping the registry's address lets an evicted actor stop once its callers are done.
        self.metrics.evictions.inc_by(evicted.len() as u64);
        self.metrics.live.set(residents.len() as i64);
        addr
    }

    /// Sends `cmd` to the entity `key` and waits for the answer (at most `call_timeout`).
    /// A dead actor is replaced and the call retried once.
    pub async fn call<C>(&self, key: &E::Key, cmd: C) -> Result<C::Result, RuntimeError>
    where
        C: Message + Clone + Send + 'static,
        C::Result: Send + 'static,
        E: Handler<Call<C>>,
        E::Context: ToEnvelope<E, Call<C>>,
    {
        self.call_by(key, cmd, Deadline::after(self.config.call_timeout))
            .await
    }

    /// [`Registry::call`] answered by `answer_by`, a deadline the caller carries from further
    /// up (an HTTP request's): the actor sees it in [`Call::answer_by`] and hands it on to
    /// whatever it waits for, so no hop starts a fresh timeout of its own.
    pub async fn call_by<C>(
        &self,
        key: &E::Key,
        cmd: C,
        answer_by: Deadline,
    ) -> Result<C::Result, RuntimeError>
    where
        C: Message + Clone + Send + 'static,
        C::Result: Send + 'static,
        E: Handler<Call<C>>,
        E::Context: ToEnvelope<E, Call<C>>,
    {
        for _attempt in 0..2 {
            let addr = self.address(key);
            let sent_at = Instant::now();
            let call = Call {
                cmd: cmd.clone(),
                sent_at,
                answer_by: Some(answer_by),
                span: tracing::info_span!(
                    "actor.turn",
                    kind = E::KIND,
                    key = ?key,
                    mailbox_wait_ms = tracing::field::Empty,
                ),
            };
            self.metrics.mailbox_depth.inc();
            let wait = answer_by.remaining();
            let answer = addr.send(call).timeout(wait).await;
            self.metrics.mailbox_depth.dec();
            match answer {
                Ok(answer) => return Ok(answer),
                Err(MailboxError::Timeout) => {
                    self.metrics.mailbox_timeouts.inc();
                    return Err(RuntimeError::Timeout { kind: E::KIND });
                }
                Err(MailboxError::Closed) => {
                    // The actor stopped (it panicked, or was passivated as we sent): forget
                    // that address, unless someone already replaced it, and try once more.
                    let mut residents = self.lock();
                    if residents.remove_if(key, |a| *a == addr).is_some() {
                        self.metrics.deaths.inc();
                        self.metrics.live.set(residents.len() as i64);
                    }
                }
            }
        }
        Err(RuntimeError::Unavailable { kind: E::KIND })
    }

    /// Passivates every actor idle for longer than `idle_timeout`; returns how many.
    pub fn passivate_idle(&self) -> usize {
        self.passivate_idle_for(self.config.idle_timeout)
    }

    /// Passivates every actor idle for longer than `idle` (tests use a zero duration).
    pub fn passivate_idle_for(&self, idle: Duration) -> usize {
        let mut residents = self.lock();
        let gone = residents.expire_idle(Instant::now(), idle);
        self.metrics.passivations.inc_by(gone.len() as u64);
        self.metrics.live.set(residents.len() as i64);
        gone.len()
    }

    /// What every actor of the kind is built with.
    pub fn deps(&self) -> &E::Deps {
        &self.deps
    }

    /// How many actors are resident.
    pub fn resident(&self) -> usize {
        self.lock().len()
    }

    /// True when `key` has a resident actor.
    pub fn is_resident(&self, key: &E::Key) -> bool {
        self.lock().peek(key).is_some()
    }

    /// Checks for idle actors every so often (a fraction of the idle timeout) until the process ends.
    pub fn spawn_passivator(self: &Arc<Self>) {
        let registry = Arc::clone(self);
        let every = (self.config.idle_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(30));
        actix::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let n = registry.passivate_idle();
                if n > 0 {
                    tracing::debug!(kind = E::KIND, passivated = n, "idle actors passivated");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the messages it handled; panics on request.
    struct Counter {
        seen: u64,
    }

    impl Actor for Counter {
        type Context = Context<Self>;
    }

    impl Entity for Counter {
        type Key = u32;
        type Deps = ();
        const KIND: &'static str = "counter";
        fn activate(_: u32, _: (), _: KindMetrics) -> Self {
            Counter { seen: 0 }
        }
    }

    #[derive(Clone)]
    enum Msg {
        Bump,
        Panic,
    }

    impl Message for Msg {
        type Result = u64;
    }

    impl Handler<Call<Msg>> for Counter {
        type Result = u64;
        fn handle(&mut self, call: Call<Msg>, _: &mut Context<Self>) -> u64 {
            if let Msg::Panic = call.cmd {
                panic!("requested");
            }
            self.seen += 1;
            self.seen
        }
    }

    fn registry(config: RuntimeConfig) -> (Arc<Registry<Counter>>, KindMetrics) {
        let metrics = RuntimeMetrics::new(&prometheus::Registry::new()).unwrap();
        let kind = metrics.kind("counter");
        (Registry::new((), config, &metrics), kind)
    }

    #[actix_rt::test]
    async fn one_actor_per_key_activated_once() {
        let (reg, m) = registry(RuntimeConfig::default());
        assert_eq!(reg.call(&1, Msg::Bump).await, Ok(1));
        assert_eq!(reg.call(&1, Msg::Bump).await, Ok(2));
        assert_eq!(reg.call(&2, Msg::Bump).await, Ok(1));
        assert_eq!(m.activations.get(), 2);
        assert_eq!(m.live.get(), 2);
        assert_eq!(reg.resident(), 2);
    }

    #[actix_rt::test]
    async fn passivated_and_evicted_actors_start_afresh() {
        let (reg, m) = registry(RuntimeConfig {
            max_resident: 2,
            ..RuntimeConfig::default()
        });
        reg.call(&1, Msg::Bump).await.unwrap();
        reg.call(&2, Msg::Bump).await.unwrap();
        reg.call(&1, Msg::Bump).await.unwrap(); // 2 is now the least recently used
        reg.call(&3, Msg::Bump).await.unwrap();
        assert_eq!(m.evictions.get(), 1);
        assert!(!reg.is_resident(&2) && reg.is_resident(&1) && reg.is_resident(&3));
        // An evicted actor comes back with fresh (here: in-memory only) state.
        assert_eq!(reg.call(&2, Msg::Bump).await, Ok(1));
        assert_eq!(reg.passivate_idle_for(Duration::ZERO), 2);
        assert_eq!(m.passivations.get(), 2);
        assert_eq!(reg.resident(), 0);
        assert_eq!(m.live.get(), 0);
    }

    #[actix_rt::test]
    async fn a_panicking_actor_is_replaced_and_the_caller_retried_once() {
        let (reg, m) = registry(RuntimeConfig::default());
        assert_eq!(reg.call(&1, Msg::Bump).await, Ok(1));
        // It panics on both attempts: the caller gets an error, not a hang.
        assert_eq!(
            reg.call(&1, Msg::Panic).await,
            Err(RuntimeError::Unavailable { kind: "counter" })
        );
        assert_eq!(m.deaths.get(), 2);
        // The next message reaches a new actor.
        assert_eq!(reg.call(&1, Msg::Bump).await, Ok(1));
        assert_eq!(m.activations.get(), 3);
    }
}
