//! Change notices between nodes: a ban, a role change, a logout, a policy change or a product
//! change made on one node reaches the others at once instead of at their next poll or cache
//! expiry. They travel over Redis pub/sub when Redis is configured, else over PostgreSQL's
//! `LISTEN/NOTIFY`, so a cluster without Redis is told too; on SQLite there is one node and
//! nobody to tell.
//!
//! Notices only speed things up. Without them (or while the bus is down) every node still
//! rereads the policy version four times a second and trusts its per-user cache for at most
//! 400 ms, so the one-second promise holds either way, and nothing ever falls back to "allow".
//! A cached product (and a cart's price of it) lives at most `catalog.cache_ttl_ms`, and both
//! caches are forgotten whenever the listener (re)connects, since notices sent meanwhile were
//! missed.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_redis::redis;
use futures_util::StreamExt;
use mall_actors::cart::prices::Prices;
use mall_db::Db;
use mall_db::notify::Listener;
use tokio::sync::mpsc;

use crate::auth::PolicyStore;
use crate::auth::cache::AuthCache;
use crate::product_cache::ProductCache;
use crate::redis::Redis;
use crate::services::Announce;
pub use crate::services::Notice;

/// Most product ids in one notice; a longer list goes as several (PostgreSQL caps a payload at
/// 8000 bytes, and an order has at most 100 lines).
const IDS_PER_NOTICE: usize = 200;

/// How long stock changes gather before one notice tells the other nodes of all of them: the
/// delay another node's product page may lag an order by, traded for one publish per window
/// instead of one per order (measured: at 650 purchases/s, sending whatever had queued meanwhile
/// still cost one NOTIFY per order, one of the four transactions of a purchase).
const STOCK_NOTICE_EVERY: Duration = Duration::from_millis(5);

fn encode(notice: &Notice) -> String {
    match notice {
        Notice::User(id) => format!("user:{id}"),
        Notice::AllUsers => "users".to_owned(),
        Notice::Policy => "policy".to_owned(),
        Notice::Products(ids) => format!("products:{}", join(ids)),
        Notice::Stock(ids) => format!("stock:{}", join(ids)),
    }
}

fn join(ids: &[i64]) -> String {
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    ids.join(",")
}

fn split(ids: &str) -> Option<Vec<i64>> {
    ids.split(',').map(|id| id.parse().ok()).collect()
}

fn decode(s: &str) -> Option<Notice> {
    match s.split_once(':') {
        None if s == "users" => Some(Notice::AllUsers),
        None if s == "policy" => Some(Notice::Policy),
        Some(("user", id)) => id.parse().ok().map(Notice::User),
        Some(("products", ids)) => split(ids).map(Notice::Products),
        Some(("stock", ids)) => split(ids).map(Notice::Stock),
        _ => None,
    }
}

fn channel(prefix: &str) -> String {
    format!("{prefix}notices")
}

/// How notices reach the other nodes.
pub enum Bus {
    /// Nobody else to tell (SQLite: one node).
    Local,
    /// Redis pub/sub on `{key_prefix}notices`, subscribing through its own connection to `url`.
    Redis {
        /// The shared pool, for publishing.
        redis: Arc<Redis>,
        /// Where to subscribe.
        url: String,
    },
    /// PostgreSQL `NOTIFY` through the pool, `LISTEN` on a connection of its own to `url`.
    Postgres {
        /// The pools, for notifying.
        db: Db,
        /// Where to listen.
        url: String,
    },
}

/// An open subscription, whichever the bus.
enum Subscription {
    Redis(Pin<Box<dyn futures_util::Stream<Item = redis::Msg> + Send>>),
    Postgres(Listener),
}

impl Subscription {
    async fn next(&mut self) -> Option<String> {
        match self {
            Subscription::Redis(messages) => {
                let msg = messages.next().await?;
                Some(msg.get_payload().unwrap_or_default())
            }
            Subscription::Postgres(listener) => listener.next().await,
        }
    }
}

impl Bus {
    /// What this bus is, for logs.
    fn name(&self) -> &'static str {
        match self {
            Bus::Local => "none",
            Bus::Redis { .. } => "redis",
            Bus::Postgres { .. } => "postgres",
        }
    }

    async fn subscribe(&self) -> Result<Subscription, String> {
        match self {
            Bus::Local => Err("no bus".into()),
            Bus::Redis { redis, url } => {
                let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
                let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
                pubsub
                    .subscribe(channel(&redis.prefix))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Subscription::Redis(Box::pin(pubsub.into_on_message())))
            }
            Bus::Postgres { url, .. } => Listener::open(url)
                .await
                .map(Subscription::Postgres)
                .map_err(|e| e.to_string()),
        }
    }

    async fn publish(&self, payload: String) -> Result<(), String> {
        match self {
            Bus::Local => Ok(()),
            Bus::Redis { redis, .. } => {
                let mut cmd = redis::cmd("PUBLISH");
                cmd.arg(channel(&redis.prefix)).arg(payload);
                redis
                    .run::<i64>(&cmd)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            Bus::Postgres { db, .. } => mall_db::notify::notify(db, &payload)
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

/// Applies notices to this node's caches and passes them to the other nodes.
pub struct Notifier {
    cache: Arc<AuthCache>,
    policy: Arc<PolicyStore>,
    products: Arc<ProductCache>,
    prices: Arc<Prices>,
    bus: Arc<Bus>,
    /// Stock changes waiting to be published, started with the first one.
    stock_queue: OnceLock<mpsc::UnboundedSender<Vec<i64>>>,
}

impl Notifier {
    /// A notifier over this node's caches and policy, telling the others over `bus`.
    pub fn new(
        cache: Arc<AuthCache>,
        policy: Arc<PolicyStore>,
        products: Arc<ProductCache>,
        prices: Arc<Prices>,
        bus: Bus,
    ) -> Self {
        Notifier {
            cache,
            policy,
            products,
            prices,
            bus: Arc::new(bus),
            stock_queue: OnceLock::new(),
        }
    }

    /// Applies a notice to this node's caches.
    async fn apply(&self, notice: &Notice) {
        match notice {
            Notice::User(id) => self.cache.invalidate_user(*id),
            Notice::AllUsers => self.cache.clear(),
            Notice::Policy => {
                if let Err(e) = self.policy.refresh().await {
                    tracing::warn!(error = %e, "policy reload after a notice failed; the poll will retry");
                }
            }
            Notice::Products(ids) => {
                self.products.invalidate(ids);
                self.prices.invalidate(ids);
            }
            Notice::Stock(ids) => self.products.invalidate(ids),
        }
    }

    /// An order took or returned the stock of products `ids`: forgets their rendered copies
    /// here at once, before the caller answers, and tells the other nodes in the background.
    /// For callers that cannot wait. Every order changes stock, so the changes are queued and
    /// sent at most every [`STOCK_NOTICE_EVERY`]: under load a notice carries many orders'
    /// products instead of costing the database (or Redis) a round trip per order.
    pub fn stock_changed(&self, ids: Vec<i64>) {
        self.products.invalidate(&ids);
        if matches!(*self.bus, Bus::Local) {
            return;
        }
        let queue = self.stock_queue.get_or_init(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<Vec<i64>>();
            let bus = Arc::clone(&self.bus);
            actix_web::rt::spawn(async move {
                while let Some(mut ids) = rx.recv().await {
                    tokio::time::sleep(STOCK_NOTICE_EVERY).await;
                    while let Ok(more) = rx.try_recv() {
                        ids.extend(more);
                    }
                    ids.sort_unstable();
                    ids.dedup();
                    publish(&bus, &Notice::Stock(ids)).await;
                }
            });
            tx
        });
        // The receiver lives as long as the runtime; once it is gone there is nobody to tell.
        let _ = queue.send(ids);
    }

    /// Listens for other nodes' notices until the process ends, reconnecting after failures.
    /// With no bus there is nothing to listen to.
    pub fn spawn_listener(self: &Arc<Self>) {
        if matches!(*self.bus, Bus::Local) {
            return;
        }
        let me = Arc::clone(self);
        actix_web::rt::spawn(async move {
            loop {
                match tokio::time::timeout(Duration::from_secs(2), me.bus.subscribe()).await {
                    Ok(Ok(mut subscription)) => {
                        tracing::info!(bus = me.bus.name(), "listening for change notices");
                        // Whatever changed while nobody listened was missed.
                        me.products.clear();
                        me.prices.clear();
                        while let Some(payload) = subscription.next().await {
                            if let Some(notice) = decode(&payload) {
                                me.apply(&notice).await;
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
            self.apply(&notice).await;
            publish(&self.bus, &notice).await;
        })
    }
}

/// Tells the other nodes over `bus` (best effort: a lost notice is bounded by the caches'
/// lifetimes). A long list of products goes as several notices.
async fn publish(bus: &Bus, notice: &Notice) {
    let chunked = |ids: &[i64], each: fn(Vec<i64>) -> Notice| -> Vec<String> {
        ids.chunks(IDS_PER_NOTICE)
            .map(|chunk| encode(&each(chunk.to_vec())))
            .collect()
    };
    let payloads = match notice {
        Notice::Products(ids) => chunked(ids, Notice::Products),
        Notice::Stock(ids) => chunked(ids, Notice::Stock),
        other => vec![encode(other)],
    };
    for payload in payloads {
        if let Err(e) = bus.publish(payload).await {
            tracing::debug!(error = %e, bus = bus.name(), "change notice not published; other nodes catch up by expiry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_garbage_is_ignored() {
        for n in [
            Notice::User(42),
            Notice::AllUsers,
            Notice::Policy,
            Notice::Products(vec![7]),
            Notice::Products(vec![1, 9_007_199_254_740_993]),
            Notice::Stock(vec![3, 4]),
        ] {
            assert_eq!(decode(&encode(&n)), Some(n));
        }
        assert_eq!(decode("user:x"), None);
        assert_eq!(decode("flush"), None);
        assert_eq!(decode("products:"), None);
        assert_eq!(decode("products:1,x"), None);
        assert_eq!(decode("stock:"), None);
        assert_eq!(decode("users:1"), None);
    }

    #[test]
    fn the_longest_product_notice_fits_a_postgres_payload() {
        let ids = vec![i64::MAX; IDS_PER_NOTICE];
        assert!(encode(&Notice::Products(ids)).len() < 8000);
    }
}
