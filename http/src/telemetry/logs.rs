//! Trace ids in log lines: a layer that notes each span's OpenTelemetry `trace_id` and `span_id`
//! as it opens, and a JSON event format that adds the ids of the event's span to the line.

use std::sync::OnceLock;

use opentelemetry::trace::TraceContextExt as _;
use tracing::dispatcher::WeakDispatch;
use tracing::span::{Attributes, Id};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// A span's ids as hex: 32 digits of trace, 16 of span.
#[derive(Debug, Clone)]
pub struct SpanIds {
    /// The trace the span belongs to.
    pub trace_id: String,
    /// The span itself.
    pub span_id: String,
}

/// Stores [`SpanIds`] in each new span's extensions. Must sit above the OpenTelemetry layer.
#[derive(Default)]
pub struct TraceIds {
    dispatch: OnceLock<WeakDispatch>,
}

impl<S> Layer<S> for TraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) else {
            return;
        };
        // No extension is held here: reading the context locks the span's extensions.
        let Some(cx) = tracing_opentelemetry::get_otel_context(id, &dispatch) else {
            return;
        };
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        let ids = SpanIds {
            trace_id: sc.trace_id().to_string(),
            span_id: sc.span_id().to_string(),
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(ids);
        }
    }
}

/// A JSON event format with `trace_id` and `span_id` added at the top level (when the event
/// happens inside a span).
pub struct WithTraceIds<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let ids = ctx
            .event_scope()
            .and_then(|mut scope| scope.next())
            .and_then(|span| span.extensions().get::<SpanIds>().cloned());
        match (ids, line.strip_suffix("}\n")) {
            (Some(ids), Some(object)) => {
                writeln!(
                    writer,
                    "{object},\"trace_id\":\"{}\",\"span_id\":\"{}\"}}",
                    ids.trace_id, ids.span_id
                )
            }
            _ => writer.write_str(&line),
        }
    }
}
