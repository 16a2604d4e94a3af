//! The placement desk: every new order (from `POST /orders` and from checkout) is placed here, in
//! batches. Each lane is a task that takes every placement waiting for it, places them in one
//! transaction ([`placements::place`]), and answers each caller. While a batch commits the next
//! one gathers, so batches grow with the load by themselves, and an idle lane places a lone
//! order at once: nobody waits for a batch to fill.
//!
//! An order goes to the lane of its lowest product id, so the buyers of one hot product share a
//! lane and its batches; lanes run side by side on PostgreSQL. SQLite has one writer, so there
//! the desk runs a single lane.

use std::sync::Arc;

use futures_util::FutureExt;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use mall_db::repo::placements::{self, PlaceError, Placed, Placement};
use mall_db::{Db, DbError};

use crate::runtime::Deadline;

/// How the desk is laid out.
#[derive(Debug, Clone)]
pub struct PlacementConfig {
    /// Lanes placing batches side by side on PostgreSQL (at least 1; SQLite always has one).
    pub lanes: usize,
    /// Most orders in one transaction (1: no batching).
    pub max_batch: usize,
    /// Placements a lane holds waiting before callers wait to hand theirs in.
    pub queue: usize,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            lanes: 4,
            max_batch: 64,
            queue: 4096,
        }
    }
}

/// `order_placement_batch_size` (orders per transaction), `order_placements_waiting` and
/// `order_placements_total` (handed in).
#[derive(Clone)]
struct PlacementMetrics {
    batch: Histogram,
    waiting: IntGauge,
    handed_in: IntCounter,
}

impl PlacementMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let batch = Histogram::with_opts(
            HistogramOpts::new(
                "order_placement_batch_size",
                "Orders placed per database transaction",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        )?;
        let waiting = IntGauge::new(
            "order_placements_waiting",
            "Placements handed in and not yet taken into a batch",
        )?;
        let handed_in = IntCounter::new(
            "order_placements_total",
            "Placements handed in to the placement desk",
        )?;
        registry.register(Box::new(batch.clone()))?;
        registry.register(Box::new(waiting.clone()))?;
        registry.register(Box::new(handed_in.clone()))?;
        Ok(PlacementMetrics {
            batch,
            waiting,
            handed_in,
        })
    }
}

struct Job {
    placement: Placement,
    answer_by: Deadline,
    reply: oneshot::Sender<Result<Placed, PlaceError>>,
    /// The caller's span: the batch's parent (the first job's) or a link (the others').
    span: tracing::Span,
}

/// Hands placements to the lanes; cheap to clone.
#[derive(Clone)]
pub struct Placer {
    lanes: Arc<Vec<mpsc::Sender<Job>>>,
    metrics: PlacementMetrics,
}

fn unavailable(why: &str) -> PlaceError {
    PlaceError::Db(DbError::Unavailable(why.to_owned()))
}

impl Placer {
    /// Starts the lanes on the current actix arbiter (call inside an actix `System`).
    pub fn start(
        db: Db,
        config: PlacementConfig,
        registry: &Registry,
    ) -> Result<Placer, prometheus::Error> {
        let metrics = PlacementMetrics::new(registry)?;
        // SQLite has one writer: more lanes would only take turns at it, with smaller batches
        // (measured: fewer purchases per second and a longer tail than with one lane).
        let lanes = match db.backend() {
            mall_db::Backend::Sqlite => 1,
            mall_db::Backend::Postgres => config.lanes.max(1),
        };
        let lanes = (0..lanes)
            .map(|lane| {
                let (tx, rx) = mpsc::channel(config.queue.max(1));
                actix::spawn(run_lane(
                    db.clone(),
                    lane,
                    rx,
                    config.max_batch.max(1),
                    metrics.clone(),
                ));
                tx
            })
            .collect();
        Ok(Placer {
            lanes: Arc::new(lanes),
            metrics,
        })
    }

    fn lane_of(&self, placement: &Placement) -> &mpsc::Sender<Job> {
        let first = placement
            .lines
            .iter()
            .map(|l| l.product_id)
            .min()
            .unwrap_or(0);
        // Fibonacci hashing spreads time-ordered ids evenly over the lanes.
        let h = (first as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        &self.lanes[(h % self.lanes.len() as u64) as usize]
    }

    /// Places one order (with its checkout part, if any) and waits for the answer until
    /// `answer_by`, the deadline of the request it serves. Giving up answers `Unavailable`; a
    /// placement not yet taken into a batch by then is dropped, one already in a transaction
    /// may still commit, unless its `Idempotency-Key` was released meanwhile (the binding then
    /// fails and rolls it back).
    pub async fn place(
        &self,
        placement: Placement,
        answer_by: Deadline,
    ) -> Result<Placed, PlaceError> {
        let (reply, answer) = oneshot::channel();
        let lane = self.lane_of(&placement);
        let job = Job {
            placement,
            answer_by,
            reply,
            span: tracing::Span::current(),
        };
        let until = tokio::time::Instant::from_std(answer_by.instant());
        self.metrics.waiting.inc();
        match tokio::time::timeout_at(until, lane.send(job)).await {
            Ok(Ok(())) => self.metrics.handed_in.inc(),
            Ok(Err(_)) => {
                self.metrics.waiting.dec();
                return Err(unavailable("the placement desk stopped"));
            }
            Err(_) => {
                self.metrics.waiting.dec();
                return Err(unavailable("timed out handing in the order"));
            }
        }
        match tokio::time::timeout_at(until, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(unavailable("the order was not placed")),
            Err(_) => Err(unavailable("timed out waiting for the order to be placed")),
        }
    }

    /// Placements handed in so far.
    pub fn handed_in(&self) -> u64 {
        self.metrics.handed_in.get()
    }
}

/// One lane: batch after batch until every `Placer` is dropped.
async fn run_lane(
    db: Db,
    lane: usize,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    metrics: PlacementMetrics,
) {
    let mut jobs = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        metrics.waiting.sub(jobs.len() as i64);
        let conn = db.write().await;
        // Only now, with the connection in hand: a caller that gave up meanwhile was answered
        // 503 already, and its order must not be placed behind its back.
        jobs.retain(|j| !j.reply.is_closed() && !j.answer_by.passed());
        if jobs.is_empty() {
            continue;
        }
        let span = batch_span(&jobs, lane);
        let (batch, replies): (Vec<Placement>, Vec<_>) =
            jobs.drain(..).map(|j| (j.placement, j.reply)).unzip();
        metrics.batch.observe(batch.len() as f64);
        let answers = match conn {
            Ok(mut conn) => {
                std::panic::AssertUnwindSafe(placements::place(&mut conn, &batch))
                    .catch_unwind()
                    .instrument(span)
                    .await
            }
            Err(e) => {
                let why = e.to_string();
                Ok(batch.iter().map(|_| Err(unavailable(&why))).collect())
            }
        };
        match answers {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            // A bug: its callers learn through their dropped replies; the lane goes on.
            Err(_) => tracing::error!(orders = batch.len(), "placing a batch panicked"),
        }
    }
}

/// The span of one batch: a child of its first caller's span, linked to every other caller's, so
/// each checkout's trace reaches the transaction that placed its order.
fn batch_span(jobs: &[Job], lane: usize) -> tracing::Span {
    let parent = jobs.first().map(|j| j.span.id());
    let span =
        tracing::info_span!(parent: parent.flatten(), "placement.batch", size = jobs.len(), lane);
    for job in jobs.iter().skip(1) {
        span.follows_from(&job.span);
    }
    span
}
