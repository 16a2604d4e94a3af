//! Runtime metrics, labelled by entity kind, registered in the process's one Prometheus registry.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

const BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Every runtime metric, for all kinds; cheap to clone.
#[derive(Clone)]
pub struct RuntimeMetrics {
    live: IntGaugeVec,
    mailbox_depth: IntGaugeVec,
    activations: IntCounterVec,
    passivations: IntCounterVec,
    evictions: IntCounterVec,
    deaths: IntCounterVec,
    mailbox_timeouts: IntCounterVec,
    mailbox_seconds: HistogramVec,
    handler_seconds: HistogramVec,
    timers_armed: IntCounterVec,
    timers_fired: IntCounterVec,
}

/// The metrics of one kind, resolved once (no label lookups on the hot path).
#[derive(Clone)]
pub struct KindMetrics {
    /// `actors_live{kind}`: resident actors.
    pub live: IntGauge,
    /// `actor_mailbox_depth{kind}`: calls sent to actors of the kind and not yet answered.
    pub mailbox_depth: IntGauge,
    /// `actor_activations_total{kind}`
    pub activations: IntCounter,
    /// `actor_passivations_total{kind}`: stopped after being idle.
    pub passivations: IntCounter,
    /// `actor_evictions_total{kind}`: stopped to stay under `actors.max_resident`.
    pub evictions: IntCounter,
    /// `actor_deaths_total{kind}`: found dead (a handler panicked).
    pub deaths: IntCounter,
    /// `actor_mailbox_timeouts_total{kind}`: calls that got no answer in time.
    pub mailbox_timeouts: IntCounter,
    /// `actor_mailbox_seconds{kind}`: time a message waited before its turn began.
    pub mailbox_seconds: Histogram,
    /// `actor_handler_seconds{kind}`: time a turn took.
    pub handler_seconds: Histogram,
    /// `actor_timers_armed_total{kind}`: deadline timers set.
    pub timers_armed: IntCounter,
    /// `actor_timers_fired_total{kind}`: deadline timers that went off.
    pub timers_fired: IntCounter,
}

impl RuntimeMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &["kind"]);
        let histogram = |name: &str, help: &str| {
            HistogramVec::new(
                HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
                &["kind"],
            )
        };
        let m = RuntimeMetrics {
            live: IntGaugeVec::new(
                Opts::new("actors_live", "Resident actors by kind"),
                &["kind"],
            )?,
            mailbox_depth: IntGaugeVec::new(
                Opts::new(
                    "actor_mailbox_depth",
                    "Calls sent to actors and not yet answered, by kind",
                ),
                &["kind"],
            )?,
            activations: counter("actor_activations_total", "Actors activated, by kind")?,
            passivations: counter(
                "actor_passivations_total",
                "Actors stopped after being idle, by kind",
            )?,
            evictions: counter(
                "actor_evictions_total",
                "Actors evicted to stay under max_resident, by kind",
            )?,
            deaths: counter(
                "actor_deaths_total",
                "Actors found dead (a handler panicked), by kind",
            )?,
            mailbox_timeouts: counter(
                "actor_mailbox_timeouts_total",
                "Calls that got no answer in time, by kind",
            )?,
            mailbox_seconds: histogram(
                "actor_mailbox_seconds",
                "Time a message waited in the mailbox, by kind",
            )?,
            handler_seconds: histogram("actor_handler_seconds", "Time a turn took, by kind")?,
            timers_armed: counter("actor_timers_armed_total", "Deadline timers set, by kind")?,
            timers_fired: counter(
                "actor_timers_fired_total",
                "Deadline timers that went off, by kind",
            )?,
        };
        registry.register(Box::new(m.live.clone()))?;
        registry.register(Box::new(m.mailbox_depth.clone()))?;
        registry.register(Box::new(m.activations.clone()))?;
        registry.register(Box::new(m.passivations.clone()))?;
        registry.register(Box::new(m.evictions.clone()))?;
        registry.register(Box::new(m.deaths.clone()))?;
        registry.register(Box::new(m.mailbox_timeouts.clone()))?;
        registry.register(Box::new(m.mailbox_seconds.clone()))?;
        registry.register(Box::new(m.handler_seconds.clone()))?;
        registry.register(Box::new(m.timers_armed.clone()))?;
        registry.register(Box::new(m.timers_fired.clone()))?;
        Ok(m)
    }

    /// The metrics of `kind`.
    pub fn kind(&self, kind: &str) -> KindMetrics {
        KindMetrics {
            live: self.live.with_label_values(&[kind]),
            mailbox_depth: self.mailbox_depth.with_label_values(&[kind]),
            activations: self.activations.with_label_values(&[kind]),
            passivations: self.passivations.with_label_values(&[kind]),
            evictions: self.evictions.with_label_values(&[kind]),
            deaths: self.deaths.with_label_values(&[kind]),
            mailbox_timeouts: self.mailbox_timeouts.with_label_values(&[kind]),
            mailbox_seconds: self.mailbox_seconds.with_label_values(&[kind]),
            handler_seconds: self.handler_seconds.with_label_values(&[kind]),
            timers_armed: self.timers_armed.with_label_values(&[kind]),
            timers_fired: self.timers_fired.with_label_values(&[kind]),
        }
    }
}
