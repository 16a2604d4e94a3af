//! Rate limits and Redis, end to end: the per-IP, per-user and failed-login limits, in one
//! process and shared by several through Redis; and what happens when that Redis dies, freezes,
//! is missing at start-up or comes back. Each test that uses Redis runs a `redis-server` of its
//! own ([`RedisInstance`]) so that it can kill and restart it without disturbing other tests.
//!
//! What must hold: `/api/` routes are limited (per client IP without a valid token, per user
//! with one), operations routes never are; an excess is 429 `rate_limited` with an integer
//! `Retry-After` of at least one second, after which the client is served again; refusals are
//! counted in `rate_limited_total{scope}`. With Redis the limits are shared by every process
//! using it (under its key prefix); without it, or while it is down or frozen, every process
//! keeps serving with its own limiters and no request fails because of Redis; `/readyz` says
//! `redis: up | down | disabled` and stays 200, and Redis is used again once it is back.
//!
//! Client addresses: each scenario talks from an address of its own in 127.0.0.0/8 (a
//! [`Peer`]), so that it has a per-IP budget of its own.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::commerce::{CHECKOUT, address, cancel_order, customers, id, product};
use crate::harness::{
    App, Backend, Resp, Server, ServerBuilder, Tokens, User, eventually, random_secret,
    unique_email,
};
use crate::redis_instance::{RedisInstance, free_port};

const PRODUCTS: &str = "/api/v1/products";
const ME: &str = "/api/v1/users/me";
const LOGIN: &str = "/api/v1/auth/login";
const LOGOUT: &str = "/api/v1/auth/logout";

/// How long `/readyz` may take to report a change of Redis (down, or back up).
const REDIS_NOTICED_WITHIN: Duration = Duration::from_secs(5);

/// For each `async fn <name>(mode: Mode)` here, a module `<name>` with the tests `in_process`
/// and `redis` (a `redis-server` of the test's own).
macro_rules! both_modes {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn in_process() {
                    super::$name(super::Mode::InProcess).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis() {
                    super::$name(super::Mode::Redis).await;
                }
            }
        )+
    };
}

both_modes!(
    anonymous_requests_are_limited_per_ip,
    authenticated_requests_are_limited_per_user,
    failed_logins_block_the_account_on_every_process,
);

/// Where the limiters keep their state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No `redis.url`: each process limits on its own.
    InProcess,
    /// A Redis of the test's own, shared by every process of the test.
    Redis,
}

impl Mode {
    async fn redis(self) -> Option<RedisInstance> {
        match self {
            Mode::InProcess => None,
            Mode::Redis => Some(RedisInstance::start().await),
        }
    }
}

/// The rate-limit settings of a test and the Redis they go through, if any.
#[derive(Clone, Debug)]
struct Limits {
    per_ip: u32,
    per_user: u32,
    burst: u32,
    login_per_min: u32,
    /// `redis.url` and `redis.key_prefix`.
    redis: Option<(String, String)>,
}

impl Limits {
    fn new(per_ip: u32, per_user: u32, burst: u32) -> Limits {
        Limits {
            per_ip,
            per_user,
            burst,
            login_per_min: 10,
            redis: None,
        }
    }

    fn login_per_min(mut self, n: u32) -> Limits {
        self.login_per_min = n;
        self
    }

    /// Through the Redis at `url`, under a key prefix of this test's own.
    fn through_url(mut self, url: &str) -> Limits {
        let prefix = format!("test-{}:", Uuid::new_v4().simple());
        self.redis = Some((url.to_owned(), prefix));
        self
    }

    fn through(self, redis: Option<&RedisInstance>) -> Limits {
        match redis {
            Some(r) => self.through_url(&r.url()),
            None => self,
        }
    }

    /// The same Redis under another key prefix (another deployment sharing the server).
    fn other_prefix(&self) -> Limits {
        let (url, _) = self.redis.clone().expect("no Redis configured");
        self.clone().through_url(&url)
    }

    fn prefix(&self) -> &str {
        &self.redis.as_ref().expect("no Redis configured").1
    }

    fn apply(&self, b: ServerBuilder) -> ServerBuilder {
        let b = b
            .env("MALL__RATE_LIMIT__ENABLED", "true")
            .env("MALL__RATE_LIMIT__PER_IP_PER_SEC", &self.per_ip.to_string())
            .env(
                "MALL__RATE_LIMIT__PER_USER_PER_SEC",
                &self.per_user.to_string(),
            )
            .env("MALL__RATE_LIMIT__BURST", &self.burst.to_string())
            .env(
                "MALL__RATE_LIMIT__LOGIN_PER_ACCOUNT_PER_MIN",
                &self.login_per_min.to_string(),
            );
        match &self.redis {
            Some((url, prefix)) => b
                .env("MALL__REDIS__URL", url)
                .env("MALL__REDIS__KEY_PREFIX", prefix),
            None => b,
        }
    }
}

/// One more `mall` process on `db_url` with the JWT secret and admin password of `like`.
async fn another(like: &Server, db_url: &str, limits: &Limits) -> Server {
    let builder = ServerBuilder::new(db_url).secret(like.secret()).env(
        "MALL__BOOTSTRAP__ADMIN_PASSWORD",
        &like.process.admin_password,
    );
    limits.apply(builder).start().await
}

/// Two `mall` processes on one database with the same secret, admin and `limits`.
async fn two_processes(db_url: &str, limits: &Limits) -> (Server, Server) {
    let a = limits.apply(ServerBuilder::new(db_url)).start().await;
    let b = another(&a, db_url, limits).await;
    (a, b)
}

/// An HTTP client whose connections come from 127.0.0.`n`: a client IP of its own.
struct Peer {
    ip: IpAddr,
    http: reqwest::Client,
}

impl Peer {
    fn new(n: u8) -> Peer {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, n));
        let http = reqwest::Client::builder()
            .local_address(ip)
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("build an HTTP client");
        Peer { ip, http }
    }

    async fn call(
        &self,
        server: &Server,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let what = format!("{method} {path} from {} to {}", self.ip, server.base);
        let mut rb = self.http.request(method, server.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(b).expect("serialise the request body"));
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

    async fn get(&self, server: &Server, path: &str, token: Option<&str>) -> Resp {
        self.call(server, Method::GET, path, token, None).await
    }

    async fn try_login(&self, server: &Server, email: &str, password: &str) -> Resp {
        let body = json!({"email": email, "password": password});
        self.call(server, Method::POST, LOGIN, None, Some(&body))
            .await
    }

    /// Registers and logs in a new customer: two anonymous requests from this address.
    async fn new_user(&self, server: &Server, tag: &str) -> User {
        let email = unique_email(tag);
        let password = random_secret("pw");
        let name = format!("{tag} user");
        let body = json!({"email": email, "password": password, "name": name});
        let created = self
            .call(server, Method::POST, "/api/v1/users", None, Some(&body))
            .await
            .expect(201);
        let login = self.try_login(server, &email, &password).await;
        let body = login.expect(200);
        let token = |field: &str| {
            body[field]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no {field} in {body}", login.what))
                .to_owned()
        };
        let tokens = Tokens {
            access: token("access_token"),
            refresh: token("refresh_token"),
            body: body.clone(),
        };
        User {
            id: id(&created),
            email,
            password,
            name,
            tokens,
        }
    }
}

/// Asserts a 429 `rate_limited` in the error shape with an integer `Retry-After` of at least
/// one second (and an `X-Request-Id`, as on every response); returns it.
#[track_caller]
fn retry_after(resp: &Resp) -> u64 {
    resp.expect_error(429, "rate_limited");
    let value = resp
        .header("retry-after")
        .unwrap_or_else(|| panic!("{}: 429 without Retry-After", resp.what));
    let secs: u64 = value.parse().unwrap_or_else(|_| {
        panic!(
            "{}: Retry-After is not a whole number of seconds: {value:?}",
            resp.what
        )
    });
    assert!(secs >= 1, "{}: Retry-After {secs} < 1", resp.what);
    assert!(
        resp.header("x-request-id").is_some(),
        "{}: 429 without X-Request-Id",
        resp.what
    );
    secs
}

/// Sends `count` requests (made by `send`) and asserts each is answered 200.
async fn all_pass<F, Fut>(count: usize, what: &str, mut send: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Resp>,
{
    for i in 1..=count {
        let resp = send().await;
        assert_eq!(
            resp.status, 200,
            "{what}: request {i} of {count} ({}) should pass, got {} {}",
            resp.what, resp.status, resp.text
        );
    }
}

/// `rate_limited_total{scope="<scope>"}` of `server` (0 before its first refusal).
async fn limited_total(server: &Server, scope: &str) -> u64 {
    let resp = server.get("/metrics", None).await;
    assert_eq!(resp.status, 200, "GET /metrics: {}", resp.text);
    let series = format!("rate_limited_total{{scope=\"{scope}\"}} ");
    resp.text
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |v| {
            v.trim()
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("{series}: not a number: {v:?}")) as u64
        })
}

/// The three counters `(ip, user, login)` of `server`.
async fn limited_totals(server: &Server) -> (u64, u64, u64) {
    (
        limited_total(server, "ip").await,
        limited_total(server, "user").await,
        limited_total(server, "login").await,
    )
}

/// `GET /readyz`, asserting 200; returns its `redis` field.
async fn redis_readiness(server: &Server) -> String {
    let resp = server.get("/readyz", None).await;
    let body = resp.expect(200);
    body["redis"]
        .as_str()
        .unwrap_or_else(|| panic!("/readyz: `redis` is not a string: {body}"))
        .to_owned()
}

/// Polls `/readyz` (every answer must be 200) until it says `redis: <want>`; panics after
/// [`REDIS_NOTICED_WITHIN`].
async fn await_redis(server: &Server, want: &str, what: &str) -> Duration {
    let (ok, took) = eventually(REDIS_NOTICED_WITHIN, || async {
        redis_readiness(server).await == want
    })
    .await;
    assert!(
        ok,
        "{what}: /readyz of {} still says redis: {:?} after {took:?} (want {want:?})",
        server.base,
        redis_readiness(server).await
    );
    took
}

/// Asserts that `redis` holds keys and that every one of them starts with `prefix`.
async fn assert_keys_under(redis: &RedisInstance, prefix: &str) {
    let keys = redis.keys().await;
    assert!(
        !keys.is_empty(),
        "the mall wrote no key to its Redis (prefix {prefix:?})"
    );
    let stray: Vec<&String> = keys.iter().filter(|k| !k.starts_with(prefix)).collect();
    assert!(
        stray.is_empty(),
        "keys outside the configured prefix {prefix:?}: {stray:?}"
    );
}

async fn anonymous_requests_are_limited_per_ip(mode: Mode) {
    let redis = mode.redis().await;
    let limits = Limits::new(1, 100, 3).through(redis.as_ref());
    let app = App::start_with(Backend::Sqlite, |b| limits.apply(b)).await;
    let expected = if redis.is_some() { "up" } else { "disabled" };
    assert_eq!(redis_readiness(&app).await, expected, "/readyz redis");
    let before = limited_totals(&app).await;

    // A burst of `burst` requests passes; the next is refused until one unit refills.
    let client = Peer::new(11);
    all_pass(3, "the burst", || client.get(&app, PRODUCTS, None)).await;
    let refused = client.get(&app, PRODUCTS, None).await;
    let wait = retry_after(&refused);
    assert_eq!(
        wait, 1,
        "at 1 request/s the next one is due within a second"
    );
    // Every /api/ route counts, whether it needs a token or not.
    retry_after(&client.get(&app, ME, None).await);
    retry_after(&client.get(&app, "/api/v1/openapi.json", None).await);

    // Operations routes are never limited.
    for round in 0..10 {
        for path in ["/healthz", "/readyz", "/metrics"] {
            let resp = client.get(&app, path, None).await;
            assert_eq!(
                resp.status, 200,
                "round {round}: {} must never be limited: {}",
                resp.what, resp.text
            );
        }
    }
    // Another address has a budget of its own.
    let neighbour = Peer::new(12);
    all_pass(3, "another address", || neighbour.get(&app, PRODUCTS, None)).await;

    // After Retry-After, the client is served again. Waiting exactly the answered Retry-After
    // is the promise under test (and a poll would spend refusals the counts below pin down).
    tokio::time::sleep(Duration::from_secs(wait)).await;
    client.get(&app, PRODUCTS, None).await.expect(200);

    let after = limited_totals(&app).await;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (3, 0, 0),
        "rate_limited_total{{scope=ip|user|login}} should count the three refusals"
    );
    if let Some(redis) = &redis {
        assert_keys_under(redis, limits.prefix()).await;
    }
}

async fn authenticated_requests_are_limited_per_user(mode: Mode) {
    let redis = mode.redis().await;
    let limits = Limits::new(1, 1, 3).through(redis.as_ref());
    let app = App::start_with(Backend::Sqlite, |b| limits.apply(b)).await;
    // Registering and logging in are two anonymous requests each: one address per user.
    let alice = Peer::new(21).new_user(&app, "alice").await;
    let bob = Peer::new(22).new_user(&app, "bob").await;
    let before = limited_totals(&app).await;

    let phone = Peer::new(23);
    all_pass(3, "alice's burst", || {
        phone.get(&app, ME, Some(alice.access()))
    })
    .await;
    let wait = retry_after(&phone.get(&app, ME, Some(alice.access())).await);
    assert_eq!(
        wait, 1,
        "at 1 request/s the next one is due within a second"
    );
    // The limit follows the user, not the address ...
    retry_after(&Peer::new(24).get(&app, ME, Some(alice.access())).await);
    // ... and covers the open routes too when she calls them with her token.
    retry_after(&phone.get(&app, PRODUCTS, Some(alice.access())).await);
    // Bob has a budget of his own, from the same address.
    all_pass(3, "bob's burst", || phone.get(&app, ME, Some(bob.access()))).await;
    retry_after(&phone.get(&app, ME, Some(bob.access())).await);
    // The users' requests did not spend the address's anonymous budget.
    all_pass(3, "anonymous from the same address", || {
        phone.get(&app, PRODUCTS, None)
    })
    .await;

    // Exactly the answered Retry-After: the promise under test (see above).
    tokio::time::sleep(Duration::from_secs(wait)).await;
    phone.get(&app, ME, Some(alice.access())).await.expect(200);

    let after = limited_totals(&app).await;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (0, 4, 0),
        "rate_limited_total{{scope=ip|user|login}} should count the four refusals of users"
    );
}

/// The failed-login budget of an account (3 a minute here) is spent on process A; process B
/// then refuses even the right password when the budget is shared through Redis, and lets it
/// in when each process keeps its own. Other accounts are not affected either way.
async fn failed_logins_block_the_account_on_every_process(mode: Mode) {
    let redis = mode.redis().await;
    let limits = Limits::new(100, 100, 100)
        .login_per_min(3)
        .through(redis.as_ref());
    let db = Backend::Postgres.database().await;
    let (a, b) = two_processes(db.url(), &limits).await;
    let victim = a.new_user("victim").await;
    let bystander = b.new_user("bystander").await;
    let (before_a, before_b) = (limited_totals(&a).await, limited_totals(&b).await);

    // Three wrong passwords, whatever the case of the address and the client's IP.
    let guesses = [
        (Peer::new(31), victim.email.clone()),
        (Peer::new(32), victim.email.to_uppercase()),
        (Peer::new(33), format!(" {} ", victim.email)),
    ];
    for (i, (peer, email)) in guesses.iter().enumerate() {
        peer.try_login(&a, email, &format!("wrong-guess-{i}"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    // The budget is spent: even the right password is refused on A ...
    let on_a = a.try_login(&victim.email, &victim.password).await;
    let wait = retry_after(&on_a);
    assert!(
        wait <= 20,
        "3 a minute: a unit is back within 20 s, not {wait}"
    );

    // ... and on B when the budget is shared.
    let on_b = b.try_login(&victim.email, &victim.password).await;
    match mode {
        Mode::Redis => {
            let wait = retry_after(&on_b);
            assert!(
                wait <= 20,
                "3 a minute: a unit is back within 20 s, not {wait}"
            );
        }
        Mode::InProcess => {
            on_b.expect(200);
        }
    }
    // Other accounts and existing logins are unaffected, on both.
    for node in [&a, &b] {
        let tokens = node.login(&bystander.email, &bystander.password).await;
        assert_eq!(node.me_status(&tokens.access).await, 200);
        assert_eq!(node.me_status(victim.access()).await, 200);
    }

    let (after_a, after_b) = (limited_totals(&a).await, limited_totals(&b).await);
    assert_eq!(
        after_a.2 - before_a.2,
        1,
        "rate_limited_total{{scope=login}} on A"
    );
    let refused_on_b = u64::from(mode == Mode::Redis);
    assert_eq!(
        after_b.2 - before_b.2,
        refused_on_b,
        "rate_limited_total{{scope=login}} on B"
    );
    assert_eq!(
        (after_a.0 - before_a.0, after_a.1 - before_a.1),
        (0, 0),
        "no ip or user refusal on A"
    );
    if let Some(redis) = &redis {
        assert_keys_under(redis, limits.prefix()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_do_not_escape_the_ip_limit() {
    let app = App::start_with(Backend::Sqlite, |b| Limits::new(1, 100, 3).apply(b)).await;
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";

    // Requests without a valid token are limited per address, whatever they carry: a client
    // cannot flood the mall with bad tokens (each costing a verification) to escape the limit.
    let client = Peer::new(41);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(client.get(&app, ME, Some(forged)).await.status);
    }
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "a forged token is refused: {statuses:?}"
    );
    assert!(
        statuses.contains(&429),
        "six requests with a forged token from one address at 1/s with a burst of 3 should \
         meet the per-IP limit; got {statuses:?}"
    );

    // Once an address has spent its budget, a bad token does not get it more.
    let other = Peer::new(42);
    all_pass(3, "the burst", || other.get(&app, PRODUCTS, None)).await;
    retry_after(&other.get(&app, PRODUCTS, None).await);
    retry_after(&other.get(&app, PRODUCTS, Some(forged)).await);
    retry_after(&other.get(&app, ME, Some(forged)).await);
}

/// Two processes on one database: process A spends an address's burst and a user's burst;
/// process B refuses both at once when they share a Redis, and serves both when they do not.
/// A third process on the same Redis under another key prefix is never affected.
async fn limits_across_processes(mode: Mode) {
    let redis = mode.redis().await;
    let limits = Limits::new(1, 1, 3).through(redis.as_ref());
    let db = Backend::Postgres.database().await;
    let (a, b) = two_processes(db.url(), &limits).await;
    let user = Peer::new(51).new_user(&a, "shared").await;
    let before = limited_totals(&b).await;

    let client = Peer::new(52);
    all_pass(3, "anonymous burst on A", || client.get(&a, PRODUCTS, None)).await;
    retry_after(&client.get(&a, PRODUCTS, None).await);
    all_pass(3, "user burst on A", || {
        client.get(&a, ME, Some(user.access()))
    })
    .await;
    retry_after(&client.get(&a, ME, Some(user.access())).await);

    let anonymous_on_b = client.get(&b, PRODUCTS, None).await;
    let user_on_b = client.get(&b, ME, Some(user.access())).await;
    let after = limited_totals(&b).await;
    match mode {
        Mode::Redis => {
            retry_after(&anonymous_on_b);
            retry_after(&user_on_b);
            assert_eq!(
                (after.0 - before.0, after.1 - before.1),
                (1, 1),
                "B counts its own refusals (ip, user)"
            );
            // Another deployment on the same Redis (another key prefix) is not affected.
            let c = another(&a, db.url(), &limits.other_prefix()).await;
            client.get(&c, PRODUCTS, None).await.expect(200);
            client.get(&c, ME, Some(user.access())).await.expect(200);
        }
        Mode::InProcess => {
            anonymous_on_b.expect(200);
            user_on_b.expect(200);
            assert_eq!(
                (after.0 - before.0, after.1 - before.1),
                (0, 0),
                "B refused nothing"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_ip_and_user_limits_through_redis() {
    limits_across_processes(Mode::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_each_process_limits_on_its_own() {
    limits_across_processes(Mode::InProcess).await;
}

/// One customer's loop until `until`: log in, put the product in the cart, check out, cancel
/// the order, log out and see the token refused. Returns when each round ended and every
/// answer that was not the expected one.
async fn shop_until(
    node: &Server,
    user: &User,
    product: &str,
    traffic: &Traffic,
) -> (Vec<Instant>, Vec<String>) {
    let mut rounds = Vec::new();
    let mut unexpected = Vec::new();
    let mut check = |resp: &Resp, want: u16| {
        let ok = resp.status == want;
        if !ok {
            unexpected.push(format!(
                "{} on {}: {} {} (want {want})",
                resp.what, node.base, resp.status, resp.text
            ));
        }
        ok
    };
    while !traffic.stop.load(Ordering::SeqCst) && Instant::now() < traffic.until {
        let login = node.try_login(&user.email, &user.password).await;
        if !check(&login, 200) {
            continue;
        }
        let access = login.json()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        let token = Some(access.as_str());
        let line = format!("/api/v1/cart/items/{product}");
        if !check(&node.put(&line, token, &json!({"quantity": 2})).await, 200) {
            continue;
        }
        let body = json!({"address": address(), "note": "resilience"});
        let checkout = node.post(CHECKOUT, token, &body).await;
        if check(&checkout, 201) {
            let order = id(&checkout.json()["order"]);
            check(&cancel_order(node, &access, &order).await, 200);
        }
        check(&node.post(LOGOUT, token, &json!({})).await, 204);
        check(&node.get(ME, token).await, 401);
        rounds.push(Instant::now());
        traffic.rounds.fetch_add(1, Ordering::SeqCst);
    }
    (rounds, unexpected)
}

/// The shoppers' traffic: rounds completed so far, and when to stop.
struct Traffic {
    rounds: AtomicUsize,
    stop: AtomicBool,
    /// A bound, should the test never say stop.
    until: Instant,
}

impl Traffic {
    /// Waits (bounded) until `more` rounds have been completed after now.
    async fn more_rounds(&self, more: usize, what: &str) {
        let want = self.rounds.load(Ordering::SeqCst) + more;
        let (ok, took) = eventually(Duration::from_secs(30), || async {
            self.rounds.load(Ordering::SeqCst) >= want
        })
        .await;
        assert!(ok, "{what}: fewer than {more} rounds in {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dying_under_traffic_fails_no_request_and_comes_back() {
    let mut redis = RedisInstance::start().await;
    // Generous request limits (the traffic must never meet them) and a small login budget to
    // show, at the end, that the limits are shared again.
    let limits = Limits::new(1000, 1000, 1000)
        .login_per_min(3)
        .through(Some(&redis));
    let db = Backend::Postgres.database().await;
    let (a, b) = two_processes(db.url(), &limits).await;
    let admin = a.admin().await;
    let product = product(&a, &admin.access, "resilience", 100, 1_000_000).await;
    let shoppers = customers(&a, "shopper", 4).await;
    let leaver = b.new_user("leaver").await;
    let probe = a.new_user("probe").await;
    assert_eq!(redis_readiness(&a).await, "up");
    assert_eq!(redis_readiness(&b).await, "up");

    let traffic = Traffic {
        rounds: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        until: Instant::now() + Duration::from_secs(120),
    };
    let shopping = join_all(shoppers.iter().enumerate().map(|(i, user)| {
        let node = if i % 2 == 0 { &a } else { &b };
        shop_until(node, user, &product, &traffic)
    }));
    let outage = async {
        // Redis dies once the traffic is under way...
        traffic.more_rounds(shoppers.len(), "before the kill").await;
        redis.kill();
        let killed = Instant::now();
        // Both processes notice, and stay ready: only Redis is down.
        await_redis(&a, "down", "after the kill (A)").await;
        await_redis(&b, "down", "after the kill (B)").await;
        // A logout during the outage still ends that access token, on every process.
        b.post(LOGOUT, Some(leaver.access()), &json!({}))
            .await
            .expect(204);
        assert_eq!(a.me_status(leaver.access()).await, 401, "after logout, A");
        assert_eq!(b.me_status(leaver.access()).await, 401, "after logout, B");
        // ...stays dead while the traffic goes on (rounds are completed without it)...
        traffic
            .more_rounds(shoppers.len(), "during the outage")
            .await;
        assert_eq!(redis_readiness(&a).await, "down", "still down (A)");
        assert_eq!(redis_readiness(&b).await, "down", "still down (B)");
        // ...and comes back.
        redis.restart().await;
        let restarted = Instant::now();
        let took_a = await_redis(&a, "up", "after the restart (A)").await;
        let took_b = await_redis(&b, "up", "after the restart (B)").await;
        traffic
            .more_rounds(shoppers.len(), "after the restart")
            .await;
        traffic.stop.store(true, Ordering::SeqCst);
        (killed, restarted, took_a, took_b)
    };
    let (results, (killed, restarted, took_a, took_b)) = tokio::join!(shopping, outage);

    let mut unexpected = Vec::new();
    let mut during_outage = 0;
    for (user, (rounds, bad)) in shoppers.iter().zip(&results) {
        assert!(!rounds.is_empty(), "{} finished no round", user.email);
        during_outage += rounds
            .iter()
            .filter(|t| **t > killed && **t < restarted)
            .count();
        unexpected.extend(bad.iter().cloned());
    }
    assert!(
        unexpected.is_empty(),
        "requests failed while Redis died and came back ({} of them):\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    assert!(
        during_outage > 0,
        "no round of traffic completed while Redis was down"
    );
    eprintln!(
        "redis outage: {} rounds ({during_outage} during the outage); up again after {took_a:?} (A) / {took_b:?} (B)",
        results.iter().map(|(r, _)| r.len()).sum::<usize>()
    );

    // Redis is used again, and the limits are shared again: a failed-login budget spent on A
    // holds on B.
    for i in 0..3 {
        a.try_login(&probe.email, &format!("wrong-{i}"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    retry_after(&b.try_login(&probe.email, &probe.password).await);
    assert_keys_under(&redis, limits.prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_costs_requests_at_most_its_timeout() {
    let redis = RedisInstance::start().await;
    let limits = Limits::new(1000, 1000, 1000).through(Some(&redis));
    let app = App::start_with(Backend::Sqlite, |b| limits.apply(b)).await;
    let user = app.new_user("frozen").await;
    assert_eq!(redis_readiness(&app).await, "up");

    // SIGSTOP: connections stay open but nothing answers, so only the timeout ends a call.
    redis.pause();
    let start = Instant::now();
    let (mut total, mut slow, mut slowest) = (0u32, 0u32, Duration::ZERO);
    while start.elapsed() < Duration::from_secs(2) {
        for token in [None, Some(user.access())] {
            let sent = Instant::now();
            let path = if token.is_some() { ME } else { PRODUCTS };
            app.get(path, token).await.expect(200);
            let took = sent.elapsed();
            slowest = slowest.max(took);
            total += 1;
            if took >= Duration::from_millis(200) {
                slow += 1;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    eprintln!(
        "frozen redis: {slow} of {total} requests slow in {elapsed:.1} s, slowest {slowest:?}"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "a frozen Redis held a request for {slowest:?} (the timeout is 250 ms)"
    );
    // The circuit breaker: after a timeout Redis is left alone for a second, so most requests
    // do not wait for it at all.
    assert!(
        f64::from(slow) <= elapsed + 2.0 && slow * 4 <= total,
        "{slow} of {total} requests took 200 ms or more in {elapsed:.1} s: the circuit does not \
         spare requests a frozen Redis"
    );
    let asked = Instant::now();
    assert_eq!(redis_readiness(&app).await, "down", "/readyz while frozen");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "/readyz took {:?} with a frozen Redis",
        asked.elapsed()
    );

    redis.resume();
    await_redis(&app, "up", "after SIGCONT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mall_starts_without_its_redis_and_uses_it_once_up() {
    let port = free_port();
    let limits = Limits::new(1, 100, 3).through_url(&format!("redis://127.0.0.1:{port}"));
    let app = App::start_with(Backend::Sqlite, |b| limits.apply(b)).await;

    // Nothing listens on the port: the mall serves, ready, limiting in-process.
    assert_eq!(redis_readiness(&app).await, "down");
    let early = Peer::new(61);
    all_pass(3, "burst with Redis down", || {
        early.get(&app, PRODUCTS, None)
    })
    .await;
    retry_after(&early.get(&app, PRODUCTS, None).await);
    assert_eq!(limited_total(&app, "ip").await, 1);

    let redis = RedisInstance::start_on(port).await;
    await_redis(&app, "up", "once Redis runs").await;
    let late = Peer::new(62);
    all_pass(3, "burst with Redis up", || late.get(&app, PRODUCTS, None)).await;
    retry_after(&late.get(&app, PRODUCTS, None).await);
    assert_eq!(limited_total(&app, "ip").await, 2);
    assert_keys_under(&redis, limits.prefix()).await;
}
