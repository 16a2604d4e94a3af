//! Housekeeping: rows that only wait to expire are deleted on a schedule
//! (`database.purge_every_secs`): `Idempotency-Key` records past their 24 hours, and refresh
//! tokens past their expiry, spent or not (a spent token is kept until then, so presenting it
//! again is still recognised as reuse). Each run counts what it deleted in
//! `db_rows_purged_total{table}`.

use std::time::Duration;

use actix_web::web;

use mall_db::repo::{idempotency, sessions};
use mall_db::{DbError, clock};

use crate::state::AppState;

/// Deletes what has expired now; returns `(idempotency records, refresh tokens)` deleted.
pub async fn purge_once(st: &AppState) -> Result<(usize, usize), DbError> {
    let now = clock::now();
    let mut conn = st.db.write().await?;
    let keys = idempotency::purge_expired(&mut conn, now).await?;
    let tokens = sessions::purge_expired_tokens(&mut conn, now).await?;
    drop(conn);
    st.metrics
        .purged
        .with_label_values(&["idempotency_keys"])
        .inc_by(keys as u64);
    st.metrics
        .purged
        .with_label_values(&["refresh_tokens"])
        .inc_by(tokens as u64);
    Ok((keys, tokens))
}

/// Runs [`purge_once`] every `database.purge_every_secs`, the first time one period after
/// start-up. A failure (the database is down) waits for the next run.
pub fn spawn_purger(st: web::Data<AppState>) {
    let every = Duration::from_secs(st.config.database.purge_every_secs.max(1));
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match purge_once(&st).await {
                Ok((0, 0)) => {}
                Ok((keys, tokens)) => {
                    tracing::info!(
                        idempotency_keys = keys,
                        refresh_tokens = tokens,
                        "purged expired rows"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
            }
        }
    });
}
