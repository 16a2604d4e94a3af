//! The command line of `mall-load`: a small hand-written parser (`--name value` or
//! `--name=value`), so the load generator needs no argument-parsing crate.

use std::path::PathBuf;
use std::time::Duration;

use super::scenarios::Scenario;

/// The admin password `mall-load` logs in with unless `--admin-password` says otherwise. Start the
/// target mall with `MALL__BOOTSTRAP__ADMIN_PASSWORD` set to it.
pub const DEFAULT_ADMIN_PASSWORD: &str = "mall-load-dev-password";
/// The admin email `mall-load` logs in with unless `--admin-email` says otherwise.
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@example.com";
/// The mall `mall-load` drives unless `--url` or `--targets` says otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Everything a run is told on its command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// The base URLs (without `/api/v1`) of the nodes of one mall: seeding and the invariant
    /// checks go through the first, client `i` is at home on `targets[i % n]`. Never empty.
    pub targets: Vec<String>,
    /// The scenarios to drive, in the order they are reported.
    pub scenarios: Vec<Scenario>,
    /// Run the scenarios one after another (each for `duration`, with every client) instead of
    /// all at once with the clients split between them.
    pub sequential: bool,
    /// How long the load lasts (per scenario when sequential).
    pub duration: Duration,
    /// Virtual clients (tokio tasks), in total; with `rate`, the customers the arrivals borrow,
    /// so the cap on arrivals in flight (split between the scenarios alike).
    pub concurrency: usize,
    /// Open loop: arrivals per second of each scenario, started on schedule whether or not the
    /// earlier ones ended. `None`: the closed loop (each client sends its next step when its
    /// last one is answered).
    pub rate: Option<f64>,
    /// Customers to register; raised to the number of clients that need one of their own.
    pub users: usize,
    /// Ordinary products to create (with plenty of stock).
    pub products: usize,
    /// The stock of the flash-sale product.
    pub flash_stock: i64,
    /// Whether flash-sale buyers pay for what they got.
    pub flash_pay: bool,
    /// Where to write the JSON report, if anywhere.
    pub report: Option<PathBuf>,
    /// The administrator who creates the products and checks the invariants.
    pub admin_email: String,
    /// Their password.
    pub admin_password: String,
    /// Requests in flight at once while seeding (registration hashes passwords server side).
    pub seed_concurrency: usize,
    /// Per-request timeout (a request's retries and failovers included).
    pub timeout: Duration,
    /// Whether the POSTs that honour one carry an `Idempotency-Key`.
    pub idempotency_keys: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            targets: vec![DEFAULT_URL.to_owned()],
            scenarios: Scenario::ALL.to_vec(),
            sequential: false,
            duration: Duration::from_secs(10),
            concurrency: 32,
            rate: None,
            users: 0,
            products: 200,
            flash_stock: 200,
            flash_pay: true,
            report: None,
            admin_email: DEFAULT_ADMIN_EMAIL.to_owned(),
            admin_password: DEFAULT_ADMIN_PASSWORD.to_owned(),
            seed_concurrency: 4,
            timeout: Duration::from_secs(30),
            idempotency_keys: true,
        }
    }
}

/// What the command line asks for.
pub type Command = crate::cli::Command<Options>;

/// The `--help` text.
pub fn help() -> String {
    format!(
        "\
mall-load: drives a running mall's HTTP API with many concurrent clients and reports, per
scenario, requests per second, p50/p95/p99/max latency and errors by status, then checks the
stock and payment invariants through the API (exit status 1 when one fails, 2 when the run could
not start).

USAGE:
    mall-load [OPTIONS]

The target mall must have its administrator bootstrapped with the credentials below and its
rate limits off, or the load is refused with 429. For example:

    MALL__SERVER__BIND=127.0.0.1:8080 \\
    MALL__RATE_LIMIT__ENABLED=false \\
    MALL__BOOTSTRAP__ADMIN_EMAIL={email} \\
    MALL__BOOTSTRAP__ADMIN_PASSWORD={password} \\
    MALL__DATABASE__URL=sqlite:///tmp/mall-load/mall.db \\
    target/release/mall

Start from an empty database: mall-load registers its users and creates its products through
the API (names carry a run id, so reruns against the same database still work, but old data
slows searches down).

SCENARIOS:
    browse      anonymous: GET /products/{{id}}, list (page_size=20) and search (q=..)
    cart        a customer each: POST /cart/items, PUT /cart/items/{{id}}, GET /cart
    checkout    a customer each: add 1-3 lines to the cart, POST /checkout with a good card
    flash-sale  a customer each: POST /orders (quantity 1) of one product with --flash-stock
                units until 409 insufficient_stock (an expected outcome, not an error), paying
                each order (POST /payments, then confirm) unless --no-flash-pay
    all         all four at once, the clients split between them (see --sequential)

OPTIONS:
    --url URL               the mall's base URL [default: {url}]
                            (the same as --targets URL)
    --targets URL,URL,...   several nodes of one mall cluster (one database): seeding and the
                            invariant checks go through the first (or the next that answers),
                            client i is at home on the i-th modulo their number. A request
                            that gets no HTTP answer (refused, reset, closed) fails over to
                            the next target, each at most once; a 503 with Retry-After is
                            retried on the next live target (the same with one) after
                            min(Retry-After, 250 ms), at most 3 times, within --timeout. The
                            report counts the requests each target answered, the failovers
                            and the retried 503s
    --scenario NAME[,NAME]  browse, cart, checkout, flash-sale or all [default: all]
    --sequential            run the scenarios one after another, each for --duration with
                            every client, instead of all at once
    --duration SECS         how long the load lasts (per scenario with --sequential) [default: 10]
    --concurrency N         virtual clients in total [default: 32]; with --rate, the most
                            arrivals in flight at once (split between the scenarios)
    --rate N                open loop: N arrivals per second of each scenario, each started
                            at its scheduled time whether or not the earlier ones ended, its
                            latency measured from that time (so a queue cannot hide behind
                            clients that wait). An arrival is one step: browse one request,
                            cart one request of the add/set/read cycle, checkout one whole
                            purchase (cart adds and POST /checkout), flash-sale one order
                            (with its payment unless --no-flash-pay). Each borrows a customer
                            (browse: a client) for its length; one that finds all of its
                            scenario's --concurrency busy is missed: counted and reported,
                            never queued. The per-request rows keep each request's own time
                            from send to answer; the open-loop table has the arrivals'
                            latency from their scheduled start, their lateness in starting
                            (lag: the load generator's own) and the missed; where an
                            arrival is one request, also per request kind
    --users N               customers to register [default and minimum: the clients that
                            need one, i.e. every cart, checkout and flash-sale client]
    --products N            products to create, each with 1000000 in stock [default: 200]
    --flash-stock N         stock of the flash-sale product [default: 200]
    --no-flash-pay          flash-sale buyers leave their orders unpaid
    --report PATH           also write the results as JSON to PATH
    --admin-email EMAIL     [default: {email}]
    --admin-password PW     [default: {password}]
    --seed-concurrency N    requests in flight while seeding (registration and login hash a
                            password with argon2 on the server) [default: 4]
    --timeout SECS          per-request timeout, its failovers and retries included
                            [default: 30]
    --no-idempotency-keys   send no Idempotency-Key (by default POST /orders, /checkout,
                            /payments and /payments/{{id}}/confirm carry a unique one per
                            request, the same on its retries, so a retry never repeats an
                            effect; without, retried POSTs are not safe)
    -h, --help              print this text

INVARIANTS (checked after every run, as the admin and as each seeded customer):
    stock_non_negative, stock_conserved (initial = current + units in pending_payment and paid
    orders), flash_sale_no_oversell, one_payment_per_paid_order (exactly one succeeded payment
    per paid order, none on others), no_overdue_pending_orders (none pending_payment more than
    2 s past its expires_at), acknowledged_orders_durable (every order a client was answered 201
    for exists, and is paid when the client was told so).
",
        email = DEFAULT_ADMIN_EMAIL,
        password = DEFAULT_ADMIN_PASSWORD,
        url = DEFAULT_URL,
    )
}

/// Parses the arguments (without the program name).
pub fn parse<I>(args: I) -> Result<Command, String>
where
    I: IntoIterator<Item = String>,
{
    let mut o = Options::default();
    let mut users = None;
    let mut url: Option<String> = None;
    let mut targets: Option<Vec<String>> = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--url" => url = Some(value(&name)?),
            "--targets" => targets = Some(parse_targets(&value(&name)?)?),
            "--scenario" | "--scenarios" => o.scenarios = parse_scenarios(&value(&name)?)?,
            "--sequential" => o.sequential = true,
            "--duration" => {
                o.duration = Duration::from_secs_f64(positive_f64(&name, &value(&name)?)?)
            }
            "--concurrency" => o.concurrency = positive(&name, &value(&name)?)?,
            "--rate" => o.rate = Some(rate(&name, &value(&name)?)?),
            "--users" => users = Some(number(&name, &value(&name)?)?),
            "--products" => o.products = positive(&name, &value(&name)?)?,
            "--flash-stock" => o.flash_stock = number(&name, &value(&name)?)? as i64,
            "--no-flash-pay" => o.flash_pay = false,
            "--report" => o.report = Some(PathBuf::from(value(&name)?)),
            "--admin-email" => o.admin_email = value(&name)?,
            "--admin-password" => o.admin_password = value(&name)?,
            "--seed-concurrency" => o.seed_concurrency = positive(&name, &value(&name)?)?,
            "--timeout" => {
                o.timeout = Duration::from_secs_f64(positive_f64(&name, &value(&name)?)?)
            }
            "--no-idempotency-keys" => o.idempotency_keys = false,
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
        if matches!(
            name.as_str(),
            "--sequential" | "--no-flash-pay" | "--no-idempotency-keys"
        ) && inline.is_some()
        {
            return Err(format!("{name} takes no value"));
        }
    }
    o.targets = match (url, targets) {
        (Some(_), Some(_)) => return Err("give --url or --targets, not both".to_owned()),
        (Some(u), None) => vec![base_url("--url", &u)?],
        (None, Some(t)) => t,
        (None, None) => vec![DEFAULT_URL.to_owned()],
    };
    if !o.sequential && o.concurrency < o.scenarios.len() {
        return Err(format!(
            "--concurrency {} is too low for {} scenarios at once (one client each at least)",
            o.concurrency,
            o.scenarios.len()
        ));
    }
    o.users = users.unwrap_or(0);
    Ok(Command::Run(Box::new(o)))
}

/// A base URL: `http://` or `https://`, something after it, no trailing slash.
fn base_url(name: &str, v: &str) -> Result<String, String> {
    let u = v.trim().trim_end_matches('/');
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(u.to_owned()),
        _ => Err(format!(
            "{name} wants base URLs starting with http:// (got `{v}`)"
        )),
    }
}

/// `--targets URL,URL,...`: at least one, each a base URL, none twice.
pub fn parse_targets(s: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let u = base_url("--targets", part)?;
        if out.contains(&u) {
            return Err(format!("--targets names {u} twice"));
        }
        out.push(u);
    }
    if out.is_empty() {
        return Err("--targets names no URL".to_owned());
    }
    Ok(out)
}

fn parse_scenarios(s: &str) -> Result<Vec<Scenario>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let chosen: Vec<Scenario> = if part == "all" {
            Scenario::ALL.to_vec()
        } else {
            vec![Scenario::from_name(part).ok_or_else(|| {
                format!("unknown scenario `{part}`: browse, cart, checkout, flash-sale or all")
            })?]
        };
        for c in chosen {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    if out.is_empty() {
        return Err("--scenario names nothing".to_owned());
    }
    // Report in the canonical order, whatever order they were named in.
    out.sort_by_key(|s| Scenario::ALL.iter().position(|a| a == s));
    Ok(out)
}

fn number(name: &str, v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .map_err(|_| format!("{name} wants a whole number, not `{v}`"))
}

fn positive(name: &str, v: &str) -> Result<usize, String> {
    match number(name, v)? {
        0 => Err(format!("{name} must be at least 1")),
        n => Ok(n),
    }
}

/// Arrivals per second: positive, and at most a million (a schedule the timer can follow).
fn rate(name: &str, v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= 1e6 => Ok(x),
        _ => Err(format!(
            "{name} wants arrivals per second, above 0 and at most 1000000, not `{v}`"
        )),
    }
}

fn positive_f64(name: &str, v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x < 1e7 => Ok(x),
        _ => Err(format!(
            "{name} wants a positive number of seconds, not `{v}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse(args.iter().map(|s| s.to_string())).unwrap() {
            Command::Run(o) => *o,
            Command::Help => panic!("help"),
        }
    }

    #[test]
    fn defaults_and_forms() {
        let o = run(&[]);
        assert_eq!(o.targets, vec!["http://127.0.0.1:8080"]);
        assert_eq!(o.scenarios, Scenario::ALL.to_vec());
        assert!(o.idempotency_keys);
        let o = run(&[
            "--url=http://127.0.0.1:18900/",
            "--scenario",
            "flash-sale,browse",
            "--duration",
            "2.5",
            "--concurrency=8",
            "--users",
            "50",
            "--no-flash-pay",
        ]);
        assert_eq!(o.targets, vec!["http://127.0.0.1:18900"]);
        assert_eq!(o.scenarios, vec![Scenario::Browse, Scenario::FlashSale]);
        assert_eq!(o.duration, Duration::from_millis(2500));
        assert_eq!((o.concurrency, o.users, o.flash_pay), (8, 50, false));
        assert_eq!(o.rate, None, "closed loop unless --rate");
        assert_eq!(run(&["--rate", "250"]).rate, Some(250.0));
        assert_eq!(run(&["--rate=0.5"]).rate, Some(0.5));
    }

    #[test]
    fn refusals() {
        for bad in [
            &["--scenario", "nope"][..],
            &["--concurrency", "0"],
            &["--duration"],
            &["--bogus"],
            &["--url", "127.0.0.1"],
            &["--concurrency", "2"],
            &["--sequential=yes"],
            &["--no-idempotency-keys=1"],
            &["--targets", ""],
            &["--targets", ","],
            &["--targets", "http://a:1,127.0.0.1:2"],
            &["--targets", "http://a:1,http://a:1/"],
            &["--targets", "http://"],
            &["--url", "http://a:1", "--targets", "http://b:1"],
            &["--rate", "0"],
            &["--rate", "-5"],
            &["--rate", "NaN"],
            &["--rate", "inf"],
            &["--rate", "2000000"],
            &["--rate"],
        ] {
            assert!(parse(bad.iter().map(|s| s.to_string())).is_err(), "{bad:?}");
        }
        assert!(matches!(
            parse(["--help".to_owned()]).unwrap(),
            Command::Help
        ));
    }

    #[test]
    fn targets_are_a_list_and_url_is_one_of_them() {
        let o = run(&[
            "--targets",
            " http://127.0.0.1:1/, http://127.0.0.1:2,,https://node3:8443 ",
            "--no-idempotency-keys",
        ]);
        assert_eq!(
            o.targets,
            vec![
                "http://127.0.0.1:1",
                "http://127.0.0.1:2",
                "https://node3:8443"
            ]
        );
        assert!(!o.idempotency_keys);
        assert_eq!(
            run(&["--targets=http://127.0.0.1:1"]).targets,
            run(&["--url", "http://127.0.0.1:1/"]).targets
        );
        assert!(help().contains("--targets URL,URL"));
    }
}
