//! The span export queue: finished spans go into a bounded queue (never waiting: a span that
//! does not fit is dropped and counted) and one thread of its own sends them in batches over
//! OTLP/HTTP, so a slow or dead collector costs a request nothing.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

/// Spans the queue holds; past it new spans are dropped.
pub const QUEUE_CAPACITY: usize = 2048;
/// Most spans in one export request.
const BATCH_MAX: usize = 512;
/// How long a span may wait for its batch to fill.
const BATCH_DELAY: Duration = Duration::from_secs(1);
/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

enum Item {
    Span(Box<SpanData>),
    /// Export what is queued, then answer.
    Flush(SyncSender<()>),
    /// The provider's resource (`service.name`), for the exporter.
    Resource(Resource),
}

/// A [`SpanProcessor`] with a bounded queue and an exporting thread (see the module doc).
pub struct QueuedExport {
    queue: SyncSender<Item>,
    dropped: prometheus::IntCounter,
}

impl std::fmt::Debug for QueuedExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedExport").finish_non_exhaustive()
    }
}

impl QueuedExport {
    /// Builds the OTLP/HTTP exporter for `endpoint` (a base URL; spans go to `/v1/traces`) and
    /// starts the exporting thread. Call it outside an async runtime: the HTTP client blocks.
    pub fn start(endpoint: &str, dropped: prometheus::IntCounter) -> Result<QueuedExport, String> {
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self::with_exporter(exporter, dropped))
    }

    /// Starts the exporting thread around any exporter.
    pub fn with_exporter<E: SpanExporter + 'static>(
        exporter: E,
        dropped: prometheus::IntCounter,
    ) -> QueuedExport {
        let (queue, items) = sync_channel(QUEUE_CAPACITY);
        // The thread ends when the processor (the queue's one sender) is dropped.
        if let Err(e) = std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || run(exporter, items))
        {
            eprintln!("mall: cannot start the span exporter: {e}");
        }
        QueuedExport { queue, dropped }
    }

    fn wait_for(&self, timeout: Duration) -> OTelSdkResult {
        let (done, answer) = sync_channel(1);
        self.queue
            .send_within(Item::Flush(done), timeout)
            .map_err(|_| OTelSdkError::Timeout(timeout))?;
        answer
            .recv_timeout(timeout)
            .map_err(|_| OTelSdkError::Timeout(timeout))
    }
}

/// `send_within` for a `SyncSender` (std has none): retries `try_send` until the deadline.
trait SendTimeout {
    fn send_within(&self, item: Item, timeout: Duration) -> Result<(), ()>;
}

impl SendTimeout for SyncSender<Item> {
    fn send_within(&self, mut item: Item, timeout: Duration) -> Result<(), ()> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.try_send(item) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => return Err(()),
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    item = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => return Err(()),
            }
        }
    }
}

/// The exporting thread: batches of at most `BATCH_MAX`, sent when full, after `BATCH_DELAY`,
/// on a flush, and when the queue closes.
fn run<E: SpanExporter>(mut exporter: E, items: Receiver<Item>) {
    let mut batch: Vec<SpanData> = Vec::with_capacity(BATCH_MAX);
    let mut oldest: Option<Instant> = None;
    let send = |exporter: &E, batch: &mut Vec<SpanData>| {
        if !batch.is_empty() {
            // A failed export loses its spans; the collector's absence must not pile them up.
            let _ = futures_executor::block_on(exporter.export(std::mem::take(batch)));
        }
    };
    loop {
        let wait = oldest.map_or(BATCH_DELAY, |t| BATCH_DELAY.saturating_sub(t.elapsed()));
        match items.recv_timeout(wait) {
            Ok(Item::Span(span)) => {
                oldest.get_or_insert_with(Instant::now);
                batch.push(*span);
                if batch.len() >= BATCH_MAX {
                    send(&exporter, &mut batch);
                    oldest = None;
                }
            }
            Ok(Item::Flush(done)) => {
                // Everything queued before the flush request is already in `batch`.
                send(&exporter, &mut batch);
                oldest = None;
                let _ = done.send(());
            }
            Ok(Item::Resource(resource)) => exporter.set_resource(&resource),
            Err(RecvTimeoutError::Timeout) => {
                send(&exporter, &mut batch);
                oldest = None;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    send(&exporter, &mut batch);
    let _ = exporter.shutdown_with_timeout(EXPORT_TIMEOUT);
}

impl SpanProcessor for QueuedExport {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.queue.try_send(Item::Span(Box::new(span))).is_err() {
            self.dropped.inc();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.wait_for(EXPORT_TIMEOUT)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        // The thread itself stops when the processor is dropped.
        self.wait_for(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        let _ = self
            .queue
            .send_within(Item::Resource(resource.clone()), EXPORT_TIMEOUT);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, mpsc};

    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;

    /// An exporter that holds every export until the gate opens (its sender is dropped).
    #[derive(Debug)]
    struct Gate {
        closed: Mutex<mpsc::Receiver<()>>,
        exported: Arc<AtomicUsize>,
    }

    impl SpanExporter for Gate {
        fn export(
            &self,
            batch: Vec<SpanData>,
        ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
            let _ = self.closed.lock().unwrap().recv();
            self.exported.fetch_add(batch.len(), Ordering::SeqCst);
            std::future::ready(Ok(()))
        }
    }

    #[test]
    fn a_stuck_exporter_drops_and_counts_what_does_not_fit_and_never_blocks_a_span() {
        let (gate, closed) = mpsc::channel::<()>();
        let exported = Arc::new(AtomicUsize::new(0));
        let dropped = prometheus::IntCounter::new("dropped", "dropped").unwrap();
        let exporter = Gate {
            closed: Mutex::new(closed),
            exported: exported.clone(),
        };
        let provider = SdkTracerProvider::builder()
            .with_span_processor(QueuedExport::with_exporter(exporter, dropped.clone()))
            .build();
        let tracer = provider.tracer("test");
        // The thread holds at most one batch while the export hangs; the queue holds the rest.
        let total = QUEUE_CAPACITY + BATCH_MAX + 100;
        for _ in 0..total {
            tracer.start("work").end();
        }
        let dropped_now = dropped.get() as usize;
        assert!(dropped_now >= 100, "only {dropped_now} of {total} dropped");
        drop(gate);
        provider.force_flush().unwrap();
        assert_eq!(exported.load(Ordering::SeqCst) + dropped_now, total);
        provider.shutdown().unwrap();
    }
}
