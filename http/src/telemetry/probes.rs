//! Scrape-time gauges: whether the database and Redis answer (`dependency_up`) and how far the
//! oldest pending order and payment deadlines are overdue (`deadline_overdue_seconds`), measured
//! when `/metrics` is read so that they are as fresh as the scrape.

use std::time::Duration;

use mall_db::repo::deadlines::Whose;
use mall_db::{clock, repo};

use crate::state::AppState;

/// How long one probe may take; a slower dependency counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Updates the gauges of `st.metrics` (see the module doc).
pub async fn refresh(st: &AppState) {
    let database_up = tokio::time::timeout(PROBE_TIMEOUT, st.db.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let up = &st.metrics.dependency_up;
    up.with_label_values(&["database"])
        .set(i64::from(database_up));
    if let Some(redis) = &st.redis {
        let redis_up = tokio::time::timeout(PROBE_TIMEOUT, redis.ping())
            .await
            .unwrap_or(false);
        up.with_label_values(&["redis"]).set(i64::from(redis_up));
    }
    if database_up
        && let Ok(Some((orders, payments))) =
            tokio::time::timeout(PROBE_TIMEOUT, oldest_due(st)).await
    {
        let overdue = &st.metrics.deadline_overdue;
        overdue.with_label_values(&["order"]).set(orders);
        overdue.with_label_values(&["payment"]).set(payments);
    }
}

/// Seconds since the oldest pending order and payment deadline passed (0 when none has).
async fn oldest_due(st: &AppState) -> Option<(f64, f64)> {
    let now = clock::now();
    let mut conn = st.db.read().await.ok()?;
    let orders = repo::deadlines::due(&mut conn, Whose::Orders, now, 1);
    let orders = orders.await.ok()?;
    let payments = repo::deadlines::due(&mut conn, Whose::Sessions, now, 1);
    let payments = payments.await.ok()?;
    let age = |due: &[repo::deadlines::Due]| {
        due.first()
            .map_or(0.0, |d| (now - d.at).as_seconds_f64().max(0.0))
    };
    Some((age(&orders), age(&payments)))
}
