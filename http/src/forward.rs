//! Forwarding between nodes (DESIGN.md, "Cluster"): a request for an entity whose shard another
//! node owns goes, once, to that node's internal endpoint, `/internal/v1/forward` followed by
//! the original path and query. It carries the caller's headers (their token: the owner
//! authenticates them again; their `Idempotency-Key`), the request's deadline and an HMAC-SHA256
//! signature made with `cluster.secret` over the method, path, deadline and body, so no one
//! without the secret can use the endpoint, nor replay a signed request past its deadline.

use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use mall_actors::runtime::Deadline;

/// The internal endpoint's prefix.
pub const PREFIX: &str = "/internal/v1/forward";
/// The signature header (hex HMAC-SHA256).
pub const SIGNATURE_HEADER: &str = "x-mall-signature";
/// The deadline header (a [`Deadline`] as JSON: microseconds since the Unix epoch).
pub const DEADLINE_HEADER: &str = "x-mall-deadline";
/// The shard a forwarded request is routed by, and the shard a 421 names (the entity lives
/// there).
pub use crate::error::SHARD_HEADER;
/// The sending node's id (for logs).
pub const FROM_HEADER: &str = "x-mall-from";

/// Headers that belong to one connection, or that the forwarder sets itself.
const NOT_FORWARDED: [&str; 9] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "host",
    "content-length",
    "proxy-connection",
    "trailer",
];

/// The W3C trace context headers, set from the current span rather than copied.
const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// The current span's trace context as W3C headers (none when no trace is recorded).
fn trace_context() -> Vec<(String, String)> {
    use opentelemetry::propagation::TextMapPropagator as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let cx = tracing::Span::current().context();
    let mut headers = std::collections::HashMap::new();
    opentelemetry_sdk::propagation::TraceContextPropagator::new().inject_context(&cx, &mut headers);
    headers.into_iter().collect()
}

/// Marks a request that came through the internal endpoint with a valid signature: it is
/// served here or refused with 421, never forwarded again, and not rate-limited twice.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded {
    /// The deadline the sender's caller set.
    pub deadline: Deadline,
    /// The shard the sender routed it by (an entity of another user's shard, as an order an
    /// admin reads, goes by that shard rather than by its caller's).
    pub shard: Option<u32>,
}

tokio::task_local! {
    /// The deadline of the forwarded request being served by this task, if any.
    pub static FORWARDED_DEADLINE: Deadline;
}

/// The deadline of a request served here: the one a forwarded request carries (when the
/// current task serves one), else `fresh`.
pub fn deadline_or(fresh: Deadline) -> Deadline {
    FORWARDED_DEADLINE
        .try_with(|d| *d)
        .map_or(fresh, |carried| carried.min(fresh))
}

fn mac(
    secret: &[u8],
    method: &Method,
    path_and_query: &str,
    deadline: &str,
    body: &[u8],
) -> Option<Hmac<Sha256>> {
    // HMAC takes a key of any length: this never fails.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    for part in [
        method.as_str().as_bytes(),
        path_and_query.as_bytes(),
        deadline.as_bytes(),
    ] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.update(body);
    Some(mac)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The signature of a forwarded request.
pub fn sign(
    secret: &[u8],
    method: &Method,
    path_and_query: &str,
    deadline: &str,
    body: &[u8],
) -> String {
    mac(secret, method, path_and_query, deadline, body)
        .map(|m| hex(&m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// Checks a forwarded request's signature (in constant time) and that its deadline has not
/// passed; answers the deadline it carries.
pub fn verify(
    secret: &[u8],
    method: &Method,
    path_and_query: &str,
    deadline: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Option<Deadline> {
    let (deadline_text, signature) = (deadline?, unhex(signature?)?);
    mac(secret, method, path_and_query, deadline_text, body)?
        .verify_slice(&signature)
        .ok()?;
    let deadline: Deadline = serde_json::from_str(deadline_text).ok()?;
    (!deadline.passed()).then_some(deadline)
}

/// Why a forward got no answer from the owner.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The owner could not be reached (nothing was sent): another owner may be on its way.
    #[error("could not connect to {0}")]
    Connect(String),
    /// The request was sent but no answer came (it may or may not have taken effect).
    #[error("no answer from {url}: {why}")]
    NoAnswer {
        /// The owner's URL.
        url: String,
        /// What happened.
        why: String,
    },
}

/// Sends requests to other nodes' internal endpoints.
#[derive(Clone)]
pub struct Forwarder {
    secret: Vec<u8>,
    node_id: String,
}

thread_local! {
    /// One client per thread. Each actix worker runs its own runtime, and a pooled connection
    /// is driven by the runtime that opened it: shared between workers, a connection would die
    /// with the first worker to stop (as a node shuts down) under a request of another's.
    static CLIENT: std::cell::OnceCell<Result<reqwest::Client, String>> =
        const { std::cell::OnceCell::new() };
}

fn client() -> Result<reqwest::Client, String> {
    CLIENT.with(|cell| {
        cell.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(1))
                .pool_idle_timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| format!("the forwarding client: {e}"))
        })
        .clone()
    })
}

impl Forwarder {
    /// A forwarder signing with `secret`, naming itself `node_id`.
    pub fn new(secret: &str, node_id: &str) -> Result<Forwarder, String> {
        // Fails here, at start-up, rather than on the first forward.
        client()?;
        Ok(Forwarder {
            secret: secret.as_bytes().to_vec(),
            node_id: node_id.to_owned(),
        })
    }

    /// The secret requests are signed with.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// Forwards the request `head` with `body`, for `shard`, to the node at `base_url`, by
    /// `deadline`, under this node's `request_id` for it.
    pub async fn send(
        &self,
        base_url: &str,
        head: &HttpRequest,
        body: Bytes,
        shard: u32,
        deadline: Deadline,
        request_id: Option<&str>,
    ) -> Result<HttpResponse, ForwardError> {
        let path_and_query = head
            .uri()
            .path_and_query()
            .map_or_else(|| head.uri().path().to_owned(), |p| p.as_str().to_owned());
        let url = format!("{base_url}{PREFIX}{path_and_query}");
        let deadline_text = serde_json::to_string(&deadline).unwrap_or_default();
        let signature = sign(
            &self.secret,
            head.method(),
            &path_and_query,
            &deadline_text,
            &body,
        );
        let client = client().map_err(|why| ForwardError::NoAnswer {
            url: url.clone(),
            why,
        })?;
        let mut request = client
            .request(
                reqwest::Method::from_bytes(head.method().as_str().as_bytes())
                    .unwrap_or(reqwest::Method::GET),
                &url,
            )
            .timeout(deadline.remaining())
            .header(SIGNATURE_HEADER, signature)
            .header(DEADLINE_HEADER, deadline_text)
            .header(FROM_HEADER, self.node_id.as_str())
            .header(SHARD_HEADER, shard);
        for (name, value) in head.headers() {
            let name = name.as_str();
            if !NOT_FORWARDED.contains(&name)
                && !name.starts_with("x-mall-")
                && !TRACE_HEADERS.contains(&name)
                && name != "x-request-id"
            {
                request = request.header(name, value.as_bytes());
            }
        }
        // One request id and one trace across both nodes: the owner's spans are children of
        // this node's request span.
        if let Some(id) = request_id {
            request = request.header("x-request-id", id);
        }
        for (name, value) in trace_context() {
            request = request.header(name, value);
        }
        let sent = request.body(body).send().await.map_err(|e| {
            if e.is_connect() {
                ForwardError::Connect(url.clone())
            } else {
                ForwardError::NoAnswer {
                    url: url.clone(),
                    why: e.to_string(),
                }
            }
        })?;
        let status = StatusCode::from_u16(sent.status().as_u16())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = HttpResponse::build(status);
        for (name, value) in sent.headers() {
            if !NOT_FORWARDED.contains(&name.as_str()) && name.as_str() != "date" {
                response.append_header((name.as_str(), value.as_bytes()));
            }
        }
        let bytes = sent.bytes().await.map_err(|e| ForwardError::NoAnswer {
            url,
            why: e.to_string(),
        })?;
        Ok(response.body(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_binds_method_path_deadline_and_body() {
        let secret = b"s3cret";
        let deadline = serde_json::to_string(&Deadline::after(Duration::from_secs(5))).unwrap();
        let sig = sign(
            secret,
            &Method::POST,
            "/api/v1/cart/items",
            &deadline,
            b"{}",
        );
        let ok = |m: &Method, p: &str, b: &[u8], s: &str, key: &[u8]| {
            verify(key, m, p, Some(&deadline), Some(s), b).is_some()
        };
        assert!(ok(&Method::POST, "/api/v1/cart/items", b"{}", &sig, secret));
        assert!(!ok(&Method::PUT, "/api/v1/cart/items", b"{}", &sig, secret));
        assert!(!ok(&Method::POST, "/api/v1/cart", b"{}", &sig, secret));
        assert!(!ok(
            &Method::POST,
            "/api/v1/cart/items",
            b"{ }",
            &sig,
            secret
        ));
        assert!(!ok(
            &Method::POST,
            "/api/v1/cart/items",
            b"{}",
            &sig,
            b"other"
        ));
        assert!(!ok(
            &Method::POST,
            "/api/v1/cart/items",
            b"{}",
            "zz",
            secret
        ));
        assert!(
            verify(
                secret,
                &Method::POST,
                "/api/v1/cart/items",
                None,
                Some(&sig),
                b"{}"
            )
            .is_none()
        );
    }

    #[test]
    fn a_signed_request_past_its_deadline_is_refused() {
        let secret = b"s3cret";
        let gone = serde_json::to_string(&Deadline::after(Duration::ZERO)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        let sig = sign(secret, &Method::GET, "/api/v1/cart", &gone, b"");
        assert!(
            verify(
                secret,
                &Method::GET,
                "/api/v1/cart",
                Some(&gone),
                Some(&sig),
                b""
            )
            .is_none()
        );
    }
}
