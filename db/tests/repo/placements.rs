//! Placing orders in batches (`mall_db::repo::placements`): stock taken once per batch and never
//! past zero, each order all or nothing, checkouts opening their session and emptying their cart
//! in the same transaction, and one order's fault kept out of the others' way.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::future::join_all;
use mall_db::domain::placement::Refused;
use mall_db::domain::{CancelReason, OrderStatus, PaymentStatus};
use mall_db::repo::carts::{self, LineWrite, StoredLine, WriteOutcome};
use mall_db::repo::idempotency::{self, Claim};
use mall_db::repo::orders::{self, IdempotencyBinding, NewOrder, WantedLine};
use mall_db::repo::placements::{self, Charge, CheckoutPart, PlaceError, Placed, Placement};
use mall_db::repo::{payments, products};
use mall_db::schema::products as products_table;
use mall_db::{Db, clock, with_conn};
use time::Duration;

use crate::common::{add_product, add_user, next_id, rd, wr};

on_both_backends!(
    a_batch_places_every_order_the_stock_covers,
    unknown_and_deleted_products_refuse_only_their_order,
    a_checkout_opens_its_session_and_empties_its_cart,
    a_changed_cart_refuses_only_its_own_checkout,
    an_order_breaking_a_constraint_does_not_fail_its_batch,
    idempotency_keys_are_bound_to_what_was_placed,
    concurrent_batches_never_oversell,
    an_order_whose_key_was_released_is_not_placed,
    a_total_past_i64_is_refused_not_capped,
    stock_given_back_never_fails_on_a_bound,
    a_callers_transaction_composes_repositories_and_rolls_back_whole,
);

async fn product(db: &Db, merchant: i64, price_cents: i64, stock: i64) -> i64 {
    let name = format!("product {price_cents}");
    add_product(db, merchant, &name, price_cents, stock).await
}

async fn stock(db: &Db, id: i64) -> i64 {
    let mut conn = rd(db).await;
    with_conn!(&mut conn, c => products_table::table.find(id).select(products_table::stock).first(c).await)
        .expect("stock read")
}

fn order(user_id: i64, lines: &[(i64, i32)]) -> Placement {
    let now = clock::now();
    Placement {
        order: NewOrder {
            id: next_id(),
            user_id,
            address: "{\"city\":\"Beijing\"}".into(),
            note: None,
            expires_at: now + Duration::minutes(15),
        },
        lines: lines
            .iter()
            .map(|&(product_id, quantity)| WantedLine {
                product_id,
                quantity,
            })
            .collect(),
        now,
        idem: None,
        checkout: None,
        fence: None,
    }
}

async fn place(db: &Db, batch: &[Placement]) -> Vec<Result<Placed, PlaceError>> {
    placements::place(&mut wr(db).await, batch).await
}

fn placed(answer: &Result<Placed, PlaceError>) -> &Placed {
    match answer {
        Ok(p) => p,
        Err(e) => panic!("expected the order to be placed, got {e}"),
    }
}

async fn stored(db: &Db, id: i64) -> Option<orders::OrderWithItems> {
    orders::load(&mut rd(db).await, id)
        .await
        .expect("order read")
}

async fn a_batch_places_every_order_the_stock_covers(db: &Db) {
    let user = add_user(db, "batch@example.com", &[]).await.id;
    let a = product(db, user, 250, 5).await;
    let b = product(db, user, 100, 10).await;
    let batch = [
        order(user, &[(a, 2), (b, 1)]),
        order(user, &[(a, 2)]),
        order(user, &[(b, 3), (a, 2)]), // a has 1 left: refused whole, b untouched by it
        order(user, &[(a, 1)]),
    ];
    let answers = place(db, &batch).await;
    assert_eq!(answers.len(), 4);
    let first = placed(&answers[0]);
    assert_eq!(first.order.0.status, OrderStatus::PendingPayment);
    assert_eq!(first.order.0.total_cents, 2 * 250 + 100);
    assert_eq!(first.order.1.len(), 2);
    assert_eq!(
        first.order.1[0].product_id, a,
        "lines keep the buyer's order"
    );
    assert_eq!(first.order.1[0].unit_price_cents, 250);
    assert_eq!(first.payment, None);
    placed(&answers[1]);
    match &answers[2] {
        Err(PlaceError::Refused(Refused::InsufficientStock {
            product_id,
            available,
        })) => {
            assert_eq!((*product_id, *available), (a, 1));
        }
        other => panic!("expected insufficient stock, got {other:?}"),
    }
    placed(&answers[3]);
    assert_eq!(stock(db, a).await, 0);
    assert_eq!(stock(db, b).await, 9);
    for (answer, p) in answers.iter().zip(&batch) {
        let row = stored(db, p.order.id).await;
        match answer {
            Ok(placed) => assert_eq!(row.as_ref(), Some(&placed.order), "stored as answered"),
            Err(_) => assert_eq!(row, None, "a refused order leaves nothing"),
        }
    }
}

async fn unknown_and_deleted_products_refuse_only_their_order(db: &Db) {
    let user = add_user(db, "gone@example.com", &[]).await.id;
    let live = product(db, user, 100, 3).await;
    let deleted = product(db, user, 100, 3).await;
    products::soft_delete(&mut wr(db).await, deleted, clock::now())
        .await
        .expect("deleted");
    let unknown = next_id();
    let batch = [
        order(user, &[(live, 1), (deleted, 1)]),
        order(user, &[(unknown, 1)]),
        order(user, &[(live, 1)]),
    ];
    let answers = place(db, &batch).await;
    assert!(
        matches!(answers[0], Err(PlaceError::Refused(Refused::ProductNotFound(id))) if id == deleted)
    );
    assert!(
        matches!(answers[1], Err(PlaceError::Refused(Refused::ProductNotFound(id))) if id == unknown)
    );
    placed(&answers[2]);
    assert_eq!(stock(db, live).await, 2);
    assert_eq!(stock(db, deleted).await, 3);
}

/// Gives `user` a cart holding `lines`; returns its version.
async fn cart(db: &Db, user: i64, lines: &[(i64, i32)]) -> i64 {
    let now = clock::now();
    let writes: Vec<LineWrite> = lines
        .iter()
        .enumerate()
        .map(|(i, &(product_id, quantity))| {
            LineWrite::Upsert(StoredLine {
                product_id,
                quantity,
                position: i as i64 + 1,
            })
        })
        .collect();
    match carts::write(&mut wr(db).await, user, None, &writes, now)
        .await
        .expect("cart written")
    {
        WriteOutcome::Written(v) => v,
        other => panic!("the cart was not written: {other:?}"),
    }
}

fn checkout(
    user: i64,
    lines: &[(i64, i32)],
    cart_version: i64,
    charge: Option<Charge>,
) -> Placement {
    let mut p = order(user, lines);
    p.checkout = Some(CheckoutPart {
        cart_version,
        session_id: next_id(),
        session_expires_at: p.now + Duration::minutes(5),
        charge,
    });
    p
}

async fn a_checkout_opens_its_session_and_empties_its_cart(db: &Db) {
    let merchant = add_user(db, "seller@example.com", &[]).await.id;
    let p = product(db, merchant, 700, 10).await;
    let mut batch = Vec::new();
    let charges = [
        None,
        Some(Charge::Approved {
            last4: "4242".into(),
        }),
        Some(Charge::Declined {
            last4: "0002".into(),
        }),
    ];
    for (i, charge) in charges.into_iter().enumerate() {
        let user = add_user(db, &format!("buyer{i}@example.com"), &[]).await.id;
        let version = cart(db, user, &[(p, 2)]).await;
        batch.push(checkout(user, &[(p, 2)], version, charge));
    }
    let answers = place(db, &batch).await;
    let (unpaid, paid, declined) = (
        placed(&answers[0]),
        placed(&answers[1]),
        placed(&answers[2]),
    );

    let session = unpaid.payment.as_ref().expect("a session is opened");
    assert_eq!(unpaid.order.0.status, OrderStatus::PendingPayment);
    assert_eq!(session.status, PaymentStatus::Pending);
    assert_eq!(session.amount_cents, 1400);
    assert_eq!(session.attempts, 0);

    let session = paid.payment.as_ref().expect("a session is opened");
    assert_eq!(paid.order.0.status, OrderStatus::Paid);
    assert!(paid.order.0.paid_at.is_some());
    assert_eq!(session.status, PaymentStatus::Succeeded);
    assert_eq!(session.card_last4.as_deref(), Some("4242"));
    assert_eq!(session.attempts, 1);

    let session = declined.payment.as_ref().expect("a session is opened");
    assert_eq!(declined.order.0.status, OrderStatus::PendingPayment);
    assert_eq!(session.status, PaymentStatus::Pending);
    assert_eq!(session.last_error.as_deref(), Some("card_declined"));

    for (answer, p) in answers.iter().zip(&batch) {
        let placed = placed(answer);
        let session = placed.payment.clone().expect("a session");
        assert_eq!(
            payments::load(&mut rd(db).await, session.id).await.unwrap(),
            Some(session),
            "the session is stored as answered"
        );
        let user = p.order.user_id;
        let emptied = carts::load(&mut rd(db).await, user).await.unwrap().unwrap();
        assert!(emptied.lines.is_empty(), "the cart is emptied");
        assert_eq!(Some(emptied.version), placed.cart_version);
    }
    assert_eq!(stock(db, p).await, 4);
}

async fn a_changed_cart_refuses_only_its_own_checkout(db: &Db) {
    let merchant = add_user(db, "seller2@example.com", &[]).await.id;
    let p = product(db, merchant, 100, 10).await;
    let alice = add_user(db, "alice@example.com", &[]).await.id;
    let bob = add_user(db, "bob@example.com", &[]).await.id;
    let alice_v = cart(db, alice, &[(p, 1)]).await;
    let bob_v = cart(db, bob, &[(p, 1)]).await;
    let batch = [
        checkout(alice, &[(p, 1)], alice_v + 1, None), // stale: someone else wrote her cart
        checkout(bob, &[(p, 3)], bob_v, None),
    ];
    let answers = place(db, &batch).await;
    assert!(matches!(answers[0], Err(PlaceError::CartChanged)));
    placed(&answers[1]);
    assert_eq!(stock(db, p).await, 7, "only bob's 3 were taken");
    assert_eq!(stored(db, batch[0].order.id).await, None);
    let kept = carts::load(&mut rd(db).await, alice)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.version, alice_v);
    assert_eq!(
        kept.lines.len(),
        1,
        "the refused checkout leaves the cart alone"
    );
}

async fn an_order_breaking_a_constraint_does_not_fail_its_batch(db: &Db) {
    let user = add_user(db, "fk@example.com", &[]).await.id;
    let p = product(db, user, 100, 10).await;
    let ghost = next_id(); // no such user: the orders' foreign key refuses its order
    let batch = [
        order(user, &[(p, 1)]),
        order(ghost, &[(p, 1)]),
        order(user, &[(p, 1)]),
    ];
    let answers = place(db, &batch).await;
    placed(&answers[0]);
    assert!(
        matches!(answers[1], Err(PlaceError::Db(_))),
        "got {:?}",
        answers[1]
    );
    placed(&answers[2]);
    assert_eq!(stock(db, p).await, 8);
}

async fn idempotency_keys_are_bound_to_what_was_placed(db: &Db) {
    let user = add_user(db, "idem-place@example.com", &[]).await.id;
    let p = product(db, user, 100, 1).await;
    for key in ["first", "second"] {
        claim(db, user, key).await;
    }
    let mut bound = order(user, &[(p, 1)]);
    bound.idem = Some(IdempotencyBinding {
        user_id: user,
        key: "first".into(),
    });
    let mut refused = order(user, &[(p, 1)]);
    refused.idem = Some(IdempotencyBinding {
        user_id: user,
        key: "second".into(),
    });
    let answers = place(db, &[bound.clone(), refused]).await;
    placed(&answers[0]);
    assert!(matches!(
        answers[1],
        Err(PlaceError::Refused(Refused::InsufficientStock { .. }))
    ));
    // The first key now names what it made (a retry renders that); the refused one, nothing.
    let mut conn = rd(db).await;
    let resource = |key: &str| {
        use mall_db::schema::idempotency_keys as k;
        k::table
            .filter(k::user_id.eq(user))
            .filter(k::idem_key.eq(key.to_owned()))
            .select(k::resource)
    };
    let first: Option<String> =
        with_conn!(&mut conn, c => resource("first").first(c).await).unwrap();
    let second: Option<String> =
        with_conn!(&mut conn, c => resource("second").first(c).await).unwrap();
    assert_eq!(first, Some(format!("order:{}", bound.order.id)));
    assert_eq!(second, None);
}

async fn concurrent_batches_never_oversell(db: &Db) {
    let user = add_user(db, "rush@example.com", &[]).await.id;
    let hot = product(db, user, 100, 20).await;
    // Eight writers at once, each placing a batch of five one-unit orders: 40 asked, 20 exist.
    let rounds = (0..8).map(|_| {
        let db = db.clone();
        async move {
            let batch: Vec<Placement> = (0..5).map(|_| order(user, &[(hot, 1)])).collect();
            placements::place(&mut wr(&db).await, &batch).await
        }
    });
    let answers: Vec<_> = join_all(rounds).await.into_iter().flatten().collect();
    let ok = answers.iter().filter(|a| a.is_ok()).count();
    let short = answers
        .iter()
        .filter(|a| {
            matches!(
                a,
                Err(PlaceError::Refused(Refused::InsufficientStock { .. }))
            )
        })
        .count();
    assert_eq!(
        (ok, short),
        (20, 20),
        "every unit sold once, the rest refused"
    );
    assert_eq!(stock(db, hot).await, 0);
}

/// Two writers on one SQLite file, as two processes would be: each batch takes the file's write
/// lock before it reads the stock, so neither is refused and nothing is sold twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_sqlite_file_take_turns() {
    let database = mall_db::testing::TestDatabase::sqlite().await;
    let first = crate::common::migrated(&database).await;
    let second = crate::common::connect(database.url());
    let user = add_user(&first, "two-writers@example.com", &[]).await.id;
    let hot = product(&first, user, 100, 60).await;
    let rounds = [first.clone(), second.clone()].into_iter().flat_map(|db| {
        (0..8).map(move |_| {
            let db = db.clone();
            async move {
                let batch: Vec<Placement> = (0..5).map(|_| order(user, &[(hot, 1)])).collect();
                placements::place(&mut wr(&db).await, &batch).await
            }
        })
    });
    let answers: Vec<_> = join_all(rounds).await.into_iter().flatten().collect();
    let failed: Vec<String> = answers
        .iter()
        .filter_map(|a| match a {
            Err(PlaceError::Refused(Refused::InsufficientStock { .. })) | Ok(_) => None,
            Err(e) => Some(e.to_string()),
        })
        .collect();
    assert!(
        failed.is_empty(),
        "refused for another reason than stock: {failed:?}"
    );
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 60);
    assert_eq!(stock(&first, hot).await, 0);
}

/// Claims `key` for `user` now (24 h).
async fn claim(db: &Db, user: i64, key: &str) {
    let now = clock::now();
    let claim = idempotency::claim(
        &mut wr(db).await,
        user,
        key,
        "fp",
        now,
        now + Duration::hours(24),
    )
    .await
    .unwrap();
    assert_eq!(claim, Claim::Fresh);
}

async fn an_order_whose_key_was_released_is_not_placed(db: &Db) {
    let user = add_user(db, "idem-released@example.com", &[]).await.id;
    let p = product(db, user, 100, 5).await;
    claim(db, user, "gave-up").await;
    claim(db, user, "waiting").await;
    // The first caller gave up and its key was released before its placement ran.
    assert_eq!(
        idempotency::release(&mut wr(db).await, user, "gave-up")
            .await
            .unwrap(),
        None
    );
    let mut late = order(user, &[(p, 2)]);
    late.idem = Some(IdempotencyBinding {
        user_id: user,
        key: "gave-up".into(),
    });
    let mut other = order(user, &[(p, 1)]);
    other.idem = Some(IdempotencyBinding {
        user_id: user,
        key: "waiting".into(),
    });
    let answers = place(db, &[late.clone(), other]).await;
    assert!(
        matches!(answers[0], Err(PlaceError::KeyNotHeld)),
        "{:?}",
        answers[0]
    );
    placed(&answers[1]);
    assert_eq!(
        stock(db, p).await,
        4,
        "only the order still awaited took stock"
    );
    let mut conn = rd(db).await;
    assert_eq!(orders::load(&mut conn, late.order.id).await.unwrap(), None);
    // A key bound to one order cannot be bound to a second.
    drop(conn);
    let mut again = order(user, &[(p, 1)]);
    again.idem = Some(IdempotencyBinding {
        user_id: user,
        key: "waiting".into(),
    });
    let answers = place(db, &[again]).await;
    assert!(
        matches!(answers[0], Err(PlaceError::KeyNotHeld)),
        "{:?}",
        answers[0]
    );
    assert_eq!(stock(db, p).await, 4);
}

/// Sets a product's price or stock directly, past what the API lets a client write (a row
/// from before the bounds).
async fn set_raw(db: &Db, id: i64, price_cents: Option<i64>, stock: Option<i64>) {
    let mut conn = wr(db).await;
    with_conn!(&mut conn, c => diesel::update(products_table::table.find(id))
        .set((price_cents.map(|v| products_table::price_cents.eq(v)), stock.map(|v| products_table::stock.eq(v))))
        .execute(c)
        .await)
    .unwrap();
}

async fn a_total_past_i64_is_refused_not_capped(db: &Db) {
    let user = add_user(db, "overflow@example.com", &[]).await.id;
    let huge = product(db, user, 1, 10).await;
    let fine = product(db, user, 100, 10).await;
    set_raw(db, huge, Some(i64::MAX / 2 + 1), None).await;
    let answers = place(db, &[order(user, &[(huge, 2)]), order(user, &[(fine, 1)])]).await;
    assert!(
        matches!(answers[0], Err(PlaceError::Refused(Refused::Overflow(_)))),
        "{:?}",
        answers[0]
    );
    placed(&answers[1]);
    assert_eq!(stock(db, huge).await, 10, "the refused order took nothing");
    assert_eq!(stock(db, fine).await, 9);
}

async fn stock_given_back_never_fails_on_a_bound(db: &Db) {
    let user = add_user(db, "giveback@example.com", &[]).await.id;
    let p = product(db, user, 100, 10).await;
    let answers = place(db, &[order(user, &[(p, 3)])]).await;
    let id = placed(&answers[0]).order.0.id;
    // Someone set the stock near the top of i64 meanwhile (an old row): the cancel still
    // succeeds and the stock saturates instead of overflowing.
    set_raw(db, p, None, Some(i64::MAX - 1)).await;
    let now = clock::now();
    let cancelled = wr(db)
        .await
        .transaction("test.cancel", async |c| {
            let row = orders::mark_cancelled(c, id, CancelReason::User, now).await?;
            products::give_back(c, &[(p, 3)]).await?;
            Ok::<_, mall_db::DbError>(row)
        })
        .await;
    assert!(cancelled.unwrap().is_some(), "the order was cancelled");
    assert_eq!(stock(db, p).await, i64::MAX);
}

async fn a_callers_transaction_composes_repositories_and_rolls_back_whole(db: &Db) {
    let user = add_user(db, "compose@example.com", &[]).await.id;
    let p = product(db, user, 100, 10).await;
    let answers = place(db, &[order(user, &[(p, 4)])]).await;
    let id = placed(&answers[0]).order.0.id;
    let now = clock::now();
    // Two repositories' writes, then a refusal: neither write survives.
    let refused = wr(db)
        .await
        .transaction("test.refused", async |c| {
            orders::mark_cancelled(c, id, CancelReason::User, now).await?;
            products::give_back(c, &[(p, 4)]).await?;
            Err::<(), _>(mall_db::DbError::Unavailable("refused on purpose".into()))
        })
        .await;
    assert!(refused.is_err());
    assert_eq!(stock(db, p).await, 6, "the stock was not given back");
    let order = orders::load(&mut rd(db).await, id).await.unwrap().unwrap();
    assert_eq!(order.0.status, OrderStatus::PendingPayment);
    // The same writes, committed: both are there.
    wr(db)
        .await
        .transaction("test.committed", async |c| {
            orders::mark_cancelled(c, id, CancelReason::User, now).await?;
            products::give_back(c, &[(p, 4)]).await
        })
        .await
        .unwrap();
    assert_eq!(stock(db, p).await, 10);
    let order = orders::load(&mut rd(db).await, id).await.unwrap().unwrap();
    assert_eq!(order.0.status, OrderStatus::Cancelled);
}
