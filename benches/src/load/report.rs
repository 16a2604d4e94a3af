//! What a run measured: per-operation latencies and statuses recorded by each client, merged
//! per scenario, printed as a table and written as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::client::{Reply, TRANSPORT_ERROR};

/// One operation's raw measurements (one request kind of a scenario, e.g. `POST /checkout`).
#[derive(Debug, Default, Clone)]
pub struct OpRecord {
    /// Latency of every request, in microseconds.
    pub latencies_us: Vec<u64>,
    /// Non-2xx answers that are errors, by status (`0`: no answer).
    pub errors: BTreeMap<u16, u64>,
    /// Error codes of those errors (`"409 cart_full"`, `"transport"`).
    pub error_codes: BTreeMap<String, u64>,
    /// Non-2xx answers the scenario expects (`"409 insufficient_stock"` in a flash sale).
    pub outcomes: BTreeMap<String, u64>,
    /// Attempts that got no answer and went to another target.
    pub failovers: u64,
    /// Attempts answered 503 with `Retry-After` that were sent again.
    pub retried_503: u64,
}

impl OpRecord {
    fn merge(&mut self, other: OpRecord) {
        self.latencies_us.extend(other.latencies_us);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.error_codes {
            *self.error_codes.entry(k).or_default() += v;
        }
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        self.failovers += other.failovers;
        self.retried_503 += other.retried_503;
    }
}

/// What one target got during the load: every attempt sent to it, answered or not.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TargetCount {
    /// Attempts it answered (with any status).
    pub answered: u64,
    /// Attempts it did not answer (refused, reset, timed out).
    pub no_answer: u64,
}

/// What one virtual client recorded. Each client owns one, so recording takes no lock.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    /// By operation name.
    pub ops: BTreeMap<&'static str, OpRecord>,
    /// Domain counts (`orders_placed`, `orders_paid`, `sold_out_seen`, ...).
    pub counters: BTreeMap<&'static str, u64>,
    /// Attempts by target index.
    pub targets: BTreeMap<usize, TargetCount>,
    /// Open loop only: each arrival's latency from its scheduled start to its end, in
    /// microseconds.
    pub arrivals_us: Vec<u64>,
    /// Open loop only: each arrival's lateness, from its scheduled start to its first request
    /// going out, in microseconds (the load generator's own delay; it counts in the latency).
    pub start_lags_us: Vec<u64>,
    /// Open loop only, for arrivals that are one request: their latency from the scheduled
    /// start by operation, in microseconds.
    pub arrival_ops_us: BTreeMap<&'static str, Vec<u64>>,
}

impl Recorder {
    /// Records a reply to `op`: 2xx is a success, a non-2xx that `expected` accepts (by status
    /// and error code) is an outcome, anything else an error.
    pub fn record(
        &mut self,
        op: &'static str,
        reply: &Reply,
        expected: impl Fn(u16, Option<&str>) -> bool,
    ) {
        for a in &reply.attempts {
            let t = self.targets.entry(a.target).or_default();
            if a.status == TRANSPORT_ERROR {
                t.no_answer += 1;
            } else {
                t.answered += 1;
            }
        }
        let rec = self.ops.entry(op).or_default();
        rec.latencies_us.push(micros(reply.latency));
        rec.failovers += reply.failovers();
        rec.retried_503 += reply.retried_503();
        if reply.ok() {
            return;
        }
        if reply.status == TRANSPORT_ERROR {
            *rec.errors.entry(TRANSPORT_ERROR).or_default() += 1;
            *rec.error_codes.entry("transport".to_owned()).or_default() += 1;
            return;
        }
        let code = reply.error_code();
        let key = format!("{} {}", reply.status, code.as_deref().unwrap_or("-"));
        if expected(reply.status, code.as_deref()) {
            *rec.outcomes.entry(key).or_default() += 1;
        } else {
            *rec.errors.entry(reply.status).or_default() += 1;
            *rec.error_codes.entry(key).or_default() += 1;
        }
    }

    /// Records a reply where only 2xx is expected.
    pub fn record_plain(&mut self, op: &'static str, reply: &Reply) {
        self.record(op, reply, |_, _| false);
    }

    /// Records an open-loop arrival: its latency from the scheduled start, how late it
    /// started, and, when it was one request, which operation that was.
    pub fn record_arrival(
        &mut self,
        op: Option<&'static str>,
        latency: Duration,
        start_lag: Duration,
    ) {
        self.arrivals_us.push(micros(latency));
        self.start_lags_us.push(micros(start_lag));
        if let Some(op) = op {
            self.arrival_ops_us
                .entry(op)
                .or_default()
                .push(micros(latency));
        }
    }

    /// Adds to a domain count.
    pub fn count(&mut self, name: &'static str, n: u64) {
        *self.counters.entry(name).or_default() += n;
    }

    /// Folds another client's records into this one.
    pub fn merge(&mut self, other: Recorder) {
        for (op, rec) in other.ops {
            self.ops.entry(op).or_default().merge(rec);
        }
        for (k, v) in other.counters {
            *self.counters.entry(k).or_default() += v;
        }
        for (k, v) in other.targets {
            let t = self.targets.entry(k).or_default();
            t.answered += v.answered;
            t.no_answer += v.no_answer;
        }
        self.arrivals_us.extend(other.arrivals_us);
        self.start_lags_us.extend(other.start_lags_us);
        for (op, v) in other.arrival_ops_us {
            self.arrival_ops_us.entry(op).or_default().extend(v);
        }
    }

    /// Every operation together.
    fn total(&self) -> OpRecord {
        let mut all = OpRecord::default();
        for rec in self.ops.values() {
            all.merge(rec.clone());
        }
        all
    }
}

/// A duration in whole microseconds (saturating).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Latency figures, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// The figures of a set of requests.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// Requests sent (every answer, whatever its status, and every transport failure).
    pub requests: u64,
    /// Requests per second over the scenario's elapsed time.
    pub rps: f64,
    /// Latency over every request.
    pub latency: Latency,
    /// Errors by HTTP status (`"0"`: no answer). Expected outcomes are not errors.
    pub errors_by_status: BTreeMap<String, u64>,
    /// The same errors by status and error code.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Non-2xx answers the scenario expects, by status and code.
    pub outcomes: BTreeMap<String, u64>,
    /// Attempts that got no answer and went to another target.
    pub failovers: u64,
    /// Attempts answered 503 with `Retry-After` that were sent again.
    pub retried_503: u64,
}

impl Latency {
    /// The figures of some latencies in microseconds, in any order.
    pub fn of(latencies_us: &[u64]) -> Latency {
        let mut lat = latencies_us.to_vec();
        lat.sort_unstable();
        Latency {
            p50_ms: percentile_ms(&lat, 50.0),
            p95_ms: percentile_ms(&lat, 95.0),
            p99_ms: percentile_ms(&lat, 99.0),
            max_ms: lat.last().map_or(0.0, |&us| us as f64 / 1000.0),
            mean_ms: if lat.is_empty() {
                0.0
            } else {
                lat.iter().sum::<u64>() as f64 / lat.len() as f64 / 1000.0
            },
        }
    }
}

/// `count` over `length`, per second (0 for an empty length).
fn per_sec(count: u64, length: Duration) -> f64 {
    let secs = length.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

impl Figures {
    fn of(rec: &OpRecord, elapsed: Duration) -> Figures {
        let requests = rec.latencies_us.len() as u64;
        Figures {
            requests,
            rps: per_sec(requests, elapsed),
            latency: Latency::of(&rec.latencies_us),
            errors_by_status: rec
                .errors
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            errors_by_code: rec.error_codes.clone(),
            outcomes: rec.outcomes.clone(),
            failovers: rec.failovers,
            retried_503: rec.retried_503,
        }
    }

    /// Errors, summed over statuses.
    pub fn error_count(&self) -> u64 {
        self.errors_by_status.values().sum()
    }
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
pub fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    sorted_us[rank.clamp(1, sorted_us.len()) - 1] as f64 / 1000.0
}

/// One operation of a scenario in the report.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    /// e.g. `POST /api/v1/checkout`.
    pub operation: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// One scenario in the report.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// `browse`, `cart`, `checkout` or `flash-sale`.
    pub scenario: String,
    /// Virtual clients that ran it.
    pub clients: usize,
    /// From the start of the load until its last client stopped.
    pub elapsed_secs: f64,
    /// Every request of the scenario together.
    #[serde(flatten)]
    pub figures: Figures,
    /// Domain counts (orders placed and paid, flash-sale sell-out...).
    pub counters: BTreeMap<String, u64>,
    /// Per request kind.
    pub operations: Vec<OpReport>,
    /// With `--rate`: the arrivals, their latency from the scheduled start and those missed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_loop: Option<OpenLoopFigures>,
}

/// What the open loop (`--rate`) measured of one scenario's arrivals. An arrival is one step of
/// the scenario (see `mall-load --help`); its latency runs from the moment the schedule said it
/// starts, not from when its first request went out, so a queue in the mall or in the load
/// generator shows in it.
#[derive(Debug, Clone, Serialize)]
pub struct OpenLoopFigures {
    /// The arrival rate asked for, per second.
    pub rate: f64,
    /// Arrivals on the schedule.
    pub scheduled: u64,
    /// Arrivals started.
    pub started: u64,
    /// Arrivals not started because `in_flight_cap` of the scenario's were still in flight
    /// (every customer busy): missed, and not in the latencies.
    pub missed: u64,
    /// The most arrivals of the scenario in flight at once.
    pub in_flight_cap: usize,
    /// Started arrivals per second of the schedule's length.
    pub achieved_rate: f64,
    /// From each started arrival's scheduled start to its end.
    pub latency: Latency,
    /// From each started arrival's scheduled start to its task starting (its first request
    /// goes out right after).
    pub start_lag: Latency,
    /// When an arrival is one request (browse, cart, an unpaid flash-sale order): each
    /// request kind's latency from its scheduled start.
    pub operations: BTreeMap<String, Latency>,
}

impl OpenLoopFigures {
    /// The figures of `rec`'s arrivals, for a schedule of `scheduled` arrivals at `rate` per
    /// second over `length`, of which `missed` found no free customer.
    pub fn new(
        rec: &Recorder,
        rate: f64,
        scheduled: u64,
        missed: u64,
        in_flight_cap: usize,
        length: Duration,
    ) -> OpenLoopFigures {
        let started = rec.arrivals_us.len() as u64;
        OpenLoopFigures {
            rate,
            scheduled,
            started,
            missed,
            in_flight_cap,
            achieved_rate: per_sec(started, length),
            latency: Latency::of(&rec.arrivals_us),
            start_lag: Latency::of(&rec.start_lags_us),
            operations: rec
                .arrival_ops_us
                .iter()
                .map(|(op, v)| ((*op).to_owned(), Latency::of(v)))
                .collect(),
        }
    }
}

impl ScenarioReport {
    /// Builds the report of a scenario from its clients' merged records.
    pub fn new(name: &str, clients: usize, elapsed: Duration, rec: &Recorder) -> ScenarioReport {
        ScenarioReport {
            scenario: name.to_owned(),
            clients,
            elapsed_secs: elapsed.as_secs_f64(),
            figures: Figures::of(&rec.total(), elapsed),
            counters: rec
                .counters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            operations: rec
                .ops
                .iter()
                .map(|(op, r)| OpReport {
                    operation: (*op).to_owned(),
                    figures: Figures::of(r, elapsed),
                })
                .collect(),
            open_loop: None,
        }
    }
}

/// The result of one invariant.
#[derive(Debug, Clone, Serialize)]
pub struct InvariantReport {
    /// Its name.
    pub name: String,
    /// Whether it held.
    pub pass: bool,
    /// What was checked, or what broke it.
    pub detail: String,
}

/// How the data was seeded.
#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    /// Customers registered and logged in.
    pub users: usize,
    /// Products created (the flash-sale one included).
    pub products: usize,
    /// Seconds it took.
    pub secs: f64,
}

/// The run's parameters, as given (after defaults).
#[derive(Debug, Clone, Serialize)]
pub struct Parameters {
    /// The first target: seeding and the invariant checks go through it.
    pub url: String,
    /// Every target, in the order given; client `i` is at home on `targets[i % n]`.
    pub targets: Vec<String>,
    /// Whether the POSTs that honour one carried an `Idempotency-Key`.
    pub idempotency_keys: bool,
    /// Scenarios run.
    pub scenarios: Vec<String>,
    /// One after another, or all at once.
    pub mode: String,
    /// Seconds of load (per scenario when sequential).
    pub duration_secs: f64,
    /// With `--rate`: arrivals per second of each scenario (open loop); `concurrency` is then
    /// the cap on arrivals in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Virtual clients.
    pub concurrency: usize,
    /// Customers seeded.
    pub users: usize,
    /// Ordinary products seeded.
    pub products: usize,
    /// The flash-sale product's stock.
    pub flash_stock: i64,
    /// Whether flash-sale buyers paid.
    pub flash_pay: bool,
    /// Per-request timeout.
    pub timeout_secs: f64,
}

/// The whole JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Names the run's users and products (`load-{run_id}-...`).
    pub run_id: String,
    /// When the load started (RFC 3339, UTC).
    pub started_at: String,
    /// The parameters.
    pub parameters: Parameters,
    /// Seeding.
    pub seed: SeedReport,
    /// Per scenario.
    pub scenarios: Vec<ScenarioReport>,
    /// Per target, what it got during the load (seeding and the checks not counted).
    pub targets: Vec<TargetReport>,
    /// Attempts of the load that got no answer and went to another target.
    pub failovers: u64,
    /// Attempts of the load answered 503 with `Retry-After` that were sent again.
    pub retried_503: u64,
    /// Per invariant.
    pub invariants: Vec<InvariantReport>,
    /// Every invariant held.
    pub passed: bool,
}

/// One target in the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetReport {
    /// Its base URL.
    pub url: String,
    /// Attempts it answered during the load, with any status (a logical request that failed
    /// over or was retried counts once per attempt, at each target it reached).
    pub requests: u64,
    /// Attempts sent to it that got no answer.
    pub no_answer: u64,
}

/// Per target, what the load's clients sent it, from every scenario's records.
pub fn targets(urls: &[String], recs: &[&Recorder]) -> Vec<TargetReport> {
    urls.iter()
        .enumerate()
        .map(|(i, url)| {
            let mut sum = TargetCount::default();
            for r in recs {
                if let Some(c) = r.targets.get(&i) {
                    sum.answered += c.answered;
                    sum.no_answer += c.no_answer;
                }
            }
            TargetReport {
                url: url.clone(),
                requests: sum.answered,
                no_answer: sum.no_answer,
            }
        })
        .collect()
}

/// The per-target table and the failover and 503-retry counts, per scenario and in total.
pub fn targets_table(targets: &[TargetReport], scenarios: &[ScenarioReport]) -> String {
    let mut out = String::new();
    let total: u64 = targets.iter().map(|t| t.requests).sum();
    let _ = writeln!(
        out,
        "{:<40} {:>10} {:>7} {:>10}",
        "target", "requests", "share", "no answer"
    );
    for t in targets {
        let share = if total > 0 {
            100.0 * t.requests as f64 / total as f64
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "{:<40} {:>10} {:>6.1}% {:>10}",
            t.url, t.requests, share, t.no_answer
        );
    }
    let failovers: u64 = scenarios.iter().map(|s| s.figures.failovers).sum();
    let retried: u64 = scenarios.iter().map(|s| s.figures.retried_503).sum();
    let per: Vec<String> = scenarios
        .iter()
        .map(|s| {
            format!(
                "{} {}/{}",
                s.scenario, s.figures.failovers, s.figures.retried_503
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "failovers {failovers}, retried_503 {retried} (per scenario, failovers/retried_503: {})",
        per.join(", ")
    );
    out
}

fn ms(x: f64) -> String {
    format!("{x:.2}")
}

fn status_list(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "-".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The results table: a row per scenario, then its operations indented.
pub fn table(scenarios: &[ScenarioReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:>7} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9}  {:<20} outcomes",
        "scenario / operation",
        "clients",
        "requests",
        "rps",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "errors by status"
    );
    let row = |out: &mut String, name: &str, clients: String, f: &Figures| {
        let _ = writeln!(
            out,
            "{:<34} {:>7} {:>9} {:>9.1} {:>8} {:>8} {:>8} {:>9}  {:<20} {}",
            name,
            clients,
            f.requests,
            f.rps,
            ms(f.latency.p50_ms),
            ms(f.latency.p95_ms),
            ms(f.latency.p99_ms),
            ms(f.latency.max_ms),
            status_list(&f.errors_by_status),
            status_list(&f.outcomes),
        );
    };
    for s in scenarios {
        row(&mut out, &s.scenario, s.clients.to_string(), &s.figures);
        for op in &s.operations {
            row(
                &mut out,
                &format!("  {}", op.operation),
                String::new(),
                &op.figures,
            );
        }
    }
    out
}

/// The open-loop table: per scenario, the arrivals scheduled, started and missed, and their
/// latency from the scheduled start. Empty when no scenario ran open loop.
pub fn open_table(scenarios: &[ScenarioReport]) -> String {
    let mut out = String::new();
    let open: Vec<(&str, &OpenLoopFigures)> = scenarios
        .iter()
        .filter_map(|s| s.open_loop.as_ref().map(|o| (s.scenario.as_str(), o)))
        .collect();
    if open.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "open loop: arrivals, latency from each one's scheduled start (ms)"
    );
    let _ = writeln!(
        out,
        "{:<12} {:>9} {:>9} {:>9} {:>8} {:>9} {:>8} {:>8} {:>8} {:>9} {:>11}",
        "scenario",
        "rate/s",
        "scheduled",
        "started",
        "missed",
        "done/s",
        "p50",
        "p95",
        "p99",
        "max",
        "lag p99"
    );
    for (name, o) in open {
        let _ = writeln!(
            out,
            "{:<12} {:>9.1} {:>9} {:>9} {:>8} {:>9.1} {:>8} {:>8} {:>8} {:>9} {:>11}",
            name,
            o.rate,
            o.scheduled,
            o.started,
            o.missed,
            o.achieved_rate,
            ms(o.latency.p50_ms),
            ms(o.latency.p95_ms),
            ms(o.latency.p99_ms),
            ms(o.latency.max_ms),
            ms(o.start_lag.p99_ms),
        );
        for (op, l) in &o.operations {
            let _ = writeln!(
                out,
                "  {:<59} {:>8} {:>8} {:>8} {:>9}",
                op,
                ms(l.p50_ms),
                ms(l.p95_ms),
                ms(l.p99_ms),
                ms(l.max_ms),
            );
        }
    }
    let missed: u64 = scenarios
        .iter()
        .filter_map(|s| s.open_loop.as_ref())
        .map(|o| o.missed)
        .sum();
    if missed > 0 {
        let _ = writeln!(
            out,
            "note: {missed} arrivals were missed: every customer of their scenario was busy (the in-flight cap is --concurrency); they are not in the latencies, and the rate was not reached"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::client::Attempt;

    fn reply(status: u16, body: &str, ms: u64) -> Reply {
        Reply {
            status,
            body: body.as_bytes().to_vec(),
            latency: Duration::from_millis(ms),
            attempts: vec![Attempt { target: 0, status }],
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile_ms(&v, 50.0), 50.0);
        assert_eq!(percentile_ms(&v, 95.0), 95.0);
        assert_eq!(percentile_ms(&v, 99.0), 99.0);
        assert_eq!(percentile_ms(&v, 100.0), 100.0);
        assert_eq!(percentile_ms(&[7000], 99.0), 7.0);
        assert_eq!(percentile_ms(&[], 50.0), 0.0);
    }

    #[test]
    fn errors_and_outcomes_are_told_apart() {
        let mut a = Recorder::default();
        let sold_out = r#"{"error":{"code":"insufficient_stock","message":"x","details":{}}}"#;
        let flash = |s: u16, c: Option<&str>| s == 409 && c == Some("insufficient_stock");
        a.record("POST /orders", &reply(201, "{}", 2), flash);
        a.record("POST /orders", &reply(409, sold_out, 4), flash);
        a.record("POST /orders", &reply(500, "oops", 6), flash);
        let mut b = Recorder::default();
        b.record_plain("POST /orders", &reply(409, sold_out, 8));
        b.record_plain("POST /orders", &reply(TRANSPORT_ERROR, "refused", 1));
        b.count("orders_placed", 1);
        a.merge(b);
        let r = ScenarioReport::new("flash-sale", 2, Duration::from_secs(2), &a);
        assert_eq!(r.figures.requests, 5);
        assert_eq!(r.figures.rps, 2.5);
        assert_eq!(r.figures.error_count(), 3);
        assert_eq!(r.figures.errors_by_status["409"], 1);
        assert_eq!(r.figures.errors_by_status["500"], 1);
        assert_eq!(r.figures.errors_by_status["0"], 1);
        assert_eq!(r.figures.outcomes["409 insufficient_stock"], 1);
        assert_eq!(r.figures.latency.max_ms, 8.0);
        assert_eq!(r.counters["orders_placed"], 1);
        assert!(table(&[r]).contains("flash-sale"));
    }

    #[test]
    fn open_loop_figures_come_from_the_schedule() {
        let mut a = Recorder::default();
        // Two product reads and a search, each one arrival; their request rows keep the
        // service time, the arrivals' figures the time from the schedule.
        a.record_plain("GET /products/{id}", &reply(200, "{}", 2));
        a.record_arrival(
            Some("GET /products/{id}"),
            Duration::from_millis(12),
            Duration::from_millis(10),
        );
        a.record_plain("GET /products/{id}", &reply(200, "{}", 3));
        a.record_arrival(
            Some("GET /products/{id}"),
            Duration::from_millis(3),
            Duration::ZERO,
        );
        let mut b = Recorder::default();
        b.record_plain("GET /products?q=", &reply(200, "{}", 40));
        b.record_arrival(
            Some("GET /products?q="),
            Duration::from_millis(40),
            Duration::ZERO,
        );
        // A purchase: one arrival of several requests, in no request kind's row.
        b.record_arrival(None, Duration::from_millis(100), Duration::from_millis(1));
        a.merge(b);
        let mut r = ScenarioReport::new("browse", 8, Duration::from_secs(1), &a);
        assert!(r.open_loop.is_none(), "closed loop unless told");
        assert_eq!(open_table(&[r.clone()]), "");
        let o = OpenLoopFigures::new(&a, 5.0, 5, 1, 8, Duration::from_secs(1));
        assert_eq!((o.scheduled, o.started, o.missed), (5, 4, 1));
        assert_eq!(o.achieved_rate, 4.0);
        assert_eq!(o.latency.max_ms, 100.0);
        assert_eq!(o.latency.p50_ms, 12.0);
        assert_eq!(o.start_lag.max_ms, 10.0);
        assert_eq!(o.operations["GET /products/{id}"].max_ms, 12.0);
        assert_eq!(o.operations["GET /products?q="].p50_ms, 40.0);
        assert_eq!(o.operations.len(), 2);
        // The request row still says 3 ms: the 10 ms the first one waited to start is not
        // the server's.
        assert_eq!(r.operations[0].figures.latency.max_ms, 3.0);
        r.open_loop = Some(o);
        let text = open_table(&[r]);
        assert!(text.contains("1 arrivals were missed"), "{text}");
        assert!(text.contains("GET /products?q="), "{text}");
    }

    #[test]
    fn attempts_count_per_target_with_failovers_and_503_retries() {
        let mut a = Recorder::default();
        // Home 1 silent, 2 busy, 0 answers: one failover, one 503 retry, three targets reached.
        let mut r = reply(200, "{}", 3);
        r.attempts = vec![
            Attempt {
                target: 1,
                status: TRANSPORT_ERROR,
            },
            Attempt {
                target: 2,
                status: 503,
            },
            Attempt {
                target: 0,
                status: 200,
            },
        ];
        a.record_plain("GET /cart", &r);
        // A 503 that stayed a 503: retried once, then the answer (the last is never a retry).
        let mut r = reply(503, "{}", 1);
        r.attempts = vec![
            Attempt {
                target: 0,
                status: 503,
            },
            Attempt {
                target: 1,
                status: 503,
            },
        ];
        a.record_plain("GET /cart", &r);
        let s = ScenarioReport::new("cart", 1, Duration::from_secs(1), &a);
        assert_eq!(s.figures.requests, 2);
        assert_eq!((s.figures.failovers, s.figures.retried_503), (1, 2));
        assert_eq!(s.figures.errors_by_status["503"], 1);
        let urls: Vec<String> = ["http://a", "http://b", "http://c"]
            .iter()
            .map(|u| (*u).to_owned())
            .collect();
        let t = targets(&urls, &[&a]);
        let got: Vec<(u64, u64)> = t.iter().map(|t| (t.requests, t.no_answer)).collect();
        assert_eq!(got, vec![(2, 0), (1, 1), (1, 0)]);
        let text = targets_table(&t, &[s]);
        assert!(text.contains("failovers 1, retried_503 2"), "{text}");
        assert!(text.contains("http://b"), "{text}");
    }
}
