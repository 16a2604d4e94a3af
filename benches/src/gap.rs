//! `failover-gap`: how long customers of a mall cluster cannot use their carts when one node
//! dies. It registers customers through a surviving node, gives each a cart line, has each
//! read its cart (`GET /api/v1/cart`) through the survivors every few milliseconds, sends
//! SIGKILL to the victim node's process, and reports, for the customers whose reads failed
//! after the kill, the time from the kill to their first successful read after the failure.
//! Reads are sent once each, never retried or failed over, so the gap is what a client without
//! retries sees. See `failover-gap --help` and `benches/README.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::load::args::{DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD, parse_targets};
use crate::load::client::Api;
use crate::load::retry::Policy;
use crate::load::seed::login;
use crate::load::{EXIT_CANNOT_RUN, bounded};

/// Exit status when some affected customer never read its cart again within `--after`.
pub const EXIT_NOT_RECOVERED: i32 = 1;

/// Everything a run is told on its command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Every node of the cluster, the victim among them.
    pub targets: Vec<String>,
    /// The node that gets killed.
    pub victim: String,
    /// Its process id.
    pub pid: u32,
    /// Customers polling their carts.
    pub customers: usize,
    /// How often each customer reads its cart.
    pub interval: Duration,
    /// Polling before the kill.
    pub before: Duration,
    /// Polling after the kill.
    pub after: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The administrator who creates the product the carts hold.
    pub admin_email: String,
    /// Their password.
    pub admin_password: String,
    /// Registrations in flight at once (argon2 on the server).
    pub seed_concurrency: usize,
    /// Where to write the JSON report, if anywhere.
    pub report: Option<PathBuf>,
}

impl Options {
    /// The targets other than the victim, in the order given.
    pub fn survivors(&self) -> Vec<String> {
        self.targets
            .iter()
            .filter(|t| **t != self.victim)
            .cloned()
            .collect()
    }
}

/// What the command line asks for.
pub type Command = crate::cli::Command<Options>;

/// The `--help` text.
pub fn help() -> String {
    format!(
        "\
failover-gap: measures how long customers of a running mall cluster cannot read their carts
when one node is killed. Registers --customers customers through the first surviving node,
puts one product in each cart, has each read its cart (GET /api/v1/cart) through the survivors
(customer i through the i-th modulo their number) every --interval-ms, sends SIGKILL to --pid
after --before seconds, keeps reading for --after seconds, then reports how many customers had
a failed read (any non-2xx, or no answer) after the kill and, for them, the time from the kill
to their first successful read after the failure: max and median. Reads are never retried.
Exit status 0, 1 when an affected customer never read its cart again, 2 when it could not run.

USAGE:
    failover-gap --targets URL,URL,URL --victim URL --pid PID [OPTIONS]

The nodes must share one database and JWT secret, have rate limits off and the administrator
below bootstrapped (as for mall-load).

OPTIONS:
    --targets URL,...       every node of the cluster, the victim among them
    --victim URL            the node to kill (one of --targets); no request goes to it
    --pid PID               its process id: receives SIGKILL (kill -9)
    --customers N           customers polling their carts [default: 60]
    --interval-ms MS        each customer's reads are this far apart [default: 20]
    --before SECS           reading before the kill [default: 2]
    --after SECS            reading after the kill [default: 15]
    --timeout SECS          per-request timeout [default: 5]
    --admin-email EMAIL     [default: {email}]
    --admin-password PW     [default: {password}]
    --seed-concurrency N    registrations in flight at once [default: 4]
    --report PATH           also write the results as JSON to PATH
    -h, --help              print this text
",
        email = DEFAULT_ADMIN_EMAIL,
        password = DEFAULT_ADMIN_PASSWORD,
    )
}

/// Parses the arguments (without the program name).
pub fn parse<I>(args: I) -> Result<Command, String>
where
    I: IntoIterator<Item = String>,
{
    let mut targets = None;
    let mut victim = None;
    let mut pid = None;
    let mut o = Options {
        targets: Vec::new(),
        victim: String::new(),
        pid: 0,
        customers: 60,
        interval: Duration::from_millis(20),
        before: Duration::from_secs(2),
        after: Duration::from_secs(15),
        timeout: Duration::from_secs(5),
        admin_email: DEFAULT_ADMIN_EMAIL.to_owned(),
        admin_password: DEFAULT_ADMIN_PASSWORD.to_owned(),
        seed_concurrency: 4,
        report: None,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--targets" => targets = Some(parse_targets(&value()?)?),
            "--victim" => victim = Some(value()?.trim().trim_end_matches('/').to_owned()),
            "--pid" => {
                let v = value()?;
                pid = Some(
                    v.parse::<u32>()
                        .ok()
                        .filter(|p| *p > 1)
                        .ok_or_else(|| format!("--pid wants a process id, not `{v}`"))?,
                );
            }
            "--customers" => o.customers = positive(&name, &value()?)?,
            "--interval-ms" => {
                o.interval = Duration::from_millis(positive(&name, &value()?)? as u64)
            }
            "--before" => o.before = seconds(&name, &value()?)?,
            "--after" => o.after = seconds(&name, &value()?)?,
            "--timeout" => o.timeout = seconds(&name, &value()?)?,
            "--admin-email" => o.admin_email = value()?,
            "--admin-password" => o.admin_password = value()?,
            "--seed-concurrency" => o.seed_concurrency = positive(&name, &value()?)?,
            "--report" => o.report = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    o.targets = targets.ok_or("--targets is required (see --help)")?;
    o.victim = victim.ok_or("--victim is required (see --help)")?;
    o.pid = pid.ok_or("--pid is required (see --help)")?;
    if !o.targets.contains(&o.victim) {
        return Err(format!(
            "--victim {} is not one of --targets ({})",
            o.victim,
            o.targets.join(", ")
        ));
    }
    if o.survivors().is_empty() {
        return Err("--targets names no node besides the victim".to_owned());
    }
    Ok(Command::Run(Box::new(o)))
}

fn positive(name: &str, v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "{name} wants a whole number of at least 1, not `{v}`"
        )),
    }
}

fn seconds(name: &str, v: &str) -> Result<Duration, String> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x < 1e6 => Ok(Duration::from_secs_f64(x)),
        _ => Err(format!(
            "{name} wants a positive number of seconds, not `{v}`"
        )),
    }
}

/// One cart read: when it was sent and answered (from the start of the polling) and its status
/// (`0`: no answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Sent.
    pub sent: Duration,
    /// Answered, or given up.
    pub done: Duration,
    /// Its HTTP status, `0` without an answer.
    pub status: u16,
}

impl Sample {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What the reads say about the kill.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Analysis {
    /// Customers polling.
    pub customers: usize,
    /// Reads answered before the kill.
    pub reads_before: u64,
    /// Of those, failed.
    pub failed_before: u64,
    /// Reads answered (or given up) after the kill.
    pub reads_after: u64,
    /// Of those, failed.
    pub failed_after: u64,
    /// The failures after the kill by status (`"0"`: no answer).
    pub failed_after_by_status: BTreeMap<String, u64>,
    /// Customers with a failed read after the kill.
    pub affected: usize,
    /// Of those, customers that read their cart successfully again.
    pub recovered: usize,
    /// Per recovered customer, from the kill to its first success after its first failure
    /// after the kill, in ms, ascending.
    pub gaps_ms: Vec<f64>,
    /// The largest gap (0 when none).
    pub max_gap_ms: f64,
    /// The median gap (0 when none; the lower middle of an even count).
    pub median_gap_ms: f64,
    /// The slowest successful read answered after the kill, in ms.
    pub slowest_ok_after_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Reads the customers' samples (each customer's in the order sent; one read in flight at a
/// time) against the moment of the kill.
pub fn analyse(per_customer: &[Vec<Sample>], kill_at: Duration) -> Analysis {
    let mut a = Analysis {
        customers: per_customer.len(),
        reads_before: 0,
        failed_before: 0,
        reads_after: 0,
        failed_after: 0,
        failed_after_by_status: BTreeMap::new(),
        affected: 0,
        recovered: 0,
        gaps_ms: Vec::new(),
        max_gap_ms: 0.0,
        median_gap_ms: 0.0,
        slowest_ok_after_ms: 0.0,
    };
    for samples in per_customer {
        let mut first_failure = None;
        let mut recovered_at = None;
        for (i, s) in samples.iter().enumerate() {
            if s.done < kill_at {
                a.reads_before += 1;
                a.failed_before += u64::from(!s.ok());
                continue;
            }
            a.reads_after += 1;
            if s.ok() {
                a.slowest_ok_after_ms = a.slowest_ok_after_ms.max(ms(s.done - s.sent));
                if first_failure.is_some() && recovered_at.is_none() {
                    recovered_at = Some(s.done);
                }
            } else {
                a.failed_after += 1;
                *a.failed_after_by_status
                    .entry(s.status.to_string())
                    .or_default() += 1;
                first_failure.get_or_insert(i);
            }
        }
        if first_failure.is_some() {
            a.affected += 1;
            if let Some(at) = recovered_at {
                a.recovered += 1;
                a.gaps_ms.push(ms(at - kill_at));
            }
        }
    }
    a.gaps_ms.sort_by(f64::total_cmp);
    a.max_gap_ms = a.gaps_ms.last().copied().unwrap_or(0.0);
    a.median_gap_ms = match a.gaps_ms.len() {
        0 => 0.0,
        n => a.gaps_ms[(n - 1) / 2],
    };
    a
}

/// The analysis as text.
pub fn summary(a: &Analysis) -> String {
    let by_status = if a.failed_after_by_status.is_empty() {
        "-".to_owned()
    } else {
        a.failed_after_by_status
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = format!(
        "reads before the kill: {} ({} failed); after: {} ({} failed; by status {by_status})\n\
         slowest successful read answered after the kill: {:.1} ms\n",
        a.reads_before, a.failed_before, a.reads_after, a.failed_after, a.slowest_ok_after_ms,
    );
    if a.affected == 0 {
        out.push_str(&format!(
            "affected customers: 0 of {}: no customer had a failed read after the kill \
             (expected while every node serves every user directly)\n",
            a.customers
        ));
        return out;
    }
    out.push_str(&format!(
        "affected customers: {} of {} ({} recovered, {} never read their cart again)\n\
         gap from the kill to the first successful read after a failure: max {:.1} ms, median {:.1} ms\n",
        a.affected,
        a.customers,
        a.recovered,
        a.affected - a.recovered,
        a.max_gap_ms,
        a.median_gap_ms,
    ));
    out
}

/// The JSON report.
#[derive(Debug, Serialize)]
struct Report<'a> {
    targets: &'a [String],
    victim: &'a str,
    pid: u32,
    interval_ms: f64,
    before_secs: f64,
    after_secs: f64,
    /// From the start of the polling to the kill.
    kill_at_ms: f64,
    #[serde(flatten)]
    analysis: &'a Analysis,
}

/// A customer, logged in, with a cart line.
struct Customer {
    token: String,
}

/// Registers and logs in `n` customers through `api` and puts `product` in each cart (through
/// the customer's own survivor).
async fn customers(
    api: &Api,
    polling: &Api,
    run: &str,
    n: usize,
    product: &str,
    concurrency: usize,
) -> Result<Vec<Customer>, String> {
    let password = format!("gap-password-{run}");
    let made = bounded((0..n).collect(), concurrency, |i| {
        let api = api.clone();
        let home = polling.homed(i);
        let email = format!("gap-{run}-{i}@example.com");
        let password = password.clone();
        let product = product.to_owned();
        async move {
            let r = api
                .post(
                    "/api/v1/users",
                    None,
                    &json!({"email": email, "password": password, "name": format!("Gap customer {i}")}),
                )
                .await;
            if r.status != 201 {
                return Err(format!("registering {email}: {}", r.describe()));
            }
            let token = login(&api, &email, &password)
                .await
                .map_err(|r| format!("logging in {email}: {}", r.describe()))?;
            let r = home
                .post(
                    "/api/v1/cart/items",
                    Some(&token),
                    &json!({"product_id": product, "quantity": 1}),
                )
                .await;
            if !r.ok() {
                return Err(format!(
                    "adding to {email}'s cart at {}: {}",
                    home.base(),
                    r.describe()
                ));
            }
            Ok(Customer { token })
        }
    })
    .await;
    made.into_iter().collect()
}

/// Creates a product with plenty of stock as the admin; its id.
async fn product(api: &Api, opts: &Options, run: &str) -> Result<String, String> {
    let admin = login(api, &opts.admin_email, &opts.admin_password)
        .await
        .map_err(|r| {
            format!(
                "the admin {} cannot log in at {} (start the nodes with \
                 MALL__BOOTSTRAP__ADMIN_EMAIL/MALL__BOOTSTRAP__ADMIN_PASSWORD matching \
                 --admin-email/--admin-password): {}",
                opts.admin_email,
                api.base(),
                r.describe()
            )
        })?;
    let r = api
        .post(
            "/api/v1/products",
            Some(&admin),
            &json!({
                "name": format!("Failover gap lamp {run}"),
                "description": format!("In every cart of failover-gap run {run}."),
                "price_cents": 1999,
                "stock": 1_000_000,
                "categories": ["home"],
            }),
        )
        .await;
    match r.json().get("id").and_then(Value::as_str) {
        Some(id) if r.status == 201 => Ok(id.to_owned()),
        _ => Err(format!("creating a product as the admin: {}", r.describe())),
    }
}

/// Reads `token`'s cart through `api` every `interval` from `first` until `end`.
async fn poll(
    api: Api,
    token: String,
    start: Instant,
    first: Instant,
    interval: Duration,
    end: Instant,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut next = first;
    tokio::time::sleep_until(next.into()).await;
    while Instant::now() < end {
        let sent = start.elapsed();
        let r = api.get("/api/v1/cart", Some(&token)).await;
        samples.push(Sample {
            sent,
            done: start.elapsed(),
            status: r.status,
        });
        next += interval;
        let now = Instant::now();
        if next < now {
            next = now;
        }
        tokio::time::sleep_until(next.into()).await;
    }
    samples
}

/// Sends SIGKILL to `pid` with `kill -9`.
async fn kill(pid: u32) -> Result<(), String> {
    let out = tokio::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .output()
        .await
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "kill -9 {pid} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Measures as `opts` says and prints the results; the process's exit status.
#[expect(
    clippy::expect_used,
    reason = "a measuring tool: a panicked poller is a bug to surface at once"
)]
pub async fn run(opts: Options) -> i32 {
    let survivors = opts.survivors();
    let api = match Api::cluster(&survivors, opts.timeout) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("failover-gap: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    let polling = api.with_policy(Policy::NEVER);
    let run = format!("{:08x}", rand::random::<u32>());
    eprintln!(
        "failover-gap: run {run}: {} customers through {} (victim {}, pid {})",
        opts.customers,
        survivors.join(", "),
        opts.victim,
        opts.pid
    );
    let setup = async {
        let product = product(&api, &opts, &run).await?;
        customers(
            &api,
            &polling,
            &run,
            opts.customers,
            &product,
            opts.seed_concurrency,
        )
        .await
    };
    let customers = match setup.await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("failover-gap: setting up failed: {e}");
            return EXIT_CANNOT_RUN;
        }
    };

    eprintln!(
        "reading {} carts every {} ms: {:.1} s before the kill, {:.1} s after...",
        customers.len(),
        opts.interval.as_millis(),
        opts.before.as_secs_f64(),
        opts.after.as_secs_f64()
    );
    let start = Instant::now();
    let kill_due = start + opts.before;
    let end = kill_due + opts.after;
    let n = customers.len().max(1) as u32;
    let mut set = JoinSet::new();
    for (i, c) in customers.into_iter().enumerate() {
        // Spread the customers' reads over one interval.
        let first = start + opts.interval * (i as u32) / n;
        set.spawn(poll(
            polling.homed(i),
            c.token,
            start,
            first,
            opts.interval,
            end,
        ));
    }
    tokio::time::sleep_until(kill_due.into()).await;
    let killed = kill(opts.pid).await;
    let kill_at = start.elapsed();
    if let Err(e) = &killed {
        eprintln!("failover-gap: {e}");
    } else {
        eprintln!(
            "killed {} (pid {}) at {:.3} s",
            opts.victim,
            opts.pid,
            kill_at.as_secs_f64()
        );
    }
    let mut per_customer = Vec::new();
    while let Some(joined) = set.join_next().await {
        per_customer.push(joined.expect("a poller panicked"));
    }
    if killed.is_err() {
        return EXIT_CANNOT_RUN;
    }
    let a = analyse(&per_customer, kill_at);
    println!();
    print!("{}", summary(&a));
    if let Some(path) = &opts.report {
        let report = Report {
            targets: &opts.targets,
            victim: &opts.victim,
            pid: opts.pid,
            interval_ms: ms(opts.interval),
            before_secs: opts.before.as_secs_f64(),
            after_secs: opts.after.as_secs_f64(),
            kill_at_ms: ms(kill_at),
            analysis: &a,
        };
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        match written {
            Ok(()) => eprintln!("report written to {}", path.display()),
            Err(e) => {
                eprintln!(
                    "failover-gap: cannot write the report to {}: {e}",
                    path.display()
                );
                return EXIT_CANNOT_RUN;
            }
        }
    }
    if a.recovered < a.affected {
        EXIT_NOT_RECOVERED
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Command, String> {
        parse(a.iter().map(|s| (*s).to_owned()))
    }

    const T: &str = "http://127.0.0.1:1,http://127.0.0.1:2,http://127.0.0.1:3";

    #[test]
    fn parses_targets_victim_and_pid() {
        let Command::Run(o) = args(&[
            "--targets",
            T,
            "--victim=http://127.0.0.1:3/",
            "--pid",
            "4242",
            "--customers",
            "8",
            "--interval-ms=50",
            "--after",
            "1.5",
        ])
        .unwrap() else {
            panic!("help")
        };
        assert_eq!(o.victim, "http://127.0.0.1:3");
        assert_eq!(o.pid, 4242);
        assert_eq!(
            o.survivors(),
            vec!["http://127.0.0.1:1", "http://127.0.0.1:2"]
        );
        assert_eq!(o.customers, 8);
        assert_eq!(o.interval, Duration::from_millis(50));
        assert_eq!(o.after, Duration::from_millis(1500));
        assert_eq!(o.before, Duration::from_secs(2));
        assert!(matches!(args(&["-h"]).unwrap(), Command::Help));
    }

    #[test]
    fn refusals() {
        for bad in [
            &["--victim", "http://127.0.0.1:1", "--pid", "9"][..],
            &["--targets", T, "--pid", "9"],
            &["--targets", T, "--victim", "http://127.0.0.1:1"],
            &[
                "--targets",
                T,
                "--victim",
                "http://127.0.0.1:9",
                "--pid",
                "9",
            ],
            &[
                "--targets",
                T,
                "--victim",
                "http://127.0.0.1:1",
                "--pid",
                "1",
            ],
            &[
                "--targets",
                T,
                "--victim",
                "http://127.0.0.1:1",
                "--pid",
                "x",
            ],
            &[
                "--targets",
                "http://127.0.0.1:1",
                "--victim",
                "http://127.0.0.1:1",
                "--pid",
                "9",
            ],
            &["--bogus"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
    }

    fn s(sent_ms: u64, done_ms: u64, status: u16) -> Sample {
        Sample {
            sent: Duration::from_millis(sent_ms),
            done: Duration::from_millis(done_ms),
            status,
        }
    }

    #[test]
    fn gaps_run_from_the_kill_to_the_first_success_after_a_failure() {
        let kill = Duration::from_millis(1000);
        let per = vec![
            // Never failed: not affected, though slow once after the kill.
            vec![s(900, 950, 200), s(980, 1300, 200), s(1300, 1310, 200)],
            // Failed in flight across the kill, then 503s, then fine at 1400.
            vec![
                s(990, 1005, 0),
                s(1020, 1030, 503),
                s(1390, 1400, 200),
                s(1410, 1420, 500),
                s(1430, 1440, 200),
            ],
            // Failed at once, fine at 1100.
            vec![s(1001, 1002, 0), s(1090, 1100, 200)],
            // Failed and never came back.
            vec![s(1001, 1050, 0), s(1060, 2000, 0)],
            // A failure before the kill does not count as affected.
            vec![s(100, 110, 500), s(1100, 1110, 200)],
        ];
        let a = analyse(&per, kill);
        assert_eq!(a.customers, 5);
        assert_eq!((a.reads_before, a.failed_before), (2, 1));
        assert_eq!((a.reads_after, a.failed_after), (12, 6));
        assert_eq!(a.failed_after_by_status["0"], 4);
        assert_eq!(a.failed_after_by_status["503"], 1);
        assert_eq!(a.failed_after_by_status["500"], 1);
        assert_eq!((a.affected, a.recovered), (3, 2));
        assert_eq!(a.gaps_ms, vec![100.0, 400.0]);
        assert_eq!((a.max_gap_ms, a.median_gap_ms), (400.0, 100.0));
        assert_eq!(a.slowest_ok_after_ms, 320.0);
        let text = summary(&a);
        assert!(
            text.contains("affected customers: 3 of 5 (2 recovered, 1 never"),
            "{text}"
        );
        assert!(text.contains("max 400.0 ms, median 100.0 ms"), "{text}");
    }

    #[test]
    fn nobody_affected_is_said_plainly() {
        let a = analyse(
            &[vec![s(0, 5, 200), s(2000, 2005, 200)]],
            Duration::from_secs(1),
        );
        assert_eq!((a.affected, a.max_gap_ms, a.median_gap_ms), (0, 0.0, 0.0));
        assert!(summary(&a).contains("affected customers: 0 of 1: no customer"));
    }
}
