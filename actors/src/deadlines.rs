//! The deadline sweeper: timers are data. Every `every`, it finds pending orders and payment
//! sessions whose deadline is within `lookahead` (or already past) and wakes their actors, which
//! arm a timer for the exact deadline or, when it has passed, cancel or expire at once. It runs
//! at start-up too, so deadlines that passed while the mall was down are honoured within one tick.

use std::time::Duration;

use futures_util::future::join_all;

use mall_db::{Db, clock, repo};

use crate::deps::deadline;
use crate::order::OrderHandle;
use crate::payment::PaymentHandle;

/// Most entities woken per kind and tick (the next tick takes the rest).
const BATCH: i64 = 512;

/// Starts the sweeper on the current actix arbiter; it runs until the process ends.
pub fn spawn_sweeper(
    db: Db,
    orders: OrderHandle,
    payments: PaymentHandle,
    every: Duration,
    lookahead: Duration,
) {
    actix::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = sweep(&db, &orders, &payments, lookahead).await {
                tracing::warn!(error = %e, "deadline sweep failed; retrying next tick");
            }
        }
    });
}

/// One pass: wakes every order and session due within `lookahead`. Returns how many were woken.
pub async fn sweep(
    db: &Db,
    orders: &OrderHandle,
    payments: &PaymentHandle,
    lookahead: Duration,
) -> Result<usize, mall_db::DbError> {
    let before = deadline(clock::now(), lookahead);
    let (due_orders, due_payments) = {
        let mut conn = db.read().await?;
        (
            repo::orders::due(&mut conn, before, BATCH).await?,
            repo::payments::due(&mut conn, before, BATCH).await?,
        )
    };
    let woken = due_orders.len() + due_payments.len();
    let order_wakes = due_orders.iter().map(|(id, _)| orders.wake(*id));
    for (r, (id, _)) in join_all(order_wakes).await.into_iter().zip(&due_orders) {
        if let Err(e) = r {
            tracing::debug!(order_id = id, error = %e, "order not woken");
        }
    }
    let payment_wakes = due_payments.iter().map(|(id, _)| payments.wake(*id));
    for (r, (id, _)) in join_all(payment_wakes).await.into_iter().zip(&due_payments) {
        if let Err(e) = r {
            tracing::debug!(payment_id = id, error = %e, "payment not woken");
        }
    }
    Ok(woken)
}
