//! Payments (`/api/v1/payments`), end to end: opening a session for an order, confirming it with a
//! card (accepted, declined, invalid), cancelling it, card data never kept, and an order charged
//! at most once however many confirms race.

use futures_util::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::commerce::{
    DECLINED_CARD, GOOD_CARD, PAYMENTS, cancel_order, cancel_payment, card, check_invariants,
    confirm, get_order, get_payment, id, luhn, luhn_ok, open_payment, order_payments, place_order,
    product, secs_between, stock, time_of, try_open_payment,
};
use crate::harness::{App, Backend, now_unix};

both_backends!(
    open_a_payment_session,
    confirm_a_payment,
    a_declined_card_can_be_retried,
    invalid_cards_change_nothing,
    card_numbers_of_every_valid_length_are_accepted,
    cancel_a_payment_session,
    card_data_is_never_stored_or_logged,
    concurrent_confirms_charge_once,
    concurrent_opens_share_one_session,
    a_cancel_raced_with_confirms_ends_one_way,
);

/// The month before the current one, as `(month, year)`: always in the past.
fn last_month() -> (u8, i32) {
    let now = time::OffsetDateTime::now_utc();
    let month = u8::from(now.month());
    if month == 1 {
        (12, now.year() - 1)
    } else {
        (month - 1, now.year())
    }
}

async fn open_a_payment_session(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "radio", 4599, 10).await;
    let user = app.new_user("payer").await;
    let token = user.access();
    let order = place_order(&app, token, &[(&a, 3)]).await;
    let before = now_unix();

    let payment = open_payment(&app, token, &id(&order)).await;
    assert_eq!(payment["order_id"], order["id"]);
    assert_eq!(payment["amount_cents"], 3 * 4599, "the order's total");
    assert_eq!(payment["status"], "pending");
    assert_eq!(payment["attempts"], 0);
    for field in ["card_last4", "last_error", "succeeded_at", "cancelled_at"] {
        assert_eq!(payment[field], Value::Null, "{field}: {payment}");
    }
    let created = time_of(&payment["created_at"], "created_at");
    assert!((created.unix_timestamp() - before).abs() <= 30);
    let timeout = secs_between(created, time_of(&payment["expires_at"], "expires_at"));
    assert!(
        (298.0..=302.0).contains(&timeout),
        "expires_at = opened + payment.session_timeout_secs (300): {timeout} s: {payment}"
    );

    // Asking again gives the pending one back.
    let again = try_open_payment(&app, token, &id(&order)).await.expect(200);
    assert_eq!(again, payment);
    assert_eq!(get_payment(&app, token, &id(&payment)).await, payment);
    assert_eq!(
        order_payments(&app, token, &id(&order)).await,
        std::slice::from_ref(&payment)
    );
    let page = app
        .get(
            &format!("/api/v1/orders/{}/payments", id(&order)),
            Some(token),
        )
        .await
        .expect(200);
    assert_eq!(page["page"], 1);
    assert_eq!(page["page_size"], 20);
    assert_eq!(page["total"], 1);

    // The amount is never the client's; bodies are checked.
    for body in [
        json!({}),
        json!({"order_id": id(&order), "amount_cents": 1}),
        json!({"order_id": id(&order), "status": "succeeded"}),
        json!({"order_id": order["id"].as_str().unwrap().parse::<i64>().unwrap()}),
        json!({"order_id": null}),
    ] {
        app.post(PAYMENTS, Some(token), &body)
            .await
            .expect_error(400, "invalid_request");
    }
    try_open_payment(&app, token, "999999999999")
        .await
        .expect_error(404, "not_found");
    assert_eq!(
        order_payments(&app, token, &id(&order)).await,
        std::slice::from_ref(&payment)
    );
}

async fn confirm_a_payment(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "clock", 2000, 10).await;
    let user = app.new_user("confirmer").await;
    let token = user.access();
    let order = place_order(&app, token, &[(&a, 2)]).await;
    let payment = open_payment(&app, token, &id(&order)).await;

    let resp = confirm(&app, token, &id(&payment), &card(GOOD_CARD)).await;
    let paid = crate::commerce::checked_payment(resp.expect(200));
    assert!(!resp.text.contains(GOOD_CARD));
    assert_eq!(paid["id"], payment["id"]);
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(paid["card_last4"], "4242");
    assert_eq!(paid["amount_cents"], 4000);
    assert_eq!(paid["last_error"], Value::Null);
    assert_eq!(paid["created_at"], payment["created_at"]);
    assert!(paid["attempts"].as_i64().unwrap() >= 1, "{paid}");
    assert!(
        time_of(&paid["succeeded_at"], "succeeded_at")
            >= time_of(&payment["created_at"], "created_at")
    );
    assert_eq!(get_payment(&app, token, &id(&payment)).await, paid);

    let order = get_order(&app, token, &id(&order)).await;
    assert_eq!(order["status"], "paid");
    assert!(order["paid_at"].is_string());
    assert_eq!(stock(&app, &a).await, 8, "paid stock stays taken");

    // Charged once: nothing more can happen to it.
    for c in [card(GOOD_CARD), card(DECLINED_CARD)] {
        confirm(&app, token, &id(&payment), &c)
            .await
            .expect_error(409, "invalid_state");
    }
    cancel_payment(&app, token, &id(&payment))
        .await
        .expect_error(409, "invalid_state");
    try_open_payment(&app, token, &id(&order))
        .await
        .expect_error(409, "invalid_state");
    assert_eq!(order_payments(&app, token, &id(&order)).await, [paid]);
    assert_eq!(get_order(&app, token, &id(&order)).await, order);

    // Unknown payment.
    confirm(&app, token, "999999999999", &card(GOOD_CARD))
        .await
        .expect_error(404, "not_found");
    check_invariants(&app, &[(a, 10)], &[token.to_owned()]).await;
}

async fn a_declined_card_can_be_retried(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "bike", 50000, 2).await;
    let user = app.new_user("retrier").await;
    let token = user.access();
    let order = place_order(&app, token, &[(&a, 1)]).await;
    let payment = open_payment(&app, token, &id(&order)).await;

    for attempt in 1..=2 {
        confirm(&app, token, &id(&payment), &card(DECLINED_CARD))
            .await
            .expect_error(402, "card_declined");
        let p = get_payment(&app, token, &id(&payment)).await;
        assert_eq!(p["status"], "pending", "a decline leaves it pending");
        assert_eq!(p["last_error"], "card_declined");
        assert_eq!(p["attempts"], attempt, "{p}");
        assert_eq!(p["succeeded_at"], Value::Null);
        assert_eq!(
            get_order(&app, token, &id(&order)).await["status"],
            "pending_payment"
        );
    }
    // Asking for a session gives the same one back.
    let again = try_open_payment(&app, token, &id(&order)).await.expect(200);
    assert_eq!(again["id"], payment["id"]);

    let paid = confirm(&app, token, &id(&payment), &card(GOOD_CARD))
        .await
        .expect(200);
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(paid["card_last4"], "4242");
    assert!(paid["attempts"].as_i64().unwrap() >= 2, "{paid}");
    assert_eq!(get_order(&app, token, &id(&order)).await["status"], "paid");
    check_invariants(&app, &[(a, 2)], &[token.to_owned()]).await;
}

async fn invalid_cards_change_nothing(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "camera", 30000, 2).await;
    let user = app.new_user("fumbler").await;
    let token = user.access();
    let order = place_order(&app, token, &[(&a, 1)]).await;
    let payment = open_payment(&app, token, &id(&order)).await;

    assert!(!luhn_ok("4242424242424241"));
    let (past_month, past_year) = last_month();
    let with = |number: &str, month: Value, year: Value, cvc: &str| json!({"number": number, "exp_month": month, "exp_year": year, "cvc": cvc});
    let invalid = [
        ("Luhn check fails", card("4242424242424241")),
        ("Luhn check fails (declined card)", card("4000000000000003")),
        (
            "expired in 2020",
            with(GOOD_CARD, json!(12), json!(2020), "123"),
        ),
        (
            "expired last month",
            with(GOOD_CARD, json!(past_month), json!(past_year), "123"),
        ),
        ("month 13", with(GOOD_CARD, json!(13), json!(2099), "123")),
        ("month 0", with(GOOD_CARD, json!(0), json!(2099), "123")),
        (
            "cvc of 2 digits",
            with(GOOD_CARD, json!(12), json!(2099), "12"),
        ),
        (
            "cvc of 5 digits",
            with(GOOD_CARD, json!(12), json!(2099), "12345"),
        ),
        (
            "cvc with a letter",
            with(GOOD_CARD, json!(12), json!(2099), "12a"),
        ),
        ("empty cvc", with(GOOD_CARD, json!(12), json!(2099), "")),
        ("12 digits", card(&luhn("4", 12))),
        ("20 digits", card(&luhn("4", 20))),
        ("spaces", card("4242 4242 4242 4242")),
        ("dashes", card("4242-4242-4242-4242")),
        ("a letter", card("424242424242424a")),
        ("empty number", card("")),
    ];
    for (what, c) in &invalid {
        let resp = confirm(&app, token, &id(&payment), c).await;
        assert_eq!(
            resp.status, 400,
            "{what}: expected 400 invalid_card, got {} {}",
            resp.status, resp.text
        );
        resp.expect_error(400, "invalid_card");
        assert_eq!(
            get_payment(&app, token, &id(&payment)).await,
            payment,
            "{what}: an invalid card changes nothing (attempts, last_error)"
        );
    }
    // Wrong shapes are 400 too.
    let mut extra = card(GOOD_CARD);
    extra["holder"] = json!("Ada");
    app.post(
        &format!("{PAYMENTS}/{}/confirm", id(&payment)),
        Some(token),
        &extra,
    )
    .await
    .expect_error(400, "invalid_request");
    for c in [
        json!({}),
        json!({"number": GOOD_CARD, "exp_month": 12, "exp_year": 2099}),
        json!({"number": 4242424242424242_i64, "exp_month": 12, "exp_year": 2099, "cvc": "123"}),
        json!({"number": GOOD_CARD, "exp_month": "12", "exp_year": 2099, "cvc": "123"}),
        json!({"number": GOOD_CARD, "exp_month": 12, "exp_year": 2099, "cvc": 123}),
    ] {
        confirm(&app, token, &id(&payment), &c)
            .await
            .expect_error_in(400, &["invalid_request", "invalid_card"]);
    }
    assert_eq!(get_payment(&app, token, &id(&payment)).await, payment);
    assert_eq!(
        get_order(&app, token, &id(&order)).await["status"],
        "pending_payment"
    );

    // Then a good card goes through.
    let paid = confirm(&app, token, &id(&payment), &card(GOOD_CARD))
        .await
        .expect(200);
    assert_eq!(paid["status"], "succeeded");
}

async fn card_numbers_of_every_valid_length_are_accepted(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "ticket", 100, 10).await;
    let user = app.new_user("cards").await;
    let token = user.access();
    let now = time::OffsetDateTime::now_utc();
    let thirteen = luhn("4", 13);
    let nineteen = luhn("62", 19);
    let cards = [
        json!({"number": thirteen, "exp_month": 1, "exp_year": 2099, "cvc": "1234"}),
        json!({"number": nineteen, "exp_month": 6, "exp_year": 2040, "cvc": "000"}),
        json!({"number": "5555555555554444", "exp_month": 12, "exp_year": 2099, "cvc": "999"}),
        // Valid until the end of its month.
        json!({"number": GOOD_CARD, "exp_month": u8::from(now.month()), "exp_year": now.year(), "cvc": "123"}),
    ];
    for c in &cards {
        let order = place_order(&app, token, &[(&a, 1)]).await;
        let payment = open_payment(&app, token, &id(&order)).await;
        let resp = confirm(&app, token, &id(&payment), c).await;
        let paid = resp.expect(200);
        let number = c["number"].as_str().unwrap();
        assert_eq!(paid["status"], "succeeded", "{c}");
        assert_eq!(paid["card_last4"], number[number.len() - 4..], "{c}");
        assert_eq!(get_order(&app, token, &id(&order)).await["status"], "paid");
    }
}

async fn cancel_a_payment_session(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "guitar", 70000, 3).await;
    let user = app.new_user("hesitant").await;
    let token = user.access();
    let order = place_order(&app, token, &[(&a, 1)]).await;
    let first = open_payment(&app, token, &id(&order)).await;
    let cancel_path = format!("{PAYMENTS}/{}/cancel", id(&first));

    app.post(
        &cancel_path,
        Some(token),
        &json!({"why": "changed my mind"}),
    )
    .await
    .expect_error(400, "invalid_request");
    // An empty body with no content type.
    let cancelled = crate::commerce::checked_payment(
        cancel_payment(&app, token, &id(&first)).await.expect(200),
    );
    assert_eq!(cancelled["id"], first["id"]);
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].is_string());
    assert_eq!(get_payment(&app, token, &id(&first)).await, cancelled);
    let o = get_order(&app, token, &id(&order)).await;
    assert_eq!(o["status"], "pending_payment", "the order stays payable");
    assert_eq!(stock(&app, &a).await, 2, "the order keeps its stock");

    cancel_payment(&app, token, &id(&first))
        .await
        .expect_error(409, "invalid_state");
    confirm(&app, token, &id(&first), &card(GOOD_CARD))
        .await
        .expect_error(409, "invalid_state");

    // A new session.
    let second = open_payment(&app, token, &id(&order)).await;
    assert_ne!(second["id"], first["id"]);
    assert_eq!(second["status"], "pending");
    assert_eq!(second["amount_cents"], 70000);
    let mut listed = crate::commerce::ids(&order_payments(&app, token, &id(&order)).await);
    listed.sort();
    let mut want = vec![id(&first), id(&second)];
    want.sort();
    assert_eq!(listed, want);

    let paid = confirm(&app, token, &id(&second), &card(GOOD_CARD))
        .await
        .expect(200);
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(get_order(&app, token, &id(&order)).await["status"], "paid");
    assert_eq!(get_payment(&app, token, &id(&first)).await, cancelled);

    // A cancelled order gets no new session.
    let other = place_order(&app, token, &[(&a, 1)]).await;
    cancel_order(&app, token, &id(&other)).await.expect(200);
    try_open_payment(&app, token, &id(&other))
        .await
        .expect_error(409, "invalid_state");
    check_invariants(&app, &[(a, 3)], &[token.to_owned()]).await;
}

async fn card_data_is_never_stored_or_logged(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "secret", 100, 10).await;
    let user = app.new_user("private").await;
    let token = user.access();
    // Unique numbers, so that finding one anywhere cannot be a coincidence.
    let digits: String = Uuid::new_v4()
        .as_u128()
        .to_string()
        .chars()
        .take(12)
        .collect();
    let good = luhn(&format!("4{digits}"), 16);
    let mut bad = good.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '9' {
        '0'
    } else {
        (last as u8 + 1) as char
    });
    assert!(luhn_ok(&good) && !luhn_ok(&bad));

    let order = place_order(&app, token, &[(&a, 1)]).await;
    let payment = open_payment(&app, token, &id(&order)).await;
    let mut answers = Vec::new();
    let r = confirm(&app, token, &id(&payment), &card(&bad)).await;
    r.expect_error(400, "invalid_card");
    answers.push(r.text);
    let r = confirm(&app, token, &id(&payment), &card(&good)).await;
    r.expect(200);
    answers.push(r.text);
    answers.push(
        app.get(&format!("{PAYMENTS}/{}", id(&payment)), Some(token))
            .await
            .text,
    );
    answers.push(
        app.get(
            &format!("/api/v1/orders/{}/payments", id(&order)),
            Some(token),
        )
        .await
        .text,
    );
    for text in &answers {
        assert!(
            !text.contains(&good) && !text.contains(&bad),
            "a card number in an answer: {text}"
        );
    }
    let logs = format!("{}\n{}", app.process.stdout(), app.process.stderr());
    assert!(!logs.contains(&good), "the card number was logged");
    assert!(!logs.contains(&bad), "an invalid card number was logged");
    assert!(
        !logs.contains(&good[..12]),
        "most of the card number was logged"
    );
}

async fn concurrent_confirms_charge_once(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "tv", 120000, 3).await;
    let user = app.new_user("hammer").await;
    let token = user.access();
    let order = place_order(&app, token, &[(&a, 1)]).await;
    let payment = open_payment(&app, token, &id(&order)).await;

    let c = card(GOOD_CARD);
    let payment_id = id(&payment);
    let answers = join_all((0..20).map(|_| confirm(&app, token, &payment_id, &c))).await;
    let mut succeeded = 0;
    for answer in &answers {
        match answer.status {
            200 => {
                assert_eq!(answer.json()["status"], "succeeded");
                succeeded += 1;
            }
            409 => {
                answer.expect_error(409, "invalid_state");
            }
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert_eq!(succeeded, 1, "exactly one confirm charges");
    let order = get_order(&app, token, &id(&order)).await;
    assert_eq!(order["status"], "paid");
    let payments = order_payments(&app, token, &id(&order)).await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["status"], "succeeded");
    check_invariants(&app, &[(a, 3)], &[token.to_owned()]).await;
}

async fn concurrent_opens_share_one_session(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "sofa", 80000, 3).await;
    let user = app.new_user("opener").await;
    let token = user.access();
    let order = place_order(&app, token, &[(&a, 1)]).await;

    let order_id = id(&order);
    let answers = join_all((0..10).map(|_| try_open_payment(&app, token, &order_id))).await;
    let mut created = 0;
    let mut seen = Vec::new();
    for answer in &answers {
        match answer.status {
            201 => created += 1,
            200 => {}
            other => panic!("unexpected {other}: {}", answer.text),
        }
        seen.push(id(&answer.json()));
    }
    assert_eq!(created, 1, "one session opened");
    seen.dedup();
    assert_eq!(seen.len(), 1, "every answer is the same session: {seen:?}");
    assert_eq!(order_payments(&app, token, &id(&order)).await.len(), 1);
    let payment = get_payment(&app, token, &seen[0]).await;
    assert_eq!(payment["status"], "pending");
}

/// A session's cancel and confirms sent together: it ends `succeeded` (the one 200 confirm, the
/// cancel refused, the order paid) or `cancelled` (no 200 confirm, the order still payable).
async fn a_cancel_raced_with_confirms_ends_one_way(backend: Backend) {
    let app = App::start(backend).await;
    let admin = app.admin().await;
    let a = product(&app, &admin.access, "dithered", 100, 10).await;
    let user = app.new_user("ditherer").await;
    let token = user.access();
    let c = card(GOOD_CARD);
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let order = place_order(&app, token, &[(&a, 1)]).await;
        let payment = open_payment(&app, token, &id(&order)).await;
        let payment_id = id(&payment);
        let (cancelled, confirms) = futures_util::join!(
            cancel_payment(&app, token, &payment_id),
            join_all((0..4).map(|_| confirm(&app, token, &payment_id, &c))),
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
        let oks = confirms.iter().filter(|r| r.status == 200).count();
        let p = get_payment(&app, token, &payment_id).await;
        let o = get_order(&app, token, &id(&order)).await;
        match p["status"].as_str() {
            Some("succeeded") => {
                assert_eq!(oks, 1, "{p}");
                assert_eq!(cancelled.status, 409, "succeeded, yet cancelled: {p}");
                assert_eq!(o["status"], "paid");
            }
            Some("cancelled") => {
                assert_eq!(oks, 0, "cancelled, yet a confirm succeeded: {p}");
                assert_eq!(cancelled.status, 200);
                assert_eq!(o["status"], "pending_payment");
                cancel_order(&app, token, &id(&order)).await.expect(200);
            }
            _ => panic!("unexpected final state: {p}"),
        }
        outcomes.push(p["status"].as_str().unwrap().to_owned());
    }
    eprintln!("cancel vs confirm outcomes: {outcomes:?}");
    check_invariants(&app, &[(a, 10)], &[token.to_owned()]).await;
}
