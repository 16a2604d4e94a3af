//! W3C trace context in: a request carrying `traceparent` (and `tracestate`) continues the
//! caller's trace. The middleware wraps everything inside it in the caller's context, so the
//! request span (opened by `observe`) takes the caller's span as its parent.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{FutureExt as _, TraceContextExt as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;

struct Headers<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The middleware function (see the module doc); outermost, around `observe`.
pub async fn traceparent<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let cx = TraceContextPropagator::new().extract(&Headers(req.headers()));
    if cx.span().span_context().is_valid() {
        next.call(req).with_context(cx).await
    } else {
        next.call(req).await
    }
}
