//! Change notices between nodes over Redis pub/sub: a ban, a role change, a logout or a policy
//! change made on one node reaches the others at once instead of at their next poll or cache
//! expiry. Notices only speed things up: without Redis (or while it is down) every node still
//! rereads the policy version four times a second and trusts its per-user cache for at most
//! 400 ms, so the one-second promise holds either way, and nothing ever falls back to "allow".

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::redis;
use futures_util::StreamExt;

use crate::auth::PolicyStore;
use crate::auth::cache::AuthCache;
use crate::redis::Redis;
use crate::services::Announce;
pub use crate::services::Notice;

fn encode(notice: Notice) -> String {
    match notice {
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

fn channel(prefix: &str) -> String {
    format!("{prefix}notices")
}

/// Applies notices to this node's caches and passes them to the other nodes.
pub struct Notifier {
    cache: Arc<AuthCache>,
    policy: Arc<PolicyStore>,
    redis: Option<Arc<Redis>>,
}

impl Notifier {
    /// A notifier over this node's account cache and policy, publishing through `redis` if any.
    pub fn new(cache: Arc<AuthCache>, policy: Arc<PolicyStore>, redis: Option<Arc<Redis>>) -> Self {
        Notifier {
            cache,
            policy,
            redis,
        }
    }

    /// Applies a notice to this node's caches.
    async fn apply(&self, notice: Notice) {
        match notice {
            Notice::User(id) => self.cache.invalidate_user(id),
            Notice::AllUsers => self.cache.clear(),
            Notice::Policy => {
                if let Err(e) = self.policy.refresh().await {
                    tracing::warn!(error = %e, "policy reload after a notice failed; the poll will retry");
                }
            }
        }
    }

    /// Listens for other nodes' notices (on the Redis at `url`) until the process ends,
    /// reconnecting after failures. Without Redis there is nothing to listen to.
    pub fn spawn_listener(self: &Arc<Self>, url: String) {
        let Some(redis) = self.redis.clone() else {
            return;
        };
        let me = Arc::clone(self);
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
                            if let Some(notice) = decode(&payload) {
                                me.apply(notice).await;
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
}

impl Announce for Notifier {
    /// Applies `notice` here, then tells the other nodes (best effort).
    fn announce(&self, notice: Notice) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            self.apply(notice).await;
            if let Some(redis) = &self.redis {
                let mut cmd = redis::cmd("PUBLISH");
                cmd.arg(channel(&redis.prefix)).arg(encode(notice));
                if let Err(e) = redis.run::<i64>(&cmd).await {
                    tracing::debug!(error = %e, "change notice not published; other nodes catch up by polling");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_garbage_is_ignored() {
        for n in [Notice::User(42), Notice::AllUsers, Notice::Policy] {
            assert_eq!(decode(&encode(n)), Some(n));
        }
        assert_eq!(decode("user:x"), None);
        assert_eq!(decode("flush"), None);
    }
}
