//! The deadline sweeper, one for every kind with deadlines: timers are data. Every `every`, it
//! asks each kind which keys are due within `lookahead` (or already past) and wakes their
//! hosts, which arm a timer for the exact deadline or, when it has passed, act at once. It runs
//! at start-up too, so deadlines that passed while the mall was down are honoured within a tick.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use time::PrimitiveDateTime;

use mall_db::{DbError, clock};

use super::kind::{Host, Kind};
use super::registry::Registry;

/// Most entities woken per kind and tick (the next tick takes the rest).
const BATCH: i64 = 512;

/// A registry the sweeper can wake the due entities of.
pub trait Sweep: Send + Sync {
    /// The kind's name.
    fn kind(&self) -> &'static str;
    /// Wakes every entity due before `before`; returns how many were woken.
    fn wake_due(
        &self,
        before: PrimitiveDateTime,
    ) -> Pin<Box<dyn Future<Output = Result<usize, DbError>> + '_>>;
}

impl<K: Kind> Sweep for Registry<Host<K>> {
    fn kind(&self) -> &'static str {
        K::KIND
    }

    fn wake_due(
        &self,
        before: PrimitiveDateTime,
    ) -> Pin<Box<dyn Future<Output = Result<usize, DbError>> + '_>> {
        Box::pin(async move {
            let Some(wake) = K::wake() else {
                return Ok(0);
            };
            let due = K::due(self.deps().clone(), before, BATCH).await?;
            let calls = due.iter().map(|key| self.call(key, wake.clone()));
            for (answer, key) in join_all(calls).await.into_iter().zip(&due) {
                if let Err(e) = answer {
                    tracing::debug!(kind = K::KIND, key = ?key, error = %e, "not woken");
                }
            }
            Ok(due.len())
        })
    }
}

/// One pass over every kind: wakes what is due within `lookahead`; returns how many.
pub async fn sweep(kinds: &[Arc<dyn Sweep>], lookahead: Duration) -> Result<usize, DbError> {
    let before = clock::after(clock::now(), lookahead);
    let mut woken = 0;
    for kind in kinds {
        woken += kind.wake_due(before).await?;
    }
    Ok(woken)
}

/// Starts the sweeper on the current actix arbiter; it runs until the process ends.
pub fn spawn_sweeper(kinds: Vec<Arc<dyn Sweep>>, every: Duration, lookahead: Duration) {
    actix::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = sweep(&kinds, lookahead).await {
                tracing::warn!(error = %e, "deadline sweep failed; retrying next tick");
            }
        }
    });
}
