//! Test harness: runs the real `mall` binary on a fresh database and talks to it over HTTP.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mall_db::testing::TestDatabase;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// Path of the binary under test.
pub const MALL: &str = env!("CARGO_BIN_EXE_mall");

/// E-mail of the administrator every server is bootstrapped with.
pub const ADMIN_EMAIL: &str = "admin@example.com";

/// How long a server may take to log that it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// For each `async fn <name>(backend: Backend)` in the calling module, generates a module
/// `<name>` with `#[tokio::test]` functions `sqlite` and `postgres` (test names end in
/// `<name>::sqlite` / `<name>::postgres`; `macro_rules!` cannot paste identifiers).
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::harness::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::harness::Backend::Postgres).await;
                }
            }
        )+
    };
}

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// A fresh database of this kind (PostgreSQL: migrated; SQLite: an empty file the mall
    /// migrates at start-up); dropped (deleted) with the value.
    pub async fn database(self) -> TestDatabase {
        match self {
            Backend::Sqlite => TestDatabase::sqlite().await,
            Backend::Postgres => TestDatabase::postgres_migrated().await,
        }
    }

    /// A fresh database with no migrations applied (a PostgreSQL test database is otherwise
    /// a migrated copy).
    pub async fn empty_database(self) -> TestDatabase {
        match self {
            Backend::Sqlite => TestDatabase::sqlite().await,
            Backend::Postgres => TestDatabase::postgres().await,
        }
    }
}

/// A random string fit to be a password or a secret; unique so it can be searched for in logs.
pub fn random_secret(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4().simple())
}

/// A unique e-mail address.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", Uuid::new_v4().simple())
}

/// Everything needed to start one `mall` process.
pub struct ServerBuilder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    secret: String,
    admin_password: String,
    current_dir: Option<PathBuf>,
}

impl ServerBuilder {
    /// The standard configuration for `db_url`: ephemeral port, random secret, no leeway,
    /// bootstrap admin, rate limiting off, generous waits for the database and actors.
    pub fn new(db_url: &str) -> Self {
        let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let admin_password = random_secret("admin-pw");
        let env = vec![
            ("MALL__SERVER__BIND".to_owned(), "127.0.0.1:0".to_owned()),
            ("MALL__DATABASE__URL".to_owned(), db_url.to_owned()),
            ("MALL__AUTH__JWT_SECRET".to_owned(), secret.clone()),
            ("MALL__AUTH__CLOCK_LEEWAY_SECS".to_owned(), "0".to_owned()),
            (
                "MALL__BOOTSTRAP__ADMIN_EMAIL".to_owned(),
                ADMIN_EMAIL.to_owned(),
            ),
            (
                "MALL__BOOTSTRAP__ADMIN_PASSWORD".to_owned(),
                admin_password.clone(),
            ),
            ("MALL__RATE_LIMIT__ENABLED".to_owned(), "false".to_owned()),
            // The suite runs dozens of servers at once on two cores: let a request wait for the
            // (single SQLite) writer and for actors as long as it takes. Overload answering 503
            // quickly is tested on its own, with short timeouts, in outage.rs.
            (
                "MALL__DATABASE__ACQUIRE_TIMEOUT_MS".to_owned(),
                "20000".to_owned(),
            ),
            (
                "MALL__ACTORS__CALL_TIMEOUT_MS".to_owned(),
                "20000".to_owned(),
            ),
        ];
        ServerBuilder {
            args: vec!["serve".to_owned()],
            env,
            secret,
            admin_password,
            current_dir: None,
        }
    }

    /// No configuration at all: no environment variables, arguments `serve`.
    pub fn bare() -> Self {
        ServerBuilder {
            args: vec!["serve".to_owned()],
            env: Vec::new(),
            secret: String::new(),
            admin_password: String::new(),
            current_dir: None,
        }
    }

    /// Sets (or replaces) an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        if key == "MALL__AUTH__JWT_SECRET" {
            self.secret = value.to_owned();
        }
        if key == "MALL__BOOTSTRAP__ADMIN_PASSWORD" {
            self.admin_password = value.to_owned();
        }
        self
    }

    /// Removes one of the standard environment variables.
    pub fn without(mut self, key: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// Uses the same JWT secret as another server.
    pub fn secret(self, secret: &str) -> Self {
        self.env("MALL__AUTH__JWT_SECRET", secret)
    }

    /// Replaces the command line arguments (default: `serve`).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args = args.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// Runs the process in this directory instead of a fresh temporary one.
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.current_dir = Some(dir.to_owned());
        self
    }

    /// Spawns the process without waiting for anything.
    pub fn spawn(self) -> Process {
        let dir = TempDir::new().expect("create a temporary directory");
        let cwd = self
            .current_dir
            .clone()
            .unwrap_or_else(|| dir.path().to_owned());
        let stdout_path = dir.path().join("stdout.log");
        let stderr_path = dir.path().join("stderr.log");
        let stdout = File::create(&stdout_path).expect("create stdout file");
        let stderr = File::create(&stderr_path).expect("create stderr file");
        let mut cmd = Command::new(MALL);
        cmd.args(&self.args)
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        // Nothing from the developer's environment may configure the server under test.
        for (key, _) in std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
            .filter(|(k, _)| k.to_ascii_uppercase().starts_with("MALL__"))
        {
            cmd.env_remove(key);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn the mall binary");
        Process {
            child: Some(child),
            stdout_path,
            stderr_path,
            _dir: dir,
            secret: self.secret,
            admin_password: self.admin_password,
            args: self.args,
        }
    }

    /// Spawns the server and waits until it logs that it listens.
    pub async fn start(self) -> Server {
        let mut process = self.spawn();
        let addr = process.wait_listening().await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .expect("build an HTTP client");
        Server {
            base: format!("http://{addr}"),
            addr,
            http,
            process,
        }
    }
}

/// A spawned `mall` process; killed when dropped.
pub struct Process {
    child: Option<Child>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    _dir: TempDir,
    pub secret: String,
    pub admin_password: String,
    args: Vec<String>,
}

impl Process {
    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.stdout_path).unwrap_or_default()).into_owned()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.stderr_path).unwrap_or_default()).into_owned()
    }

    /// Both outputs, for failure messages.
    pub fn output_report(&self) -> String {
        format!(
            "mall {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args,
            self.stdout(),
            self.stderr()
        )
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("poll the child process"))
    }

    /// The address of the `{"message":"listening","addr":...}` log line, if logged yet.
    pub fn listening_addr(&self) -> Option<String> {
        self.stdout().lines().find_map(|line| {
            let v: Value = serde_json::from_str(line).ok()?;
            if v.get("message")?.as_str()? == "listening" {
                Some(v.get("addr")?.as_str()?.to_owned())
            } else {
                None
            }
        })
    }

    /// Polls stdout until the server logs that it listens; panics with its output otherwise.
    pub async fn wait_listening(&mut self) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(addr) = self.listening_addr() {
                return addr;
            }
            if let Some(status) = self.try_exit() {
                // It may have logged the line just before dying.
                panic!(
                    "the server exited ({status}) before listening\n{}",
                    self.output_report()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "the server did not log {{\"message\":\"listening\",\"addr\":..}} within {:?}\n{}",
                    START_TIMEOUT,
                    self.output_report()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the process to exit by itself; panics (after killing it) on timeout.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!(
                    "mall did not exit within {timeout:?} (listening: {:?})\n{}",
                    self.listening_addr(),
                    self.output_report()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The process id; `None` once killed. After the process exited the id may be reused by
    /// another process: signal it only while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if the process has exited (reaping it), without waiting.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.try_exit()
    }

    /// Sends SIGTERM (a graceful stop) with kill(1), to a process that has not exited yet; the
    /// process is not waited for.
    pub fn terminate(&self) {
        let pid = self.pid().expect("SIGTERM: the process was already reaped");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -TERM {pid} failed: {status}");
    }

    /// Kills the process and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running server and an HTTP client for it.
pub struct Server {
    pub base: String,
    pub addr: String,
    http: reqwest::Client,
    pub process: Process,
}

/// A response, with what was asked, for assertion messages.
pub struct Resp {
    pub what: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    /// The body as JSON; panics with the body otherwise.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "{}: body is not JSON ({e}), status {}: {:?}",
                self.what, self.status, self.text
            )
        })
    }

    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header is not visible ASCII").to_owned())
    }

    /// Asserts the status and returns the JSON body (`Value::Null` for an empty body).
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "{}: expected status {status}, got {} with body {:?}",
            self.what, self.status, self.text
        );
        if self.text.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts the status and an error body `{"error": {code, message, details}}` whose code is
    /// one of `codes`; returns `details`.
    #[track_caller]
    pub fn expect_error_in(&self, status: u16, codes: &[&str]) -> Value {
        assert_eq!(
            self.status, status,
            "{}: expected status {status} ({codes:?}), got {} with body {:?}",
            self.what, self.status, self.text
        );
        let body: Value = serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "{}: error body is not JSON ({e}): {:?}",
                self.what, self.text
            )
        });
        let error = body
            .get("error")
            .unwrap_or_else(|| panic!("{}: no `error` object in {body}", self.what));
        let code = error["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: `error.code` is not a string in {body}", self.what));
        assert!(
            codes.contains(&code),
            "{}: expected error code in {codes:?}, got {code:?}: {body}",
            self.what
        );
        assert!(
            error["message"].is_string(),
            "{}: `error.message` is not a string in {body}",
            self.what
        );
        assert!(
            error["details"].is_object(),
            "{}: `error.details` is not an object in {body}",
            self.what
        );
        error["details"].clone()
    }

    /// Asserts the status and the error code; returns `details`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> Value {
        self.expect_error_in(status, &[code])
    }

    /// Asserts a 400 `invalid_request` whose `details.fields` names `field`.
    #[track_caller]
    pub fn expect_invalid_field(&self, field: &str) {
        let details = self.expect_error(400, "invalid_request");
        let fields = details
            .get("fields")
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("{}: no `details.fields` object: {details}", self.what));
        assert!(
            fields.get(field).is_some_and(Value::is_string),
            "{}: `details.fields` does not explain `{field}`: {details}",
            self.what
        );
    }
}

/// A pair of tokens from login or refresh.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub body: Value,
}

impl Tokens {
    fn from_body(what: &str, body: Value) -> Tokens {
        let access = body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no access_token in {body}"))
            .to_owned();
        let refresh = body["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no refresh_token in {body}"))
            .to_owned();
        Tokens {
            access,
            refresh,
            body,
        }
    }
}

/// A registered, logged-in user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub email: String,
    pub password: String,
    pub name: String,
    pub tokens: Tokens,
}

impl User {
    pub fn access(&self) -> &str {
        &self.tokens.access
    }
}

/// One request, built up before sending.
pub struct Req<'a> {
    server: &'a Server,
    method: Method,
    path: String,
    token: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<(Option<String>, Vec<u8>)>,
}

impl Req<'_> {
    /// `Authorization: Bearer <token>`.
    pub fn bearer(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// Any header, sent verbatim.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A JSON body.
    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some((
            Some("application/json".to_owned()),
            serde_json::to_vec(body).expect("serialise the request body"),
        ));
        self
    }

    /// A raw body, with a content type or none.
    pub fn raw_body(mut self, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some((content_type.map(str::to_owned), body.into()));
        self
    }

    pub async fn send(self) -> Resp {
        let what = format!("{} {}", self.method, self.path);
        let mut rb = self
            .server
            .http
            .request(self.method, self.server.url(&self.path));
        if let Some(token) = &self.token {
            rb = rb.header("Authorization", format!("Bearer {token}"));
        }
        for (k, v) in &self.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some((content_type, body)) = self.body {
            if let Some(ct) = content_type {
                rb = rb.header("Content-Type", ct);
            }
            rb = rb.body(body);
        }
        let resp = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: request failed: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .await
            .unwrap_or_else(|e| panic!("{what}: reading the body failed: {e}"));
        Resp {
            what,
            status,
            headers,
            text,
        }
    }
}

impl Server {
    /// The JWT secret the server was configured with.
    pub fn secret(&self) -> &str {
        &self.process.secret
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, path: &str) -> Req<'_> {
        Req {
            server: self,
            method,
            path: path.to_owned(),
            token: None,
            headers: Vec::new(),
            body: None,
        }
    }

    /// `method path` with an optional token and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self.request(method, path);
        if let Some(t) = token {
            req = req.bearer(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>, body: Option<&Value>) -> Resp {
        self.call(Method::DELETE, path, token, body).await
    }

    /// `POST /api/v1/users`, returning the raw response.
    pub async fn try_register(&self, email: &str, password: &str, name: &str) -> Resp {
        self.post(
            "/api/v1/users",
            None,
            &json!({"email": email, "password": password, "name": name}),
        )
        .await
    }

    /// Registers a user, asserting 201; returns the created user.
    pub async fn register(&self, email: &str, password: &str, name: &str) -> Value {
        self.try_register(email, password, name).await.expect(201)
    }

    /// `POST /api/v1/auth/login`, returning the raw response.
    pub async fn try_login(&self, email: &str, password: &str) -> Resp {
        self.post(
            "/api/v1/auth/login",
            None,
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Logs in, asserting 200.
    pub async fn login(&self, email: &str, password: &str) -> Tokens {
        let resp = self.try_login(email, password).await;
        let body = resp.expect(200);
        Tokens::from_body(&resp.what, body)
    }

    /// `POST /api/v1/auth/refresh`, returning the raw response.
    pub async fn try_refresh(&self, refresh_token: &str) -> Resp {
        self.post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// Refreshes, asserting 200.
    pub async fn refresh(&self, refresh_token: &str) -> Tokens {
        let resp = self.try_refresh(refresh_token).await;
        let body = resp.expect(200);
        Tokens::from_body(&resp.what, body)
    }

    /// Logs the bootstrap administrator in.
    pub async fn admin(&self) -> Tokens {
        let password = self.process.admin_password.clone();
        self.login(ADMIN_EMAIL, &password).await
    }

    /// Registers and logs in a new customer with a unique e-mail.
    pub async fn new_user(&self, tag: &str) -> User {
        let email = unique_email(tag);
        let password = random_secret("pw");
        let name = format!("{tag} user");
        let created = self.register(&email, &password, &name).await;
        let id = created["id"]
            .as_str()
            .unwrap_or_else(|| panic!("registration: `id` is not a string: {created}"))
            .to_owned();
        let tokens = self.login(&email, &password).await;
        User {
            id,
            email,
            password,
            name,
            tokens,
        }
    }

    /// The status of `GET /api/v1/users/me` with `token`.
    pub async fn me_status(&self, token: &str) -> u16 {
        self.get("/api/v1/users/me", Some(token)).await.status
    }

    /// Sends `GET <raw path>` over a plain TCP connection, byte for byte, so that nothing
    /// normalises the path; returns the status code.
    pub async fn raw_get_status(&self, raw_path: &str, token: Option<&str>) -> u16 {
        let mut stream = tokio::net::TcpStream::connect(&self.addr)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.addr));
        let mut request = format!("GET {raw_path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(t) = token {
            write!(request, "Authorization: Bearer {t}\r\n").unwrap();
        }
        request.push_str("Connection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("write the raw request");
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
            .await
            .unwrap_or_else(|_| panic!("GET {raw_path}: no complete response within 10 s"))
            .unwrap_or_else(|e| panic!("GET {raw_path}: read failed: {e}"));
        let text = String::from_utf8_lossy(&response);
        let status_line = text.lines().next().unwrap_or_default();
        let mut parts = status_line.split(' ');
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "GET {raw_path}: bad status line {status_line:?}"
        );
        parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("GET {raw_path}: bad status line {status_line:?}"))
    }
}

/// A database and a server on it. The server is declared first so that it stops before the
/// database is dropped.
pub struct App {
    pub server: Server,
    /// Held so that the database lives as long as the server.
    pub db: TestDatabase,
}

impl std::ops::Deref for App {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl App {
    /// A fresh database of `backend` and a server with the standard configuration on it.
    pub async fn start(backend: Backend) -> App {
        Self::start_with(backend, |b| b).await
    }

    /// Same, with changes to the configuration.
    pub async fn start_with(
        backend: Backend,
        configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> App {
        let db = backend.database().await;
        let server = configure(ServerBuilder::new(db.url())).start().await;
        App { server, db }
    }
}

/// The decoded claims of a JWT (its middle part).
pub fn jwt_claims(token: &str) -> Value {
    let payload = token
        .split('.')
        .nth(1)
        .unwrap_or_else(|| panic!("not a JWT: {token:?}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("JWT payload is not base64url ({e}): {token:?}"));
    serde_json::from_slice(&bytes).expect("JWT payload is not JSON")
}

/// Signs `claims` with `secret` using `alg` (an HMAC algorithm).
pub fn sign_jwt(claims: &Value, secret: &str, alg: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign a JWT")
}

/// An unsigned token (`alg: none`) with these claims.
pub fn unsigned_jwt(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    format!("{header}.{payload}.")
}

/// The current Unix time in seconds.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The value of one series on a server's `/metrics`, e.g. `x_total{kind="order"}` (0 when
/// absent).
pub async fn metric(server: &Server, series: &str) -> f64 {
    let text = server.get("/metrics", None).await.text;
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

/// Asserts that `value` is an RFC 3339 time string.
#[track_caller]
pub fn assert_rfc3339(value: &Value, what: &str) -> time::OffsetDateTime {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("{what}: expected an RFC 3339 string, got {value}"));
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{what}: {s:?} is not RFC 3339: {e}"))
}

/// Asserts that a JSON object has exactly these keys.
#[track_caller]
pub fn assert_keys(value: &Value, keys: &[&str], what: &str) {
    let obj = value
        .as_object()
        .unwrap_or_else(|| panic!("{what}: expected an object, got {value}"));
    let mut got: Vec<&str> = obj.keys().map(String::as_str).collect();
    got.sort_unstable();
    let mut want = keys.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "{what}: unexpected set of fields in {value}");
}

/// The string items of a JSON array, sorted.
#[track_caller]
pub fn sorted_strings(value: &Value) -> Vec<String> {
    let mut v: Vec<String> = value
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {value}"))
        .iter()
        .map(|x| {
            x.as_str()
                .unwrap_or_else(|| panic!("expected strings in {value}"))
                .to_owned()
        })
        .collect();
    v.sort();
    v
}

/// Polls `check` every 50 ms until it returns true or `within` has passed; returns whether it
/// became true and how long it took.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> (bool, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return (true, start.elapsed());
        }
        if start.elapsed() >= within {
            return (false, start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
