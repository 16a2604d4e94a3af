//! The open loop (`mall-load --rate N`): arrivals start on a fixed schedule whether or not the
//! earlier ones have finished, and each one's latency runs from the moment the schedule said it
//! starts. A closed loop (a client sends its next request when the last one is answered) slows
//! down with the server, so a stall delays the requests that would have queued behind it
//! instead of measuring them ("coordinated omission"); a schedule does not wait.
//!
//! An arrival is one step of its scenario, done by a customer lent from the scenario's pool
//! (see [`super::scenarios::Client::step`]). Each customer does one arrival at a time (two at
//! once would mix their cart lines), so the pool's size, `--concurrency` split between the
//! scenarios as for clients, is the cap on a scenario's arrivals in flight: an arrival that
//! finds every customer busy is counted as missed, never queued behind the others.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

// Tokio's clock, not std's: the same instants, and tests can pause it.
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::bounded;
use super::report::Recorder;
use super::scenarios::{Client, ClientPlan, Scenario, ScenarioOutput, Shared};

/// Arrivals at a fixed rate for a fixed length: arrival `k` is due `k / rate` seconds after the
/// start, for every `k` whose time falls before the end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    rate: f64,
    count: u64,
}

impl Schedule {
    /// `rate` arrivals per second (finite and positive, as `--rate` is parsed) for `length`.
    pub fn new(rate: f64, length: Duration) -> Schedule {
        let mut s = Schedule { rate, count: 0 };
        // Start from the product, then settle on the exact count by the same offsets the
        // dispatcher uses (the product may be off by one either way in floating point).
        let mut count = (rate * length.as_secs_f64()).ceil() as u64;
        while count > 0 && s.offset(count - 1) >= length {
            count -= 1;
        }
        while s.offset(count) < length {
            count += 1;
        }
        s.count = count;
        s
    }

    /// Arrivals per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// How many arrivals there are.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// When arrival `k` is due, after the start.
    pub fn offset(&self, k: u64) -> Duration {
        Duration::from_secs_f64(k as f64 / self.rate)
    }

    /// The arrivals from `next` on that are due `elapsed` after the start: all of them at
    /// once when the dispatcher woke late (the timer is coarser than a high rate's interval, or
    /// the machine was busy), each still measured from its own due time.
    pub fn due(&self, next: u64, elapsed: Duration) -> Range<u64> {
        let guess = (elapsed.as_secs_f64() * self.rate).floor() as u64;
        let mut end = guess.saturating_add(1).max(next);
        while end > next && self.offset(end - 1) > elapsed {
            end -= 1;
        }
        while end < self.count && self.offset(end) <= elapsed {
            end += 1;
        }
        next..end.min(self.count)
    }
}

/// An arrival's figures: its latency from the scheduled start to `ended`, and how late it
/// started (`began` after the scheduled start; zero if it began early).
pub fn measured(scheduled: Instant, began: Instant, ended: Instant) -> (Duration, Duration) {
    (
        ended.saturating_duration_since(scheduled),
        began.saturating_duration_since(scheduled),
    )
}

/// The customers of one scenario not busy with an arrival, lent out oldest-returned first so
/// the load spreads over all of them.
#[derive(Debug)]
pub struct Pool<T> {
    free: Mutex<VecDeque<T>>,
}

impl<T> Pool<T> {
    /// A pool of `items`, all free.
    pub fn new(items: Vec<T>) -> Pool<T> {
        Pool {
            free: Mutex::new(items.into()),
        }
    }

    /// A free item, or `None` when every one is lent out (the arrival is missed).
    pub fn take(&self) -> Option<T> {
        // A panic while the lock is held cannot leave the queue half-changed: take the data.
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    /// Gives an item back.
    pub fn put(&self, item: T) {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(item);
    }

    /// Every free item, taking them out.
    pub fn drain(&self) -> Vec<T> {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect()
    }
}

/// What the open loop adds to a scenario's output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenRun {
    /// The schedule it followed.
    pub schedule: Schedule,
    /// Arrivals that found every customer busy.
    pub missed: u64,
    /// Its customers: the most arrivals in flight at once.
    pub cap: usize,
    /// The schedule's length.
    pub length: Duration,
}

/// Runs every scenario of `clients` at `rate` arrivals per second each, for `length`, all
/// scenarios at once from one start, and merges what they measured per scenario (in the order
/// of `Scenario::ALL`). Waits for the arrivals in flight at the end (each within the requests'
/// timeout).
pub async fn run(
    shared: Arc<Shared>,
    clients: Vec<ClientPlan>,
    rate: f64,
    length: Duration,
) -> Vec<ScenarioOutput> {
    // The deadline is the closed loop's; a step never looks at it.
    let far = std::time::Instant::now() + length;
    let clients: Vec<Client> = clients
        .into_iter()
        .map(|plan| Client::new(shared.clone(), plan, far))
        .collect();
    // Each customer starts from an empty cart, before the clock starts.
    let clients = bounded(clients, 16, |mut c| async move {
        c.prepare().await;
        c
    })
    .await;
    let mut by_scenario: Vec<(Scenario, Vec<Client>)> = Vec::new();
    for c in clients {
        match by_scenario.iter_mut().find(|(s, _)| *s == c.scenario()) {
            Some((_, v)) => v.push(c),
            None => by_scenario.push((c.scenario(), vec![c])),
        }
    }
    let schedule = Schedule::new(rate, length);
    let start = Instant::now();
    let mut drivers = JoinSet::new();
    for (scenario, clients) in by_scenario {
        drivers.spawn(drive(scenario, clients, schedule, start, length));
    }
    let mut outputs = Vec::new();
    while let Some(joined) = drivers.join_next().await {
        match joined {
            Ok(out) => outputs.push(out),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    outputs.sort_by_key(|o| Scenario::ALL.iter().position(|s| *s == o.scenario));
    outputs
}

/// Follows `schedule` from `start` for one scenario with its customers.
async fn drive(
    scenario: Scenario,
    clients: Vec<Client>,
    schedule: Schedule,
    start: Instant,
    length: Duration,
) -> ScenarioOutput {
    let cap = clients.len();
    let driven = follow(
        clients,
        schedule,
        start,
        |mut client, scheduled| async move {
            let began = Instant::now();
            let op = client.step().await;
            let (latency, lag) = measured(scheduled, began, Instant::now());
            client.recorder().record_arrival(op, latency, lag);
            client
        },
    )
    .await;
    let mut rec = Recorder::default();
    let mut acks = Vec::new();
    for client in driven.items {
        let (r, a) = client.into_parts();
        rec.merge(r);
        acks.extend(a);
    }
    ScenarioOutput {
        scenario,
        clients: cap,
        elapsed: driven.elapsed,
        rec,
        acks,
        open: Some(OpenRun {
            schedule,
            missed: driven.missed,
            cap,
            length,
        }),
    }
}

/// What following a schedule brought back.
#[derive(Debug)]
struct Followed<T> {
    /// The pool's items, all returned.
    items: Vec<T>,
    /// Arrivals that found no free item.
    missed: u64,
    /// From the start until the last arrival ended.
    elapsed: Duration,
}

/// Starts each arrival of `schedule` at its time, from `start`, as a task running `step` with a
/// free item of the pool `items` and the arrival's scheduled instant; the step hands the item
/// back when done. An arrival with no free item is missed. Returns when every arrival started
/// has ended.
async fn follow<T, F, Fut>(
    items: Vec<T>,
    schedule: Schedule,
    start: Instant,
    step: F,
) -> Followed<T>
where
    T: Send + 'static,
    F: Fn(T, Instant) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let pool = Arc::new(Pool::new(items));
    let mut in_flight = JoinSet::new();
    let mut next = 0;
    let mut missed = 0;
    while next < schedule.count() {
        tokio::time::sleep_until(start + schedule.offset(next)).await;
        let due = schedule.due(next, start.elapsed());
        next = due.end;
        for k in due {
            let scheduled = start + schedule.offset(k);
            let Some(item) = pool.take() else {
                missed += 1;
                continue;
            };
            let run = step(item, scheduled);
            let pool = pool.clone();
            in_flight.spawn(async move { pool.put(run.await) });
        }
        // Reap the finished ones so the set does not grow with the run.
        while let Some(joined) = in_flight.try_join_next() {
            if let Err(e) = joined {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
    while let Some(joined) = in_flight.join_next().await {
        if let Err(e) = joined {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    Followed {
        items: pool.drain(),
        missed,
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    #[test]
    fn arrivals_are_evenly_spaced_and_stop_before_the_end() {
        let s = Schedule::new(100.0, Duration::from_secs(1));
        assert_eq!(s.count(), 100);
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(1), ms(10));
        assert_eq!(s.offset(99), ms(990));
        // A rate that does not divide the length: 3/s for 1.5 s is due at 0, 1/3, 2/3, 1, 4/3.
        let s = Schedule::new(3.0, ms(1500));
        assert_eq!(s.count(), 5);
        assert!(s.offset(4) < ms(1500));
        // Fractional rates and lengths shorter than one interval.
        assert_eq!(Schedule::new(0.5, Duration::from_secs(10)).count(), 5);
        assert_eq!(Schedule::new(2.0, ms(100)).count(), 1);
        // Many arrivals: the count is the product, whatever floating point makes of it.
        assert_eq!(
            Schedule::new(7000.0, Duration::from_secs(20)).count(),
            140_000
        );
        assert_eq!(Schedule::new(0.1, Duration::from_secs(30)).count(), 3);
    }

    #[test]
    fn a_late_wake_up_releases_every_arrival_due_so_far() {
        let s = Schedule::new(100.0, Duration::from_secs(1));
        // Woken on time for arrival 0: only it.
        assert_eq!(s.due(0, Duration::ZERO), 0..1);
        // Woken 35 ms in with nothing sent yet: 0, 10, 20 and 30 ms are due, not 40.
        assert_eq!(s.due(0, ms(35)), 0..4);
        // Exactly on an arrival's time: it is due.
        assert_eq!(s.due(4, ms(40)), 4..5);
        // Before the next one's time: nothing (the dispatcher sleeps on).
        assert_eq!(s.due(5, ms(45)), 5..5);
        // Long after the end: what is left, never past the schedule.
        assert_eq!(s.due(97, Duration::from_secs(5)), 97..100);
        assert_eq!(s.due(100, Duration::from_secs(5)), 100..100);
    }

    /// A step that takes `service(k)` for the `k`-th arrival it serves, and notes each
    /// arrival's latency and lag in the item it was lent.
    #[derive(Debug, Default)]
    struct Noted {
        latencies: Vec<Duration>,
        lags: Vec<Duration>,
    }

    async fn follow_with(
        items: usize,
        schedule: Schedule,
        service: fn(Instant, Instant) -> Duration,
    ) -> Followed<Noted> {
        let start = Instant::now();
        follow(
            (0..items).map(|_| Noted::default()).collect(),
            schedule,
            start,
            move |mut noted, scheduled| async move {
                let began = Instant::now();
                tokio::time::sleep(service(start, scheduled)).await;
                let (latency, lag) = measured(scheduled, began, Instant::now());
                noted.latencies.push(latency);
                noted.lags.push(lag);
                noted
            },
        )
        .await
    }

    fn all(f: &Followed<Noted>) -> (Vec<Duration>, Vec<Duration>) {
        let mut lat: Vec<Duration> = f.items.iter().flat_map(|n| n.latencies.clone()).collect();
        let mut lag: Vec<Duration> = f.items.iter().flat_map(|n| n.lags.clone()).collect();
        lat.sort();
        lag.sort();
        (lat, lag)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_is_measured_for_every_arrival_it_delays() {
        // 100/s for 1 s, plenty of customers. The server stalls for 300 ms from 200 ms on:
        // whatever arrives then is answered at 500 ms. A closed loop would have sent one
        // request into the stall and measured it; here the 30 arrivals due during it all
        // start on time and each waits out the rest of the stall.
        let f = follow_with(
            100,
            Schedule::new(100.0, Duration::from_secs(1)),
            |start, at| {
                let t = at - start;
                if t >= ms(200) && t < ms(500) {
                    ms(500) - t + ms(1)
                } else {
                    ms(1)
                }
            },
        )
        .await;
        let (lat, lag) = all(&f);
        assert_eq!((lat.len(), f.missed), (100, 0));
        assert!(
            lag.iter().all(|l| l.is_zero()),
            "every arrival started on time"
        );
        assert_eq!(lat.iter().filter(|l| **l > ms(1)).count(), 30);
        assert_eq!(lat[99], ms(301));
        assert_eq!(lat[50], ms(1));
        // The p99 sees the stall: the 99th of 100 is still 291 ms.
        assert_eq!(lat[98], ms(291));
    }

    #[tokio::test(start_paused = true)]
    async fn arrivals_past_the_cap_are_missed_not_queued() {
        // 100/s for 1 s, 5 customers, 95 ms per arrival: 5 start in each 100 ms, the next 5
        // find everyone busy and are missed; those that start are on time.
        let f = follow_with(5, Schedule::new(100.0, Duration::from_secs(1)), |_, _| {
            ms(95)
        })
        .await;
        let (lat, lag) = all(&f);
        assert_eq!((lat.len(), f.missed), (50, 50));
        assert!(lat.iter().all(|l| *l == ms(95)));
        assert!(lag.iter().all(|l| l.is_zero()));
        assert_eq!(f.items.len(), 5, "every customer came back");
        // The last to start (at 940 ms) ends at 1035 ms.
        assert_eq!(f.elapsed, ms(1035));
    }

    #[test]
    fn latency_runs_from_the_scheduled_start_not_from_the_send() {
        let t0 = Instant::now();
        let scheduled = t0 + ms(30);
        // Started 15 ms late (a busy dispatcher, or all its threads taken), answered 5 ms
        // after it went out: 20 ms of latency, 15 of them spent waiting to start.
        let (latency, lag) = measured(scheduled, t0 + ms(45), t0 + ms(50));
        assert_eq!(latency, ms(20));
        assert_eq!(lag, ms(15));
        // On time: the latency is the service time.
        assert_eq!(
            measured(scheduled, scheduled, t0 + ms(32)),
            (ms(2), Duration::ZERO)
        );
    }

    #[test]
    fn the_pool_lends_each_item_once_and_runs_dry() {
        let pool = Pool::new(vec![1, 2]);
        let a = pool.take();
        let b = pool.take();
        assert_eq!((a, b), (Some(1), Some(2)));
        // Both in flight: the next arrival finds nothing, and is missed.
        assert_eq!(pool.take(), None);
        pool.put(2);
        pool.put(1);
        // Oldest returned first.
        assert_eq!(pool.take(), Some(2));
        assert_eq!(pool.drain(), vec![1]);
        assert_eq!(pool.take(), None);
    }
}
