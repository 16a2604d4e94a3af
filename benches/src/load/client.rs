//! A thin HTTP client over the mall's API: every call answers its status, its body and how long
//! it took (sending the first attempt through reading the whole body of the last). It knows one
//! or several nodes of a mall cluster (the targets): each request goes first to the client's
//! home target, and fails over or is retried on the others as [`super::retry`] decides.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::RETRY_AFTER;
use serde_json::Value;

use super::retry::{self, Decision, Outcome, Policy, State};

/// The status recorded for a request that got no HTTP answer (refused, reset, timed out).
pub const TRANSPORT_ERROR: u16 = 0;

/// The request header that makes a POST safe to send again (API.md, Conventions).
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// One attempt of a request: where it went and what it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Index into the targets.
    pub target: usize,
    /// The HTTP status, or [`TRANSPORT_ERROR`].
    pub status: u16,
}

/// One answer.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status of the last attempt, or [`TRANSPORT_ERROR`].
    pub status: u16,
    /// The body (for a transport error: the error's text).
    pub body: Vec<u8>,
    /// From sending the first attempt to the last byte of the last one's body.
    pub latency: Duration,
    /// Every attempt, in order (the last one is the answer).
    pub attempts: Vec<Attempt>,
}

impl Reply {
    /// The attempts that got no answer and were sent again elsewhere.
    pub fn failovers(&self) -> u64 {
        self.retried(|a| a.status == TRANSPORT_ERROR)
    }

    /// The attempts answered 503 that were sent again.
    pub fn retried_503(&self) -> u64 {
        self.retried(|a| a.status == 503)
    }

    fn retried(&self, which: impl Fn(&Attempt) -> bool) -> u64 {
        let n = self.attempts.len().saturating_sub(1);
        self.attempts[..n].iter().filter(|a| which(a)).count() as u64
    }

    /// 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The `error.code` of an error body, if it has one.
    pub fn error_code(&self) -> Option<String> {
        self.json()
            .pointer("/error/code")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// A short description for messages: status, and the error code or the start of the body.
    pub fn describe(&self) -> String {
        if self.status == TRANSPORT_ERROR {
            return format!("no answer: {}", String::from_utf8_lossy(&self.body));
        }
        match self.error_code() {
            Some(code) => format!("{} {code}", self.status),
            None => {
                let text = String::from_utf8_lossy(&self.body);
                let text: String = text.chars().take(200).collect();
                format!("{} {text}", self.status)
            }
        }
    }
}

/// The mall's API on one or several nodes of one cluster. Cheap to clone (the connection pool
/// and the target list are shared).
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    targets: Arc<[String]>,
    home: usize,
    timeout: Duration,
    policy: Policy,
}

impl Api {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`), never going through a proxy.
    pub fn new(base: &str, timeout: Duration) -> Result<Api, String> {
        Api::cluster(&[base.to_owned()], timeout)
    }

    /// A client for the nodes `targets` of one mall, at home on the first, failing over and
    /// retrying as [`Policy::RETRY`] says. Never goes through a proxy.
    pub fn cluster(targets: &[String], timeout: Duration) -> Result<Api, String> {
        if targets.is_empty() {
            return Err("no target to send requests to".to_owned());
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .pool_idle_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Api {
            http,
            targets: targets
                .iter()
                .map(|t| t.trim_end_matches('/').to_owned())
                .collect(),
            home: 0,
            timeout,
            policy: Policy::RETRY,
        })
    }

    /// The same client at home on target `i % n` (client `i` of a run spreads over the
    /// targets round-robin).
    pub fn homed(&self, i: usize) -> Api {
        Api {
            home: i % self.targets.len(),
            ..self.clone()
        }
    }

    /// The same client following `policy`.
    pub fn with_policy(&self, policy: Policy) -> Api {
        Api {
            policy,
            ..self.clone()
        }
    }

    /// The home target's base URL.
    pub fn base(&self) -> &str {
        &self.targets[self.home]
    }

    /// Every target's base URL, in the order given.
    pub fn targets(&self) -> &[String] {
        &self.targets
    }

    /// Sends `method path` (path from the root, e.g. `/api/v1/cart`), with a bearer token and a
    /// JSON body when given; to the home target first, then wherever the policy says.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        self.send(method, path, token, body, None).await
    }

    /// [`call`](Self::call) with an `Idempotency-Key` when `key` is given (the same on every
    /// attempt).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Reply {
        let started = Instant::now();
        let mut state = State::new(self.targets.len(), self.home);
        let mut attempts = Vec::with_capacity(1);
        loop {
            let remaining = self.timeout.saturating_sub(started.elapsed());
            let (outcome, status, body_bytes) = self
                .attempt(
                    method.clone(),
                    state.current,
                    path,
                    token,
                    body,
                    key,
                    remaining,
                )
                .await;
            attempts.push(Attempt {
                target: state.current,
                status,
            });
            let remaining = self.timeout.saturating_sub(started.elapsed());
            let decision = retry::decide(&self.policy, &state, outcome, remaining);
            state.apply(outcome, decision);
            match decision {
                Decision::Done => {
                    return Reply {
                        status,
                        body: body_bytes,
                        latency: started.elapsed(),
                        attempts,
                    };
                }
                Decision::Failover { .. } => {}
                Decision::Retry503 { pause, .. } => tokio::time::sleep(pause).await,
            }
        }
    }

    /// One attempt at `target` within `budget`: its outcome for the retry rules, its status
    /// ([`TRANSPORT_ERROR`] without an answer) and its body (the error's text without one).
    #[expect(
        clippy::too_many_arguments,
        reason = "one request's parts, passed through from send"
    )]
    async fn attempt(
        &self,
        method: Method,
        target: usize,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
        budget: Duration,
    ) -> (Outcome, u16, Vec<u8>) {
        if budget.is_zero() {
            return (Outcome::NoAnswer, TRANSPORT_ERROR, b"timed out".to_vec());
        }
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.targets[target]))
            .timeout(budget);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = key {
            req = req.header(IDEMPOTENCY_KEY, k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => {
                return (
                    Outcome::NoAnswer,
                    TRANSPORT_ERROR,
                    error_chain(&e).into_bytes(),
                );
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry::parse_retry_after);
        let answered = Outcome::Answered {
            status,
            retry_after,
        };
        match resp.bytes().await {
            Ok(bytes) => (answered, status, bytes.to_vec()),
            // The server answered, then the body broke off: not a request to send again (it
            // may have had its effect), but no usable answer either.
            Err(e) => (
                Outcome::Answered {
                    status: TRANSPORT_ERROR,
                    retry_after: None,
                },
                TRANSPORT_ERROR,
                error_chain(&e).into_bytes(),
            ),
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// `POST path` with a JSON body and, when given, an `Idempotency-Key`.
    pub async fn post_keyed(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        key: Option<&str>,
    ) -> Reply {
        self.send(Method::POST, path, token, Some(body), key).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    /// `DELETE path`, no body.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::DELETE, path, token, None).await
    }
}

/// An error with its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
