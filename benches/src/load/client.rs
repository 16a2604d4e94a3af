//! A thin HTTP client over the mall's API: every call answers its status, its body and how long
//! it took (sending the request through reading the whole body).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

/// The status recorded for a request that got no HTTP answer (refused, reset, timed out).
pub const TRANSPORT_ERROR: u16 = 0;

/// One answer.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status, or [`TRANSPORT_ERROR`].
    pub status: u16,
    /// The body (for a transport error: the error's text).
    pub body: Vec<u8>,
    /// From sending to the last byte of the body.
    pub latency: Duration,
}

impl Reply {
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

/// The mall's API at one base URL. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`), never going through a proxy.
    pub fn new(base: &str, timeout: Duration) -> Result<Api, String> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `method path` (path from the root, e.g. `/api/v1/cart`), with a bearer token and a
    /// JSON body when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let started = Instant::now();
        let result = async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, body.to_vec()))
        }
        .await;
        let latency = started.elapsed();
        match result {
            Ok((status, body)) => Reply {
                status,
                body,
                latency,
            },
            Err(e) => Reply {
                status: TRANSPORT_ERROR,
                body: error_chain(&e).into_bytes(),
                latency,
            },
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
