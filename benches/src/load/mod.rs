//! `mall-load`: seeds a running mall through its API, drives it with many concurrent virtual
//! clients (tokio tasks) in the `browse`, `cart`, `checkout` and `flash-sale` scenarios, reports
//! throughput and latency per scenario, and checks the stock and payment invariants at the end.
//! It drives one node or several nodes of one cluster (`--targets`), failing over and retrying
//! as [`retry`] says. See `mall-load --help` and `benches/README.md`.

pub mod args;
pub mod client;
pub mod invariants;
pub mod open;
pub mod report;
pub mod retry;
pub mod scenarios;
pub mod seed;

use std::future::Future;
use std::sync::Arc;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use args::Options;
use client::Api;
use report::{OpenLoopFigures, Parameters, Report, ScenarioReport, SeedReport};
use scenarios::{ClientPlan, Scenario, ScenarioOutput, Shared};

/// Exit status when an invariant failed.
pub const EXIT_INVARIANT_FAILED: i32 = 1;
pub use crate::cli::EXIT_CANNOT_RUN;

/// Runs `f` over `items` with at most `limit` at once; the answers in the order of `items`.
#[expect(
    clippy::expect_used,
    reason = "a load tool: a panicked client or a broken invariant of its own is a bug to surface at once"
)]
pub async fn bounded<T, R, F, Fut>(items: Vec<T>, limit: usize, f: F) -> Vec<R>
where
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
{
    let n = items.len();
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    let mut set = JoinSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let fut = f(item);
        let permits = permits.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            (i, fut.await)
        });
    }
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, r) = joined.expect("a task panicked");
        out[i] = Some(r);
    }
    out.into_iter()
        .map(|r| r.expect("every task answered"))
        .collect()
}

/// How many clients each scenario gets when they run at once: an even split, the remainder to
/// the first ones.
pub fn split(concurrency: usize, scenarios: &[Scenario]) -> Vec<(Scenario, usize)> {
    let n = scenarios.len().max(1);
    scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, concurrency / n + usize::from(i < concurrency % n)))
        .collect()
}

/// A short id naming this run's users and products.
fn run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// Runs the load as `opts` says and prints the results; the process's exit status.
pub async fn run(opts: Options) -> i32 {
    let api = match Api::cluster(&opts.targets, opts.timeout) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mall-load: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    let run = run_id();

    // Which clients run what; the scenarios with customers get one each.
    let phases: Vec<Vec<(Scenario, usize)>> = if opts.sequential {
        opts.scenarios
            .iter()
            .map(|s| vec![(*s, opts.concurrency)])
            .collect()
    } else {
        vec![split(opts.concurrency, &opts.scenarios)]
    };
    let needed = phases
        .iter()
        .map(|p| {
            p.iter()
                .filter(|(s, _)| s.needs_user())
                .map(|(_, n)| n)
                .sum::<usize>()
        })
        .max()
        .unwrap_or(0);
    let users = opts.users.max(needed);

    // In the open loop the clients are the customers the arrivals borrow: the in-flight cap.
    let (mode, clients) = match opts.rate {
        Some(rate) => (
            format!(", open loop at {rate} arrivals/s per scenario,"),
            "arrivals in flight at most",
        ),
        None => (String::new(), "clients"),
    };
    eprintln!(
        "mall-load: run {run} against {}: {} for {:.1} s{}{mode} with {} {clients} ({}); {users} customers, {} products, flash-sale stock {}",
        api.targets().join(", "),
        opts.scenarios
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", "),
        opts.duration.as_secs_f64(),
        if opts.sequential {
            " each, one after another"
        } else {
            ", all at once"
        },
        opts.concurrency,
        phases
            .iter()
            .flatten()
            .map(|(s, n)| format!("{} {n}", s.name()))
            .collect::<Vec<_>>()
            .join(", "),
        opts.products,
        opts.flash_stock,
    );

    let seeded = match seed::seed(&api, &run, &opts, users).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mall-load: seeding failed: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    eprintln!(
        "seeded {} customers and {} products in {:.1} s",
        seeded.users.len(),
        seeded.products.len() + 1,
        seeded.elapsed.as_secs_f64()
    );

    let shared = Arc::new(Shared {
        api: api.clone(),
        run: run.clone(),
        idempotency_keys: opts.idempotency_keys,
        products: seeded.products.iter().map(|p| p.id.clone()).collect(),
        flash_product: seeded.flash.id.clone(),
        flash_pay: opts.flash_pay,
    });
    let started_at = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    let mut outputs: Vec<ScenarioOutput> = Vec::new();
    let mut seed_counter = 0u64;
    for phase in &phases {
        let mut clients = Vec::new();
        let mut next_user = 0;
        for (scenario, n) in phase {
            for _ in 0..*n {
                // Client i of the phase is at home on target i mod n.
                let home = clients.len();
                let user = scenario.needs_user().then(|| {
                    next_user += 1;
                    seeded.users[next_user - 1].clone()
                });
                seed_counter += 1;
                clients.push(ClientPlan {
                    scenario: *scenario,
                    user,
                    seed: seed_counter,
                    home,
                });
            }
        }
        eprintln!(
            "driving {} for {:.1} s...",
            phase
                .iter()
                .map(|(s, _)| s.name())
                .collect::<Vec<_>>()
                .join(", "),
            opts.duration.as_secs_f64()
        );
        let out = match opts.rate {
            Some(rate) => open::run(shared.clone(), clients, rate, opts.duration).await,
            None => scenarios::run_clients(shared.clone(), clients, opts.duration).await,
        };
        outputs.extend(out);
    }

    let scenario_reports: Vec<ScenarioReport> = outputs
        .iter()
        .map(|o| {
            let mut r = ScenarioReport::new(o.scenario.name(), o.clients, o.elapsed, &o.rec);
            r.open_loop = o.open.map(|run| {
                OpenLoopFigures::new(
                    &o.rec,
                    run.schedule.rate(),
                    run.schedule.count(),
                    run.missed,
                    run.cap,
                    run.length,
                )
            });
            r
        })
        .collect();
    println!();
    print!("{}", report::table(&scenario_reports));
    let open_table = report::open_table(&scenario_reports);
    if !open_table.is_empty() {
        println!();
        print!("{open_table}");
    }
    for s in &scenario_reports {
        if !s.counters.is_empty() {
            let counts: Vec<String> = s.counters.iter().map(|(k, v)| format!("{k} {v}")).collect();
            println!("{}: {}", s.scenario, counts.join(", "));
        }
    }
    let target_reports = report::targets(
        api.targets(),
        &outputs.iter().map(|o| &o.rec).collect::<Vec<_>>(),
    );
    println!();
    print!(
        "{}",
        report::targets_table(&target_reports, &scenario_reports)
    );
    let rate_limited: u64 = scenario_reports
        .iter()
        .filter_map(|s| s.figures.errors_by_status.get("429"))
        .sum();
    if rate_limited > 0 {
        println!(
            "note: {rate_limited} requests were rate limited (429): start the mall with MALL__RATE_LIMIT__ENABLED=false"
        );
    }

    eprintln!("reading the state back to check the invariants...");
    let acks: Vec<scenarios::Ack> = outputs.iter().flat_map(|o| o.acks.clone()).collect();
    let sold_out_seen = outputs
        .iter()
        .filter(|o| o.scenario == Scenario::FlashSale)
        .filter_map(|o| o.rec.counters.get("sold_out_seen"))
        .sum();
    let mut all_products = seeded.products.clone();
    all_products.push(seeded.flash.clone());
    let state =
        invariants::read_state(&api, &seeded.admin_token, &all_products, &seeded.users).await;
    let checks = invariants::check(&seeded, &state, &acks, sold_out_seen);
    println!();
    println!(
        "orders by status: {}",
        invariants::status_counts(&state)
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for c in &checks {
        println!(
            "{} {:<28} {}",
            if c.pass { "PASS" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    let passed = checks.iter().all(|c| c.pass);

    if let Some(path) = &opts.report {
        let report = Report {
            run_id: run.clone(),
            started_at,
            parameters: Parameters {
                url: api.base().to_owned(),
                targets: api.targets().to_vec(),
                idempotency_keys: opts.idempotency_keys,
                scenarios: opts.scenarios.iter().map(|s| s.name().to_owned()).collect(),
                mode: if opts.sequential {
                    "sequential"
                } else {
                    "concurrent"
                }
                .to_owned(),
                duration_secs: opts.duration.as_secs_f64(),
                rate: opts.rate,
                concurrency: opts.concurrency,
                users: seeded.users.len(),
                products: seeded.products.len(),
                flash_stock: opts.flash_stock,
                flash_pay: opts.flash_pay,
                timeout_secs: opts.timeout.as_secs_f64(),
            },
            seed: SeedReport {
                users: seeded.users.len(),
                products: seeded.products.len() + 1,
                secs: seeded.elapsed.as_secs_f64(),
            },
            failovers: scenario_reports.iter().map(|s| s.figures.failovers).sum(),
            retried_503: scenario_reports.iter().map(|s| s.figures.retried_503).sum(),
            scenarios: scenario_reports,
            targets: target_reports,
            invariants: checks,
            passed,
        };
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        match written {
            Ok(()) => eprintln!("report written to {}", path.display()),
            Err(e) => {
                eprintln!(
                    "mall-load: cannot write the report to {}: {e}",
                    path.display()
                );
                if passed {
                    return EXIT_CANNOT_RUN;
                }
            }
        }
    }
    if passed { 0 } else { EXIT_INVARIANT_FAILED }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_even_with_the_remainder_first() {
        let s = split(10, &Scenario::ALL);
        let counts: Vec<usize> = s.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, vec![3, 3, 2, 2]);
        assert_eq!(split(4, &[Scenario::Cart]), vec![(Scenario::Cart, 4)]);
    }
}
