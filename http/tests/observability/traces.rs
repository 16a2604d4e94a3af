//! Traces over OTLP/HTTP, received by a small HTTP server inside the test that decodes the
//! protobuf export requests: a checkout continuing a caller's `traceparent` is one trace, with
//! the caller's span as the request's parent and child spans for the actor turn, the placement
//! batch and the database transactions; the request's log lines carry its trace id; a collector
//! that never answers costs requests nothing; with no endpoint nothing is sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use crate::harness::{App, Backend};
use crate::shop;

/// How long a stopping mall may take (it flushes its spans first).
const EXIT_WAIT: Duration = Duration::from_secs(30);

/// One received span.
#[derive(Debug, Clone)]
struct Got {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    attributes: BTreeMap<String, String>,
    service: String,
}

fn text_of(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/HTTP receiver on a free loopback port: answers every POST with 200 and keeps the
/// spans of the `ExportTraceServiceRequest` bodies it gets.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Got>>>,
    requests: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let (s, r) = (spans.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, s.clone(), r.clone()));
            }
        });
        Receiver {
            url,
            spans,
            requests,
        }
    }

    fn spans(&self) -> Vec<Got> {
        self.spans.lock().unwrap().clone()
    }

    fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }
}

/// HTTP/1.1 with keep-alive, enough for the exporter's POSTs.
async fn serve(mut stream: TcpStream, spans: Arc<Mutex<Vec<Got>>>, requests: Arc<Mutex<usize>>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..head_end + length).skip(head_end).collect();
        *requests.lock().unwrap() += 1;
        assert!(
            head.starts_with("post /v1/traces "),
            "unexpected request {head}"
        );
        let export = ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
        let mut got = Vec::new();
        for rs in export.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(text_of)
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    got.push(Got {
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        name: span.name.clone(),
                        attributes: span
                            .attributes
                            .iter()
                            .map(|kv| (kv.key.clone(), text_of(kv)))
                            .collect(),
                        service: service.clone(),
                    });
                }
            }
        }
        spans.lock().unwrap().extend(got);
        let answer =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// A fresh W3C trace context: (traceparent, trace id, caller's span id).
fn caller_context() -> (String, String, String) {
    let trace_id = Uuid::new_v4().simple().to_string();
    let span_id = Uuid::new_v4().simple().to_string()[..16].to_owned();
    (format!("00-{trace_id}-{span_id}-01"), trace_id, span_id)
}

/// The JSON log lines the mall wrote for the request `request_id`.
fn log_lines_of(stdout: &str, request_id: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["span"]["request_id"] == request_id || l["request_id"] == request_id)
        .collect()
}

/// True when `span` descends from the span `ancestor` in `spans`.
fn descends_from(spans: &[Got], span: &Got, ancestor: &str) -> bool {
    let mut current = span.parent_span_id.clone();
    for _ in 0..spans.len() {
        if current == ancestor {
            return true;
        }
        match spans.iter().find(|s| s.span_id == current) {
            Some(parent) => current = parent.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_continuing_a_traceparent_is_one_trace() {
    let receiver = Receiver::start().await;
    let mut app = App::start_with(Backend::Sqlite, |b| {
        b.env("MALL__TELEMETRY__OTLP_ENDPOINT", &receiver.url)
            .env("MALL__TELEMETRY__SERVICE_NAME", "mall-under-test")
    })
    .await;
    let token = shop::ready_to_check_out(&app).await;
    let (traceparent, trace_id, caller) = caller_context();
    let resp = shop::checkout(&app, &token, &[("traceparent", &traceparent)]).await;
    resp.expect(201);
    let request_id = resp.header("x-request-id").expect("x-request-id");

    // A graceful stop flushes every queued span before the process exits.
    app.server.process.terminate();
    app.server.process.wait_exit(EXIT_WAIT).await;
    let all = receiver.spans();
    let trace: Vec<Got> = all
        .iter()
        .filter(|s| s.trace_id == trace_id)
        .cloned()
        .collect();
    let names: Vec<&str> = trace.iter().map(|s| s.name.as_str()).collect();
    assert!(
        !trace.is_empty(),
        "no span of trace {trace_id} among {} received",
        all.len()
    );

    let request = trace
        .iter()
        .find(|s| s.parent_span_id == caller)
        .unwrap_or_else(|| panic!("no span has the caller's span {caller} as parent: {names:?}"));
    assert_eq!(request.name, "POST /api/v1/checkout", "{request:?}");
    assert_eq!(request.attributes["route"], "/api/v1/checkout");
    assert_eq!(request.attributes["status"], "201");
    assert_eq!(request.attributes["request_id"], request_id);
    assert!(request.attributes.contains_key("user_id"), "{request:?}");
    assert_eq!(request.service, "mall-under-test");

    let under_request = |name: &str| -> Vec<&Got> {
        trace
            .iter()
            .filter(|s| s.name == name && descends_from(&trace, s, &request.span_id))
            .collect()
    };
    let turns = under_request("actor.turn");
    assert!(
        turns
            .iter()
            .any(|s| s.attributes.get("kind").map(String::as_str) == Some("cart")),
        "no cart actor turn under the request: {trace:#?}"
    );
    assert!(
        turns
            .iter()
            .all(|s| s.attributes.contains_key("mailbox_wait_ms"))
    );
    let batches = under_request("placement.batch");
    assert_eq!(batches.len(), 1, "one placement batch: {names:?}");
    assert_eq!(batches[0].attributes["size"], "1");
    let transactions = under_request("db.transaction");
    assert!(
        transactions
            .iter()
            .any(|s| descends_from(&trace, s, &batches[0].span_id)),
        "no database transaction under the placement: {trace:#?}"
    );
    // Everything of this trace hangs off the request.
    for span in &trace {
        assert!(
            span.span_id == request.span_id || descends_from(&trace, span, &request.span_id),
            "{span:?} is not under the request"
        );
    }

    // The request's log lines carry the same trace id.
    let lines = log_lines_of(&app.server.process.stdout(), &request_id);
    assert!(!lines.is_empty(), "no log line of request {request_id}");
    for line in &lines {
        assert_eq!(line["trace_id"], trace_id.as_str(), "{line}");
        assert_eq!(line["span_id"].as_str().map(str::len), Some(16), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_never_answers_costs_requests_nothing() {
    // Accepts connections and never answers: every export waits for its own timeout.
    let black_hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", black_hole.local_addr().unwrap());
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = black_hole.accept().await {
            keep.lock().unwrap().push(stream);
        }
    });
    let mut app = App::start_with(Backend::Sqlite, |b| {
        b.env("MALL__TELEMETRY__OTLP_ENDPOINT", &url)
    })
    .await;
    let token = shop::ready_to_check_out(&app).await;
    shop::checkout(&app, &token, &[]).await.expect(201);
    let mut slowest = Duration::ZERO;
    for _ in 0..30 {
        let started = Instant::now();
        app.get("/api/v1/products", None).await.expect(200);
        slowest = slowest.max(started.elapsed());
    }
    // An export blocked on the collector takes its 3 s timeout; no request waited for one.
    assert!(
        slowest < Duration::from_millis(2500),
        "slowest request {slowest:?}"
    );
    let metrics = app.get("/metrics", None).await;
    assert!(
        metrics.text.contains("telemetry_spans_dropped_total"),
        "{}",
        metrics.text
    );
    app.server.process.terminate();
    let status = app.server.process.wait_exit(EXIT_WAIT).await;
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_sent_and_logs_still_carry_trace_ids() {
    let receiver = Receiver::start().await;
    // The exporter's standard variables point at the receiver: only the mall's key may enable it.
    let mut app = App::start_with(Backend::Sqlite, |b| {
        b.env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url).env(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            &format!("{}/v1/traces", receiver.url),
        )
    })
    .await;
    let (traceparent, trace_id, _) = caller_context();
    let resp = app
        .request(reqwest::Method::GET, "/api/v1/products")
        .header("traceparent", &traceparent)
        .send()
        .await;
    resp.expect(200);
    let request_id = resp.header("x-request-id").unwrap();
    app.server.process.terminate();
    app.server.process.wait_exit(EXIT_WAIT).await;
    assert_eq!(
        receiver.requests(),
        0,
        "spans were sent without an endpoint"
    );
    let lines = log_lines_of(&app.server.process.stdout(), &request_id);
    assert!(!lines.is_empty());
    for line in &lines {
        assert_eq!(line["trace_id"], trace_id.as_str(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_keeps_the_ratio_of_new_traces_and_follows_the_caller() {
    let receiver = Receiver::start().await;
    // Ratio 0: no new trace is kept, but a caller's decision is followed either way.
    let mut app = App::start_with(Backend::Sqlite, |b| {
        b.env("MALL__TELEMETRY__OTLP_ENDPOINT", &receiver.url)
            .env("MALL__TELEMETRY__SAMPLE_RATIO", "0")
    })
    .await;
    let (sampled, sampled_trace, _) = caller_context();
    let (unsampled, unsampled_trace, _) = caller_context();
    let unsampled = format!("{}-00", unsampled.trim_end_matches("-01"));
    app.get("/api/v1/products", None).await.expect(200);
    for traceparent in [&sampled, &unsampled] {
        app.request(reqwest::Method::GET, "/api/v1/products")
            .header("traceparent", traceparent)
            .send()
            .await
            .expect(200);
    }
    app.server.process.terminate();
    app.server.process.wait_exit(EXIT_WAIT).await;
    let traces: std::collections::BTreeSet<String> =
        receiver.spans().into_iter().map(|s| s.trace_id).collect();
    assert!(
        traces.contains(&sampled_trace),
        "the caller's sampled trace is kept"
    );
    assert!(
        !traces.contains(&unsampled_trace),
        "the caller's unsampled trace is not"
    );
    assert_eq!(traces.len(), 1, "no new trace at ratio 0: {traces:?}");
}
