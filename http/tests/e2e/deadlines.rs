//! Durable deadlines, end to end: unpaid orders expire (stock back, session cancelled), payment
//! sessions expire, both survive a SIGKILL and a restart, and confirms or cancels raced against
//! an expiry leave each order either paid once or cancelled, never both.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::commerce::{
    GOOD_CARD, cancel_order, cancel_payment, card, check_invariants, confirm, get_order,
    get_payment, id, kill, open_payment, order_path, order_payments, place_order, product, restart,
    secs_between, sleep_until, stock, time_of, try_open_payment,
};
use crate::harness::{App, Backend, Server, ServerBuilder, eventually, metric};

both_backends!(
    unpaid_orders_expire,
    paid_and_cancelled_orders_are_left_alone,
    payment_sessions_expire,
    overdue_orders_expire_after_a_restart,
    pending_deadlines_are_rearmed_after_a_restart,
    payment_sessions_expire_after_a_restart,
    confirms_raced_against_expiry_charge_or_cancel,
    cancels_raced_against_expiry_return_stock_once,
    metrics_count_timers_orders_and_payments,
    many_orders_expire_together,
);

const ORDER_TIMEOUT: &str = "MALL__ORDER__PAYMENT_TIMEOUT_SECS";
const SESSION_TIMEOUT: &str = "MALL__PAYMENT__SESSION_TIMEOUT_SECS";

/// How long after a deadline the tests poll before failing (the promise is one second).
const GRACE: Duration = Duration::from_secs(3);

/// Polls the order until `check` holds, until `deadline` + `grace`; returns it, or panics with
/// the last answer.
async fn order_becomes(
    app: &Server,
    token: &str,
    order_id: &str,
    deadline: time::OffsetDateTime,
    grace: Duration,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let left = (deadline - time::OffsetDateTime::now_utc())
        .as_seconds_f64()
        .max(0.0);
    let within = Duration::from_secs_f64(left) + grace;
    let (ok, took) = eventually(within, || async {
        check(&get_order(app, token, order_id).await)
    })
    .await;
    let last = get_order(app, token, order_id).await;
    assert!(ok, "{what}: not so after {took:?}: {last}");
    last
}

fn is_expired(order: &Value) -> bool {
    order["status"] == "cancelled" && order["cancel_reason"] == "expired"
}

/// Asserts that an order was expired by its deadline: not before it, within a few seconds.
#[track_caller]
fn assert_expired_on_time(order: &Value) {
    assert!(is_expired(order), "not expired: {order}");
    let expires = time_of(&order["expires_at"], "expires_at");
    let cancelled = time_of(&order["cancelled_at"], "cancelled_at");
    assert!(
        cancelled >= expires,
        "cancelled before its deadline: {order}"
    );
}

async fn unpaid_orders_expire(backend: Backend) {
    let app = App::start_with(backend, |b| b.env(ORDER_TIMEOUT, "2")).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "perishable", 100, 10).await;
    let b = product(&app, &admin.access, "other", 100, 10).await;
    let user = app.new_user("late").await;
    let token = user.access();
    let order = place_order(&app, token, &[(&a, 3), (&b, 1)]).await;
    let payment = open_payment(&app, token, &id(&order)).await;
    let created = time_of(&order["created_at"], "created_at");
    let expires = time_of(&order["expires_at"], "expires_at");
    let timeout = secs_between(created, expires);
    assert!(
        (1.0..=3.0).contains(&timeout),
        "expires_at = created_at + 2 s: {order}"
    );
    assert_eq!(stock(&app, &a).await, 7);

    let expired = order_becomes(
        &app,
        token,
        &id(&order),
        expires,
        GRACE,
        "expired",
        is_expired,
    )
    .await;
    assert_expired_on_time(&expired);
    let late = secs_between(expires, time_of(&expired["cancelled_at"], "cancelled_at"));
    assert!(
        late <= 2.5,
        "expired {late} s after its deadline: {expired}"
    );
    assert_eq!(expired["items"], order["items"]);
    assert_eq!(stock(&app, &a).await, 10, "its stock comes back");
    assert_eq!(stock(&app, &b).await, 10, "its stock comes back");
    let p = get_payment(&app, token, &id(&payment)).await;
    assert_eq!(
        p["status"], "cancelled",
        "its pending payment is cancelled: {p}"
    );

    // Nothing can be done with it any more.
    confirm(&app, token, &id(&payment), &card(GOOD_CARD))
        .await
        .expect_error(409, "invalid_state");
    try_open_payment(&app, token, &id(&order))
        .await
        .expect_error(409, "invalid_state");
    app.patch(&order_path(&id(&order)), Some(token), &json!({"note": "x"}))
        .await
        .expect_error(409, "invalid_state");
    cancel_order(&app, token, &id(&order))
        .await
        .expect_error(409, "invalid_state");
    assert_eq!(get_order(&app, token, &id(&order)).await, expired);
    check_invariants(&app, &[(a, 10), (b, 10)], &[token.to_owned()]).await;
}

async fn paid_and_cancelled_orders_are_left_alone(backend: Backend) {
    let app = App::start_with(backend, |b| b.env(ORDER_TIMEOUT, "2")).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "kept", 100, 10).await;
    let user = app.new_user("punctual").await;
    let token = user.access();
    let paid = place_order(&app, token, &[(&a, 2)]).await;
    let payment = open_payment(&app, token, &id(&paid)).await;
    confirm(&app, token, &id(&payment), &card(GOOD_CARD))
        .await
        .expect(200);
    let cancelled = place_order(&app, token, &[(&a, 3)]).await;
    cancel_order(&app, token, &id(&cancelled)).await.expect(200);
    let pending = place_order(&app, token, &[(&a, 1)]).await;
    let paid_before = get_order(&app, token, &id(&paid)).await;
    let cancelled_before = get_order(&app, token, &id(&cancelled)).await;
    assert_eq!(stock(&app, &a).await, 7);

    // Once the last deadline has passed and the unpaid one expired...
    let expires = time_of(&pending["expires_at"], "expires_at");
    order_becomes(
        &app,
        token,
        &id(&pending),
        expires,
        GRACE,
        "expired",
        is_expired,
    )
    .await;
    // The pending order was placed last, so its deadline is the latest: its expiry, observed
    // above, is a timer that went off after the others' deadlines had passed (no sleep needed
    // to let them "have a chance")...
    let deadline_of = |o: &Value| time_of(&o["expires_at"], "expires_at");
    assert!(deadline_of(&paid) <= expires && deadline_of(&cancelled) <= expires);
    // ...the others did not move, and the cancelled one's stock came back only once.
    assert_eq!(get_order(&app, token, &id(&paid)).await, paid_before);
    assert_eq!(
        get_order(&app, token, &id(&cancelled)).await,
        cancelled_before
    );
    assert_eq!(cancelled_before["cancel_reason"], "user");
    assert_eq!(stock(&app, &a).await, 8);
    assert_eq!(
        get_payment(&app, token, &id(&payment)).await["status"],
        "succeeded"
    );
    check_invariants(&app, &[(a, 10)], &[token.to_owned()]).await;
}

async fn payment_sessions_expire(backend: Backend) {
    let app = App::start_with(backend, |b| b.env(SESSION_TIMEOUT, "2")).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "slow", 100, 10).await;
    let user = app.new_user("slow").await;
    let token = user.access();
    let order = place_order(&app, token, &[(&a, 1)]).await;
    let first = open_payment(&app, token, &id(&order)).await;
    let expires = time_of(&first["expires_at"], "expires_at");
    let timeout = secs_between(time_of(&first["created_at"], "created_at"), expires);
    assert!((1.0..=3.0).contains(&timeout), "a 2 s session: {first}");

    let left = (expires - time::OffsetDateTime::now_utc())
        .as_seconds_f64()
        .max(0.0);
    let (ok, took) = eventually(Duration::from_secs_f64(left) + GRACE, || async {
        get_payment(&app, token, &id(&first)).await["status"] == "expired"
    })
    .await;
    let p = get_payment(&app, token, &id(&first)).await;
    assert!(ok, "the session did not expire after {took:?}: {p}");
    assert_eq!(p["succeeded_at"], Value::Null);

    // The order is still payable, with a new session.
    let o = get_order(&app, token, &id(&order)).await;
    assert_eq!(o["status"], "pending_payment", "{o}");
    confirm(&app, token, &id(&first), &card(GOOD_CARD))
        .await
        .expect_error(409, "invalid_state");
    cancel_payment(&app, token, &id(&first))
        .await
        .expect_error(409, "invalid_state");
    let second = open_payment(&app, token, &id(&order)).await;
    assert_ne!(second["id"], first["id"]);
    confirm(&app, token, &id(&second), &card(GOOD_CARD))
        .await
        .expect(200);
    assert_eq!(get_order(&app, token, &id(&order)).await["status"], "paid");
    assert_eq!(
        get_payment(&app, token, &id(&first)).await["status"],
        "expired"
    );
    check_invariants(&app, &[(a, 10)], &[token.to_owned()]).await;
}

async fn overdue_orders_expire_after_a_restart(backend: Backend) {
    let mut app = App::start_with(backend, |b| b.env(ORDER_TIMEOUT, "3")).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "durable", 100, 10).await;
    let user = app.new_user("durable").await;
    let token = user.access().to_owned();
    let order = place_order(&app, &token, &[(&a, 4)]).await;
    let payment = open_payment(&app, &token, &id(&order)).await;
    let paid = place_order(&app, &token, &[(&a, 1)]).await;
    let paid_payment = open_payment(&app, &token, &id(&paid)).await;
    confirm(&app, &token, &id(&paid_payment), &card(GOOD_CARD))
        .await
        .expect(200);
    assert_eq!(stock(&app, &a).await, 5);
    let expires = time_of(&order["expires_at"], "expires_at");

    // SIGKILL before the deadline; back only once it has passed. The new process is configured
    // with a long timeout: the stored deadline rules.
    kill(&mut app);
    // Down until the (configured, short) deadline has passed: the scenario itself.
    sleep_until(expires, Duration::ZERO).await;
    restart(&mut app, |b| b.env(ORDER_TIMEOUT, "900")).await;
    let started = std::time::Instant::now();
    let (ok, took) = eventually(Duration::from_secs(5), || async {
        is_expired(&get_order(&app, &token, &id(&order)).await)
    })
    .await;
    let last = get_order(&app, &token, &id(&order)).await;
    assert!(
        ok,
        "not expired {took:?} after the restart ({:?} since listening): {last}\n{}",
        started.elapsed(),
        app.process.output_report()
    );
    assert_expired_on_time(&last);
    assert_eq!(stock(&app, &a).await, 9, "its stock is back");
    assert_eq!(
        get_payment(&app, &token, &id(&payment)).await["status"],
        "cancelled"
    );
    assert_eq!(get_order(&app, &token, &id(&paid)).await["status"], "paid");
    check_invariants(&app, &[(a, 10)], std::slice::from_ref(&token)).await;
}

async fn pending_deadlines_are_rearmed_after_a_restart(backend: Backend) {
    let mut app = App::start_with(backend, |b| b.env(ORDER_TIMEOUT, "4")).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "rearmed", 100, 10).await;
    let user = app.new_user("rearmed").await;
    let token = user.access().to_owned();
    let order = place_order(&app, &token, &[(&a, 2)]).await;
    let expires = time_of(&order["expires_at"], "expires_at");

    // Killed and restarted at once, before the deadline (the new process would never arm a
    // timer of its own for it: its timeout is long).
    kill(&mut app);
    restart(&mut app, |b| b.env(ORDER_TIMEOUT, "900")).await;
    let restarted_before_deadline = time::OffsetDateTime::now_utc() < expires;
    let o = get_order(&app, &token, &id(&order)).await;
    if restarted_before_deadline {
        assert_eq!(o["status"], "pending_payment", "expired early: {o}");
    }
    let expired = order_becomes(
        &app,
        &token,
        &id(&order),
        expires,
        GRACE,
        "expired",
        is_expired,
    )
    .await;
    assert_expired_on_time(&expired);
    assert_eq!(stock(&app, &a).await, 10);
    check_invariants(&app, &[(a, 10)], std::slice::from_ref(&token)).await;
}

async fn payment_sessions_expire_after_a_restart(backend: Backend) {
    let mut app = App::start_with(backend, |b| b.env(SESSION_TIMEOUT, "2")).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "session", 100, 10).await;
    let user = app.new_user("session").await;
    let token = user.access().to_owned();
    let order = place_order(&app, &token, &[(&a, 1)]).await;
    let payment = open_payment(&app, &token, &id(&order)).await;
    let expires = time_of(&payment["expires_at"], "expires_at");

    kill(&mut app);
    // Down until the (configured, short) deadline has passed: the scenario itself.
    sleep_until(expires, Duration::ZERO).await;
    restart(&mut app, |b| b).await;
    let (ok, took) = eventually(Duration::from_secs(5), || async {
        get_payment(&app, &token, &id(&payment)).await["status"] == "expired"
    })
    .await;
    let p = get_payment(&app, &token, &id(&payment)).await;
    assert!(ok, "session not expired {took:?} after the restart: {p}");
    assert_eq!(
        get_order(&app, &token, &id(&order)).await["status"],
        "pending_payment"
    );
    let second = open_payment(&app, &token, &id(&order)).await;
    confirm(&app, &token, &id(&second), &card(GOOD_CARD))
        .await
        .expect(200);
    check_invariants(&app, &[(a, 10)], std::slice::from_ref(&token)).await;
}

/// For several orders, a burst of confirms is fired around the order's deadline (some before,
/// some after); each order must end either paid, with the one confirm that answered 200 and one
/// succeeded payment, or expired with no 200 and no succeeded payment.
async fn confirms_raced_against_expiry_charge_or_cancel(backend: Backend) {
    let app = App::start_with(backend, |b| b.env(ORDER_TIMEOUT, "2")).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "raced", 100, 20).await;
    let user = app.new_user("racer").await;
    let token = user.access();
    let offsets_ms: [i64; 5] = [-300, -120, 0, 120, 300];
    let mut rounds = Vec::new();
    for _ in offsets_ms {
        let order = place_order(&app, token, &[(&a, 2)]).await;
        let payment = open_payment(&app, token, &id(&order)).await;
        rounds.push((order, payment));
    }
    let c = card(GOOD_CARD);
    let results: Vec<Vec<(u16, String)>> = join_all(rounds.iter().zip(offsets_ms).map(
        |((order, payment), offset)| {
            let c = &c;
            let app = &app;
            async move {
                let start = time_of(&order["expires_at"], "expires_at")
                    + time::Duration::milliseconds(offset);
                sleep_until(start, Duration::ZERO).await;
                join_all((0..6u64).map(|k| async move {
                    tokio::time::sleep(Duration::from_millis(k * 60)).await;
                    let r = confirm(app, token, &id(payment), c).await;
                    (r.status, r.text)
                }))
                .await
            }
        },
    ))
    .await;

    let mut outcomes = Vec::new();
    for ((order, _), answers) in rounds.iter().zip(&results) {
        let expires = time_of(&order["expires_at"], "expires_at");
        let last = order_becomes(&app, token, &id(order), expires, GRACE, "settled", |o| {
            o["status"] != "pending_payment"
        })
        .await;
        let oks = answers.iter().filter(|(s, _)| *s == 200).count();
        for (status, text) in answers {
            assert!(
                *status == 200 || *status == 409,
                "a confirm raced with expiry answered {status}: {text}"
            );
            if *status == 409 {
                assert!(text.contains("invalid_state"), "{text}");
            }
        }
        let payments = order_payments(&app, token, &id(order)).await;
        let succeeded = payments
            .iter()
            .filter(|p| p["status"] == "succeeded")
            .count();
        match last["status"].as_str() {
            Some("paid") => {
                assert_eq!(
                    oks, 1,
                    "paid: exactly one confirm answered 200: {answers:?}"
                );
                assert_eq!(succeeded, 1, "{payments:?}");
            }
            Some("cancelled") => {
                assert_expired_on_time(&last);
                assert_eq!(oks, 0, "expired, yet a confirm answered 200: {answers:?}");
                assert_eq!(succeeded, 0, "{payments:?}");
            }
            _ => panic!("unexpected final state: {last}"),
        }
        outcomes.push(last["status"].as_str().unwrap().to_owned());
    }
    eprintln!("confirm vs expiry outcomes by offset {offsets_ms:?}: {outcomes:?}");
    check_invariants(&app, &[(a, 20)], &[token.to_owned()]).await;
}

/// A user's cancel and confirms, fired together around the deadline: the order ends paid (the
/// cancel refused) or cancelled once (by the user or by the deadline), and its stock comes back
/// exactly once.
async fn cancels_raced_against_expiry_return_stock_once(backend: Backend) {
    let app = App::start_with(backend, |b| b.env(ORDER_TIMEOUT, "2")).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "contested", 100, 20).await;
    let user = app.new_user("contester").await;
    let token = user.access();
    let offsets_ms: [i64; 4] = [-150, -30, 30, 150];
    let mut rounds = Vec::new();
    for _ in offsets_ms {
        let order = place_order(&app, token, &[(&a, 3)]).await;
        let payment = open_payment(&app, token, &id(&order)).await;
        rounds.push((order, payment));
    }
    // A probe placed after them all, left alone: its expiry is a timer going off after every
    // deadline of the rounds, the sign that no late timer of theirs is still to come.
    let probe = place_order(&app, token, &[(&a, 1)]).await;
    let c = card(GOOD_CARD);
    let results: Vec<(u16, Vec<u16>)> = join_all(rounds.iter().zip(offsets_ms).map(
        |((order, payment), offset)| {
            let c = &c;
            let app = &app;
            async move {
                let start = time_of(&order["expires_at"], "expires_at")
                    + time::Duration::milliseconds(offset);
                sleep_until(start, Duration::ZERO).await;
                let (order_id, payment_id) = (id(order), id(payment));
                let (cancelled, confirms) = futures_util::join!(
                    cancel_order(app, token, &order_id),
                    join_all((0..2).map(|_| confirm(app, token, &payment_id, c))),
                );
                for r in confirms.iter().chain(std::iter::once(&cancelled)) {
                    assert!(
                        r.status == 200 || r.status == 409,
                        "{}: {} {}",
                        r.what,
                        r.status,
                        r.text
                    );
                }
                (
                    cancelled.status,
                    confirms.iter().map(|r| r.status).collect::<Vec<_>>(),
                )
            }
        },
    ))
    .await;

    for ((order, _), (cancel_status, confirm_statuses)) in rounds.iter().zip(&results) {
        let expires = time_of(&order["expires_at"], "expires_at");
        let last = order_becomes(&app, token, &id(order), expires, GRACE, "settled", |o| {
            o["status"] != "pending_payment"
        })
        .await;
        let oks = confirm_statuses.iter().filter(|s| **s == 200).count();
        match last["status"].as_str() {
            Some("paid") => {
                assert_eq!(oks, 1, "{last}: confirms {confirm_statuses:?}");
                assert_eq!(*cancel_status, 409, "paid and cancelled: {last}");
            }
            Some("cancelled") => {
                assert_eq!(oks, 0, "cancelled, yet charged: {last}");
                if *cancel_status == 200 {
                    assert_eq!(last["cancel_reason"], "user", "{last}");
                } else {
                    assert_expired_on_time(&last);
                }
            }
            _ => panic!("unexpected final state: {last}"),
        }
    }
    // Once the probe has expired no timer of the rounds is left to fire: count the stock.
    let probe_deadline = time_of(&probe["expires_at"], "expires_at");
    order_becomes(
        &app,
        token,
        &id(&probe),
        probe_deadline,
        GRACE,
        "probe expired",
        is_expired,
    )
    .await;
    check_invariants(&app, &[(a, 20)], &[token.to_owned()]).await;
}

/// `/metrics` shows timers armed and fired, orders and payments by outcome, and how many orders
/// each placement transaction held.
async fn metrics_count_timers_orders_and_payments(backend: Backend) {
    let app = App::start_with(backend, |b| b.env(ORDER_TIMEOUT, "2")).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "metered", 100, 10).await;
    let user = app.new_user("metered").await;
    let token = user.access();
    let paid = place_order(&app, token, &[(&a, 1)]).await;
    let payment = open_payment(&app, token, &id(&paid)).await;
    confirm(&app, token, &id(&payment), &card(GOOD_CARD))
        .await
        .expect(200);
    let order = place_order(&app, token, &[(&a, 1)]).await;
    let expires = time_of(&order["expires_at"], "expires_at");
    order_becomes(
        &app,
        token,
        &id(&order),
        expires,
        GRACE,
        "expired",
        is_expired,
    )
    .await;

    let resp = app.get("/metrics", None).await;
    assert_eq!(resp.status, 200);
    let names: Vec<&str> = resp
        .text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default())
        .collect();
    for (what, words) in [
        ("timers", &["timer"][..]),
        ("orders", &["order"][..]),
        ("payments", &["payment"][..]),
        (
            "orders per placement transaction",
            &["placement", "batch"][..],
        ),
    ] {
        assert!(
            names.iter().any(|n| words.iter().all(|w| n.contains(w))),
            "/metrics has no series about {what}: {names:?}"
        );
    }
}

/// Thirty orders placed at once all expire on time, and all their stock comes back.
async fn many_orders_expire_together(backend: Backend) {
    let app = App::start_with(backend, |b| b.env(ORDER_TIMEOUT, "2")).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "bulk", 100, 30).await;
    let user = app.new_user("bulk").await;
    let token = user.access();
    let line = [(a.as_str(), 1)];
    let orders: Vec<Value> = join_all((0..30).map(|_| place_order(&app, token, &line))).await;
    assert_eq!(stock(&app, &a).await, 0);
    let last = orders
        .iter()
        .map(|o| time_of(&o["expires_at"], "expires_at"))
        .max()
        .unwrap();
    let left = (last - time::OffsetDateTime::now_utc())
        .as_seconds_f64()
        .max(0.0);
    let (ok, took) = eventually(Duration::from_secs_f64(left) + GRACE, || async {
        stock(&app, &a).await == 30
    })
    .await;
    assert!(ok, "the stock was {} after {took:?}", stock(&app, &a).await);
    for o in &orders {
        assert_expired_on_time(&get_order(&app, token, &id(o)).await);
    }
    check_invariants(&app, &[(a, 30)], &[token.to_owned()]).await;
}

/// Two processes on one PostgreSQL database, each holding deadlines of the same orders (the
/// second loads them at start-up): every order expires once, and its stock comes back once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_database_expire_each_order_once() {
    let db = Backend::Postgres.database().await;
    let node1 = ServerBuilder::new(db.url())
        .env(ORDER_TIMEOUT, "3")
        .start()
        .await;
    let admin = node1.admin().await;
    let a = product(&node1, &admin.access, "shared", 100, 40).await;
    let user = node1.new_user("twice").await;
    let token = user.access();
    let mut orders = Vec::new();
    for _ in 0..5 {
        orders.push(place_order(&node1, token, &[(&a, 2)]).await);
    }
    let node2 = ServerBuilder::new(db.url())
        .secret(node1.secret())
        .env(
            "MALL__BOOTSTRAP__ADMIN_PASSWORD",
            &node1.process.admin_password,
        )
        .env(ORDER_TIMEOUT, "3")
        .start()
        .await;
    for _ in 0..5 {
        orders.push(place_order(&node2, token, &[(&a, 2)]).await);
    }
    assert_eq!(stock(&node1, &a).await, 20);
    let last = orders
        .iter()
        .map(|o| time_of(&o["expires_at"], "expires_at"))
        .max()
        .unwrap();
    for o in &orders {
        let expires = time_of(&o["expires_at"], "expires_at");
        let expired =
            order_becomes(&node1, token, &id(o), expires, GRACE, "expired", is_expired).await;
        assert_expired_on_time(&expired);
    }
    // Every order is expired; each node also held timers for orders the other expired. Once
    // every timer each node set has gone off, no second expiry can still come: then count.
    assert!(time::OffsetDateTime::now_utc() > last);
    for node in [&node1, &node2] {
        let (all_fired, took) = eventually(GRACE, || async {
            let armed = metric(node, "actor_timers_armed_total{kind=\"order\"}").await;
            armed > 0.0 && metric(node, "actor_timers_fired_total{kind=\"order\"}").await >= armed
        })
        .await;
        assert!(all_fired, "order timers still armed after {took:?}");
    }
    assert_eq!(
        stock(&node1, &a).await,
        40,
        "each order's stock came back once"
    );
    assert_eq!(stock(&node2, &a).await, 40);
    check_invariants(&node2, &[(a, 40)], &[token.to_owned()]).await;
}
