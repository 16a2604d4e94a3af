//! Change notices between nodes over Redis pub/sub: a ban, a role change, a logout or a policy
//! change made on one node reaches the others at once instead of at their next poll or cache
//! expiry. Notices only speed things up: without Redis (or while it is down) every node still
//! rereads the policy version four times a second and trusts its per-user cache for at most
//! 400 ms, so the one-second promise holds either way, and nothing ever falls back to "allow".

use std::time::Duration;

use actix_web::web;
use deadpool_redis::redis;
use futures_util::StreamExt;

use crate::state::AppState;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// One user's account, roles or logins.
    User(i64),
    /// Many users' roles (a role was deleted).
    AllUsers,
    /// Roles or permissions.
    Policy,
}

impl Notice {
    fn encode(self) -> String {
        match self {
            Notice::User(id) => format!("user:{id}"),
            Notice::AllUsers => "users".to_owned(),
            Notice::Policy => "policy".to_owned(),
        }
    }

    fn decode(s: &str) -> Option<Notice> {
        match s {
            "users" => Some(Notice::AllUsers),
            "policy" => Some(Notice::Policy),
            _ => s.strip_prefix("user:")?.parse().ok().map(Notice::User),
        }
    }
}

fn channel(prefix: &str) -> String {
    format!("{prefix}notices")
}

/// Applies a notice to this node's caches.
async fn apply(st: &AppState, notice: Notice) {
    match notice {
        Notice::User(id) => st.auth.invalidate(id),
        Notice::AllUsers => st.auth.invalidate_all(),
        Notice::Policy => {
            if let Err(e) = st.policy.refresh().await {
                tracing::warn!(error = %e, "policy reload after a notice failed; the poll will retry");
            }
        }
    }
}

/// Applies `notice` here, then tells the other nodes (best effort).
pub async fn announce(st: &AppState, notice: Notice) {
    apply(st, notice).await;
    if let Some(redis) = &st.redis {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel(&redis.prefix)).arg(notice.encode());
        if let Err(e) = redis.run::<i64>(&cmd).await {
            tracing::debug!(error = %e, "change notice not published; other nodes catch up by polling");
        }
    }
}

/// Listens for other nodes' notices until the process ends, reconnecting after failures.
pub fn spawn_listener(st: web::Data<AppState>) {
    let Some(redis) = st.redis.clone() else {
        return;
    };
    let url = st.config.redis.url.clone();
    actix_web::rt::spawn(async move {
        loop {
            let subscribed = async {
                let client = redis::Client::open(url.as_str())?;
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(channel(&redis.prefix)).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            match tokio::time::timeout(Duration::from_secs(2), subscribed).await {
                Ok(Ok(pubsub)) => {
                    tracing::info!("listening for change notices");
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = messages.next().await {
                        let payload: String = msg.get_payload().unwrap_or_default();
                        if let Some(notice) = Notice::decode(&payload) {
                            apply(&st, notice).await;
                        }
                    }
                    tracing::warn!("change-notice subscription ended; reconnecting");
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "cannot subscribe to change notices"),
                Err(_) => tracing::debug!("subscribing to change notices timed out"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_garbage_is_ignored() {
        for n in [Notice::User(42), Notice::AllUsers, Notice::Policy] {
            assert_eq!(Notice::decode(&n.encode()), Some(n));
        }
        assert_eq!(Notice::decode("user:x"), None);
        assert_eq!(Notice::decode("flush"), None);
    }
}
