//! Logs and traces: `tracing` events as JSON lines (or text) on stdout, each carrying the
//! `trace_id` and `span_id` of its span; spans exported over OTLP/HTTP when
//! `telemetry.otlp_endpoint` is set. Secrets never reach a field: handlers log ids, never bodies,
//! passwords or tokens.

pub mod export;
pub mod logs;
pub mod probes;
pub mod traceparent;

use std::sync::LazyLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogConfig, TelemetryConfig};

/// `telemetry_spans_dropped_total`: spans that found the export queue full. Process-wide, like
/// the subscriber it belongs to; every `Metrics` registry registers it.
pub static SPANS_DROPPED: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::IntCounter::new(
        "telemetry_spans_dropped_total",
        "Trace spans dropped because the export queue was full",
    )
    .unwrap_or_else(|e| unreachable!("a valid metric name: {e}"))
});

/// How long shutting down may take to send the spans still queued.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The tracer provider behind the subscriber; flush it with [`Telemetry::shutdown`] before the
/// process exits.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the queued spans (at most [`FLUSH_TIMEOUT`]) and stops the exporter. Blocking: call
    /// it outside the async runtime or in `spawn_blocking`.
    pub fn shutdown(mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown_with_timeout(FLUSH_TIMEOUT)
        {
            eprintln!("mall: flushing traces: {e}");
        }
    }
}

/// Builds the tracer provider: parent-based sampling by `sample_ratio`, and the queued OTLP
/// exporter when an endpoint is set (none otherwise: spans only give log lines their ids).
fn provider(cfg: &TelemetryConfig) -> SdkTracerProvider {
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(cfg.sample_ratio)));
    let resource = Resource::builder()
        .with_service_name(cfg.service_name.clone())
        .build();
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_resource(resource);
    if !cfg.otlp_endpoint.is_empty() {
        match export::QueuedExport::start(&cfg.otlp_endpoint, SPANS_DROPPED.clone()) {
            Ok(processor) => builder = builder.with_span_processor(processor),
            Err(e) => eprintln!("mall: telemetry.otlp_endpoint: {e}; traces are not exported"),
        }
    }
    builder.build()
}

/// Installs the global subscriber (`RUST_LOG`, when set, wins over `log.level`) and the tracer
/// provider. Call it once at start-up, before the async runtime starts (the OTLP client blocks).
pub fn init(log: &LogConfig, telemetry: &TelemetryConfig) -> Telemetry {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = provider(telemetry);
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("mall"));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(logs::TraceIds::default());
    let installed = if log.format == "json" {
        // JSON fields for spans, and the JSON event format with the ids added.
        let fmt = tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stdout)
            .event_format(logs::WithTraceIds(
                tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            ));
        registry.with(fmt).try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stdout))
            .try_init()
    };
    // A second call (tests) keeps the first subscriber.
    match installed {
        Ok(()) => Telemetry {
            provider: Some(provider),
        },
        Err(_) => Telemetry { provider: None },
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let env = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        Config::load_from(Some(Path::new("../config.toml")), env).map_err(|e| e.to_string())
    }

    #[test]
    fn telemetry_keys_load_and_bad_values_name_the_key() {
        let cfg = load(&[
            ("MALL__TELEMETRY__OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("MALL__TELEMETRY__SERVICE_NAME", "shop"),
            ("MALL__TELEMETRY__SAMPLE_RATIO", "0.25"),
        ])
        .unwrap();
        assert_eq!(cfg.telemetry.otlp_endpoint, "http://127.0.0.1:4318");
        assert_eq!(cfg.telemetry.service_name, "shop");
        assert!((cfg.telemetry.sample_ratio - 0.25).abs() < f64::EPSILON);
        for (key, value) in [
            ("MALL__TELEMETRY__OTLP_ENDPOINT", "127.0.0.1:4318"),
            ("MALL__TELEMETRY__SAMPLE_RATIO", "1.5"),
            ("MALL__TELEMETRY__SERVICE_NAME", ""),
        ] {
            let err = load(&[(key, value)]).unwrap_err();
            let name = key
                .trim_start_matches("MALL__")
                .replace("__", ".")
                .to_lowercase();
            assert!(err.contains(&name), "{key}={value}: {err}");
        }
    }
}
