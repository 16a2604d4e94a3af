//! The Prometheus registry and the HTTP-layer metrics, rendered at `/metrics`.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric the HTTP layer records; one per process, shared.
#[derive(Clone)]
pub struct Metrics {
    /// The registry everything is registered in (other layers add theirs).
    pub registry: Registry,
    /// `http_requests_total{method, route, status}`.
    pub requests: IntCounterVec,
    /// `http_request_duration_seconds{method, route, status}`.
    pub latency: HistogramVec,
    /// `db_pool_connections_in_use`.
    pub pool_in_use: IntGauge,
    /// `db_pool_connections_max`.
    pub pool_max: IntGauge,
    /// `db_rows_purged_total{table}`: expired rows deleted by housekeeping.
    pub purged: IntCounterVec,
    /// `dependency_up{dependency}`: 1 up, 0 down, as of the last scrape (see `telemetry::probes`).
    pub dependency_up: IntGaugeVec,
    /// `deadline_overdue_seconds{kind}`: how long ago the oldest pending deadline passed.
    pub deadline_overdue: GaugeVec,
}

impl Metrics {
    /// Creates and registers the metrics. Fails only on a programming error (duplicate names).
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method, route and status",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route", "status"],
        )?;
        let pool_in_use = IntGauge::new(
            "db_pool_connections_in_use",
            "Database connections checked out",
        )?;
        let pool_max = IntGauge::new("db_pool_connections_max", "Database pool size")?;
        let purged = IntCounterVec::new(
            Opts::new(
                "db_rows_purged_total",
                "Expired rows deleted by housekeeping, by table",
            ),
            &["table"],
        )?;
        let dependency_up = IntGaugeVec::new(
            Opts::new(
                "dependency_up",
                "Whether a dependency answered at the last scrape (1) or not (0)",
            ),
            &["dependency"],
        )?;
        let deadline_overdue = GaugeVec::new(
            Opts::new(
                "deadline_overdue_seconds",
                "How long ago the oldest pending deadline passed (0: none has), by kind",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(pool_in_use.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        registry.register(Box::new(purged.clone()))?;
        registry.register(Box::new(dependency_up.clone()))?;
        registry.register(Box::new(deadline_overdue.clone()))?;
        registry.register(Box::new(crate::telemetry::SPANS_DROPPED.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            pool_in_use,
            pool_max,
            purged,
            dependency_up,
            deadline_overdue,
        })
    }

    /// Records one finished request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// The Prometheus text exposition of every registered metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}
