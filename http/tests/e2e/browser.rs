//! A small WebDriver client for the storefront tests: starts its own `chromedriver` (Debian's
//! `chromium-driver`) on a free port with a fresh Chromium profile, whose every request for
//! another host goes to a [`Spy`] proxy that counts them; finds controls by the accessible name
//! the browser itself computes; writes screenshots when a flow fails.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a control or a text may take to appear.
pub const WAIT: Duration = Duration::from_secs(15);

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A listener standing in for the internet: Chromium sends every request for a host other than
/// this machine's loopback to it, and it only counts and hangs up.
pub struct Spy {
    pub port: u16,
    hits: Arc<AtomicUsize>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Spy {
    fn start() -> Spy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the spy proxy");
        let port = listener.local_addr().expect("spy address").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (h, s) = (hits.clone(), seen.clone());
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                h.fetch_add(1, Ordering::SeqCst);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(3)));
                let mut buf = [0u8; 512];
                let n = conn.read(&mut buf).unwrap_or(0);
                let first = String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                s.lock().expect("spy log").push(first);
                let _ = conn.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
            }
        });
        Spy { port, hits, seen }
    }

    /// The requests that tried to leave the host (their first lines), less those of
    /// Chromium's own background services (updates, accounts, autofill, its start page), which
    /// no page asked for.
    pub fn requests(&self) -> Vec<String> {
        let _ = self.hits.load(Ordering::SeqCst);
        const BROWSER_OWN: [&str; 4] = [
            ".google.com",
            "googleapis.com",
            "gvt1.com",
            "start.duckduckgo.com",
        ];
        self.seen
            .lock()
            .expect("spy log")
            .iter()
            // A connection that asked for nothing is Chromium warming up its proxy connection.
            .filter(|line| !line.is_empty())
            .filter(|line| {
                let target = line.split(' ').nth(1).unwrap_or_default();
                !BROWSER_OWN.iter().any(|h| target.contains(h))
            })
            .cloned()
            .collect()
    }
}

/// A reference to an element of the page.
#[derive(Clone, Debug)]
pub struct El {
    id: String,
    what: String,
}

impl El {
    fn json(&self) -> Value {
        json!({ ELEMENT: self.id })
    }
}

/// A browser session.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    http: reqwest::Client,
    _profile: TempDir,
    pub spy: Spy,
    /// Where failure screenshots go.
    pub shots: PathBuf,
    name: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with an English UI and a 1000x800 window.
    pub async fn start(name: &str) -> Browser {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "the storefront tests need Debian's chromium and chromium-driver \
             (apt-get install chromium chromium-driver; .ci/run installs them)"
        );
        let spy = Spy::start();
        let profile = TempDir::new().expect("a Chromium profile directory");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        // chromedriver takes a port number; another process may take the one we picked first.
        for _attempt in 0..5 {
            let port = free_port();
            let mut driver = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("spawn chromedriver");
            let start = Instant::now();
            let mut ready = false;
            while start.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = driver.try_wait() {
                    break;
                }
                if let Ok(r) = http
                    .get(format!("http://127.0.0.1:{port}/status"))
                    .send()
                    .await
                    && let Ok(v) = r.json::<Value>().await
                    && v["value"]["ready"] == json!(true)
                {
                    ready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !ready {
                let _ = driver.kill();
                let _ = driver.wait();
                continue;
            }
            let args = vec![
                "--headless".to_owned(),
                "--no-sandbox".to_owned(),
                "--disable-gpu".to_owned(),
                "--disable-quic".to_owned(),
                "--no-first-run".to_owned(),
                "--disable-background-networking".to_owned(),
                "--disable-component-update".to_owned(),
                "--disable-sync".to_owned(),
                "--disable-dev-shm-usage".to_owned(),
                "--disable-default-apps".to_owned(),
                "--disable-domain-reliability".to_owned(),
                "--disable-client-side-phishing-detection".to_owned(),
                "--disable-features=AutofillServerCommunication,OptimizationHints,\
                 OptimizationGuideModelDownloading,PasswordLeakDetection,MediaRouter"
                    .to_owned(),
                "--password-store=basic".to_owned(),
                "--lang=en-US".to_owned(),
                "--window-size=1000,800".to_owned(),
                format!("--user-data-dir={}", profile.path().display()),
                // Everything not on loopback goes to the spy (loopback bypasses proxies).
                format!("--proxy-server=http://127.0.0.1:{}", spy.port),
            ];
            let caps = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": args,
                    "prefs": {
                        "intl.accept_languages": "en-US,en",
                        "credentials_enable_service": false,
                        "profile.password_manager_enabled": false,
                        "profile.password_manager_leak_detection": false,
                        "autofill.profile_enabled": false,
                        "autofill.credit_card_enabled": false,
                    },
                },
                "goog:loggingPrefs": {"browser": "ALL"},
                "unhandledPromptBehavior": "ignore",
            }}});
            let resp = http
                .post(format!("http://127.0.0.1:{port}/session"))
                .json(&caps)
                .send()
                .await
                .expect("create a WebDriver session");
            let body: Value = resp.json().await.expect("session JSON");
            let Some(session) = body["value"]["sessionId"].as_str() else {
                panic!("chromedriver refused the session: {body}");
            };
            let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-shots");
            std::fs::create_dir_all(&shots).expect("screenshot directory");
            return Browser {
                driver,
                port,
                session: session.to_owned(),
                http,
                _profile: profile,
                spy,
                shots,
                name: name.to_owned(),
            };
        }
        panic!("chromedriver did not become ready");
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/session/{}{}",
            self.port, self.session, path
        );
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        } else if method == reqwest::Method::POST {
            req = req.json(&json!({}));
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return json!({"__error": v["value"].clone()});
        }
        v["value"].clone()
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let v = self.cmd(method.clone(), path, body).await;
        assert!(
            v.get("__error").is_none(),
            "WebDriver {method} {path} failed: {v}"
        );
        v
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.ok(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.ok(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Runs `script` with one element as `arguments[0]`.
    pub async fn js_on(&self, el: &El, script: &str) -> Value {
        self.js(script, vec![el.json()]).await
    }

    /// Emulates a phone screen (`Some((390, 844))`) or goes back to the window's size.
    pub async fn phone(&self, size: Option<(u32, u32)>) {
        let (cmd, params) = match size {
            Some((w, hgt)) => (
                "Emulation.setDeviceMetricsOverride",
                json!({"width": w, "height": hgt, "deviceScaleFactor": 1, "mobile": true}),
            ),
            None => ("Emulation.clearDeviceMetricsOverride", json!({})),
        };
        self.ok(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
        .await;
    }

    async fn candidates(&self, scope: Option<&El>, selector: &str) -> Vec<El> {
        let script = "const root = arguments[1] || document; \
            return [...root.querySelectorAll(arguments[0])].filter((e) => \
              e.getClientRects().length > 0 && !e.closest('[hidden]') && \
              getComputedStyle(e).visibility !== 'hidden');";
        let scope = scope.map_or(Value::Null, El::json);
        let v = self.js(script, vec![json!(selector), scope]).await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str())
                    .map(|id| El {
                        id: id.to_owned(),
                        what: selector.to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The accessible name the browser computes for `el`.
    pub async fn label(&self, el: &El) -> String {
        let v = self
            .cmd(
                reqwest::Method::GET,
                &format!("/element/{}/computedlabel", el.id),
                None,
            )
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    async fn find_named(&self, scope: Option<&El>, selector: &str, name: &str) -> Option<El> {
        for el in self.candidates(scope, selector).await {
            if self.label(&el).await.trim() == name {
                return Some(El {
                    id: el.id,
                    what: format!("{selector} named {name:?}"),
                });
            }
        }
        None
    }

    async fn wait_named(&self, scope: Option<&El>, selector: &str, name: &str) -> El {
        let start = Instant::now();
        loop {
            if let Some(el) = self.find_named(scope, selector, name).await {
                return el;
            }
            if start.elapsed() > WAIT {
                let body = self.body_text().await;
                panic!(
                    "[{}] no visible {selector} with the accessible name {name:?} within {WAIT:?}; the page says:\n{body}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The visible form field (input, select, textarea) whose accessible name is `name`.
    pub async fn field(&self, name: &str) -> El {
        self.wait_named(None, "input, select, textarea", name).await
    }

    /// The same, inside `scope`.
    pub async fn field_in(&self, scope: &El, name: &str) -> El {
        self.wait_named(Some(scope), "input, select, textarea", name)
            .await
    }

    /// The visible button whose accessible name is `name`.
    pub async fn button(&self, name: &str) -> El {
        self.wait_named(None, "button, [role=button], input[type=submit]", name)
            .await
    }

    /// The same, inside `scope`.
    pub async fn button_in(&self, scope: &El, name: &str) -> El {
        self.wait_named(Some(scope), "button, [role=button]", name)
            .await
    }

    /// The visible link whose accessible name is `name`.
    pub async fn link(&self, name: &str) -> El {
        self.wait_named(None, "a[href]", name).await
    }

    /// The first element matching a CSS selector, waiting for it.
    pub async fn css(&self, selector: &str) -> El {
        let start = Instant::now();
        loop {
            if let Some(el) = self.candidates(None, selector).await.into_iter().next() {
                return el;
            }
            if start.elapsed() > WAIT {
                panic!(
                    "[{}] nothing visible matches {selector:?} within {WAIT:?}; the page says:\n{}",
                    self.name,
                    self.body_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks `el` (scrolled into view first).
    pub async fn click(&self, el: &El) {
        let v = self
            .cmd(
                reqwest::Method::POST,
                &format!("/element/{}/click", el.id),
                None,
            )
            .await;
        assert!(
            v.get("__error").is_none(),
            "[{}] click on {} failed: {v}",
            self.name,
            el.what
        );
    }

    /// Replaces the value of a field by typing `text` into it.
    pub async fn fill(&self, el: &El, text: &str) {
        self.ok(
            reqwest::Method::POST,
            &format!("/element/{}/clear", el.id),
            None,
        )
        .await;
        self.ok(
            reqwest::Method::POST,
            &format!("/element/{}/value", el.id),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Types into a field without clearing it (`\u{E007}` is Enter, `\u{E004}` Tab).
    pub async fn keys(&self, el: &El, text: &str) {
        self.ok(
            reqwest::Method::POST,
            &format!("/element/{}/value", el.id),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Presses keys on whatever has the focus.
    pub async fn press(&self, keys: &str) {
        let mut actions = Vec::new();
        for k in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": k.to_string()}));
            actions.push(json!({"type": "keyUp", "value": k.to_string()}));
        }
        self.ok(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await;
    }

    /// Picks the option of a `<select>` whose text is `text`.
    pub async fn choose(&self, el: &El, text: &str) {
        let done = self
            .js(
                "const s = arguments[0]; const o = [...s.options].find((o) => o.text === arguments[1]); \
                 if (!o) return false; s.value = o.value; s.dispatchEvent(new Event('change', {bubbles: true})); return true;",
                vec![el.json(), json!(text)],
            )
            .await;
        assert_eq!(done, json!(true), "no option {text:?} in {}", el.what);
    }

    /// The rendered text of `el`.
    pub async fn text(&self, el: &El) -> String {
        self.js_on(el, "return arguments[0].innerText;")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The rendered text of the page.
    pub async fn body_text(&self) -> String {
        self.js(
            "return document.body ? document.body.innerText : '';",
            vec![],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Waits until the page's text contains `needle`.
    pub async fn wait_text(&self, needle: &str) {
        self.wait_text_within(needle, WAIT).await;
    }

    /// The same, with another bound.
    pub async fn wait_text_within(&self, needle: &str, within: Duration) {
        let start = Instant::now();
        loop {
            let body = self.body_text().await;
            if body.contains(needle) {
                return;
            }
            if start.elapsed() > within {
                panic!(
                    "[{}] the page did not show {needle:?} within {within:?}; it says:\n{body}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `script` (a function body) returns true.
    pub async fn wait_js(&self, script: &str) {
        let start = Instant::now();
        while self.js(script, vec![]).await != json!(true) {
            assert!(
                start.elapsed() < WAIT,
                "[{}] `{script}` did not become true within {WAIT:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of `el` contains `needle`.
    pub async fn wait_text_in(&self, el: &El, needle: &str) {
        let start = Instant::now();
        loop {
            let text = self.text(el).await;
            if text.contains(needle) {
                return;
            }
            if start.elapsed() > WAIT {
                panic!(
                    "[{}] {} did not show {needle:?} within {WAIT:?}; it says:\n{text}",
                    self.name, el.what
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The closest ancestor of `el` matching `selector`.
    pub async fn closest(&self, el: &El, selector: &str) -> El {
        let v = self
            .js(
                "return arguments[0].closest(arguments[1]);",
                vec![el.json(), json!(selector)],
            )
            .await;
        let id = v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{} is not inside {selector}", el.what));
        El {
            id: id.to_owned(),
            what: format!("{selector} around {}", el.what),
        }
    }

    /// The page's width against the viewport: `(scrollWidth, innerWidth)`.
    pub async fn widths(&self) -> (i64, i64) {
        let v = self
            .js(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await;
        (v[0].as_i64().unwrap_or(-1), v[1].as_i64().unwrap_or(-1))
    }

    /// Asserts the page does not scroll sideways.
    pub async fn assert_no_horizontal_scroll(&self, what: &str) {
        let (scroll, inner) = self.widths().await;
        assert!(
            scroll <= inner,
            "[{}] {what}: the page is {scroll}px wide in a {inner}px viewport",
            self.name
        );
    }

    /// The text of an open JavaScript dialog, if one is open.
    pub async fn dialog(&self) -> Option<String> {
        let v = self.cmd(reqwest::Method::GET, "/alert/text", None).await;
        if v.get("__error").is_some() {
            None
        } else {
            Some(v.as_str().unwrap_or_default().to_owned())
        }
    }

    /// Opens a new tab and switches to it; returns the handle of the one it left.
    pub async fn new_tab(&self) -> String {
        let old = self.ok(reqwest::Method::GET, "/window", None).await;
        let v = self
            .ok(
                reqwest::Method::POST,
                "/window/new",
                Some(json!({"type": "tab"})),
            )
            .await;
        let handle = v["handle"].as_str().expect("new window handle").to_owned();
        self.switch_to(&handle).await;
        old.as_str().expect("window handle").to_owned()
    }

    /// The current tab's handle.
    pub async fn tab(&self) -> String {
        let v = self.ok(reqwest::Method::GET, "/window", None).await;
        v.as_str().expect("window handle").to_owned()
    }

    /// Switches to another tab.
    pub async fn switch_to(&self, handle: &str) {
        self.ok(
            reqwest::Method::POST,
            "/window",
            Some(json!({ "handle": handle })),
        )
        .await;
    }

    /// A screenshot of the viewport as PNG bytes.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = self.ok(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("screenshot base64")
    }

    /// Writes a screenshot of the current tab to `path`.
    pub async fn save_screenshot(&self, path: &Path) {
        let png = self.screenshot().await;
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// The browser's console and network log since the last call.
    pub async fn log(&self) -> Vec<Value> {
        let v = self
            .ok(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
            )
            .await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// Asserts the console holds no error: no script error, no refused load (CSP), no failed
    /// page or asset. A failed API call the flow provoked (`expected` lists the statuses) is
    /// logged by Chromium as a network error and is allowed.
    pub async fn assert_clean_console(&self, expected_api_statuses: &[u16]) {
        let mut bad = Vec::new();
        for entry in self.log().await {
            if entry["level"] != json!("SEVERE") {
                continue;
            }
            let message = entry["message"].as_str().unwrap_or_default();
            let expected = entry["source"] == json!("network")
                && message.contains("/api/v1/")
                && expected_api_statuses
                    .iter()
                    .any(|s| message.contains(&format!("status of {s} ")));
            if !expected {
                bad.push(entry);
            }
        }
        assert!(bad.is_empty(), "[{}] console errors: {bad:#?}", self.name);
    }

    /// Runs `flow`; if it panics, saves a screenshot of every tab and the page's text, then
    /// panics on.
    pub async fn run<F>(&self, flow: F)
    where
        F: std::future::Future<Output = ()>,
    {
        use futures_util::FutureExt as _;
        let outcome = std::panic::AssertUnwindSafe(flow).catch_unwind().await;
        if let Err(panic) = outcome {
            let handles = self
                .cmd(reqwest::Method::GET, "/window/handles", None)
                .await;
            for (i, handle) in handles
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let _ = self
                    .cmd(
                        reqwest::Method::POST,
                        "/window",
                        Some(json!({ "handle": handle })),
                    )
                    .await;
                let shot = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
                if let Some(b64) = shot.as_str() {
                    use base64::Engine as _;
                    if let Ok(png) = base64::engine::general_purpose::STANDARD.decode(b64) {
                        let path = self.shots.join(format!("{}-tab{i}.png", self.name));
                        if std::fs::write(&path, png).is_ok() {
                            eprintln!("[{}] screenshot: {}", self.name, path.display());
                        }
                    }
                }
            }
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the session (chromedriver then closes Chromium), then chromedriver's whole group.
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let req = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                self.session, self.port
            );
            if s.write_all(req.as_bytes()).is_ok() {
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }
        }
        let pgid = self.driver.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
