//! `actor-memory`: activates many idle carts in the entity runtime (no I/O: each loads an empty
//! cart state from memory) and reports the resident memory each one costs and how fast they
//! were activated. `actor-memory [--actors N] [--concurrency N]`; defaults 1,000,000 and 1,000.
//!
//! An idle cart here is what the runtime keeps for a real one between turns: a `Host` actor
//! (its context and bounded mailbox, on one of the kind's arbiter threads), its cached
//! `CartState` (empty, as an idle cart that was read), and its entry in the registry (the
//! address and the least-recently-used bookkeeping).

use std::time::{Duration, Instant};

use actix::{Message, System};
use futures_util::StreamExt as _;

use mall_actors::cart::CartState;
use mall_actors::runtime::{
    Deadline, Host, Kind, Registry, RuntimeConfig, RuntimeError, RuntimeMetrics,
};

/// A cart kind whose load is in memory: the runtime's and the state's cost alone.
struct IdleCart;

/// Touch a cart (activate it and keep it resident).
#[derive(Debug, Clone)]
struct Touch;

impl Message for Touch {
    type Result = bool;
}

impl Kind for IdleCart {
    type Key = i64;
    type Deps = ();
    type State = CartState;
    type Cmd = Touch;
    type Reply = bool;
    const KIND: &'static str = "idle_cart";

    async fn load(_deps: (), _key: i64) -> Result<CartState, bool> {
        Ok(CartState::absent())
    }

    async fn turn(
        _deps: (),
        _key: i64,
        state: CartState,
        _cmd: Touch,
        _answer_by: Option<Deadline>,
    ) -> (Option<CartState>, bool) {
        (Some(state), true)
    }

    fn refused(_why: RuntimeError) -> bool {
        false
    }
}

/// This process's resident memory in bytes (Linux: `/proc/self/statm`).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn arg(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.replace('_', "").parse().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{name} wants a positive number")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!(
            "actor-memory [--actors N] [--concurrency N]: resident memory per idle cart actor"
        );
        return;
    }
    let (actors, concurrency) = match (
        arg(&args, "--actors", 1_000_000),
        arg(&args, "--concurrency", 1_000),
    ) {
        (Ok(a), Ok(c)) => (a, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("actor-memory: {e}");
            std::process::exit(2);
        }
    };
    let system = System::new();
    let outcome = system.block_on(async move {
        let metrics = RuntimeMetrics::new(&prometheus::Registry::new())
            .map_err(|e| format!("metrics: {e}"))?;
        let config = RuntimeConfig {
            max_resident: actors + 1,
            idle_timeout: Duration::from_secs(24 * 3600),
            call_timeout: Duration::from_secs(60),
            ..RuntimeConfig::default()
        };
        let registry = Registry::<Host<IdleCart>>::new((), config, &metrics);
        let before = resident_bytes().ok_or("cannot read /proc/self/statm")?;
        let started = Instant::now();
        let touched = futures_util::stream::iter(0..actors as i64)
            .map(|key| {
                let registry = &registry;
                async move { registry.call(&key, Touch).await == Ok(true) }
            })
            .buffer_unordered(concurrency)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await;
        let took = started.elapsed();
        let after = resident_bytes().ok_or("cannot read /proc/self/statm")?;
        Ok::<_, String>((touched, registry.resident(), before, after, took))
    });
    match outcome {
        Ok((touched, resident, before, after, took)) => {
            let grown = after.saturating_sub(before);
            println!("actors touched: {touched} of {actors}; resident in the registry: {resident}");
            println!(
                "resident memory: {:.1} MiB before, {:.1} MiB after: {:.0} bytes per actor",
                before as f64 / 1_048_576.0,
                after as f64 / 1_048_576.0,
                grown as f64 / resident.max(1) as f64
            );
            println!(
                "activation: {:.1} s, {:.0} actors/s ({concurrency} at a time)",
                took.as_secs_f64(),
                touched as f64 / took.as_secs_f64().max(1e-9)
            );
            if touched != actors {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("actor-memory: {e}");
            std::process::exit(2);
        }
    }
}
