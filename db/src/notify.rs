//! Change notices over PostgreSQL's `LISTEN`/`NOTIFY`, for a cluster without Redis: every node
//! sharing a database hears what any of them announces. A notice is a short text; PostgreSQL
//! scopes the channel to the database, so tests on databases of their own never hear each other.

use std::future::poll_fn;
use std::time::Duration;

use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::{Db, DbConn, DbError};

/// The channel every notice travels on.
pub const CHANNEL: &str = "mall_notices";

/// Longest wait for the listening connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `payload` to every listener of the database (none on SQLite, where one process is all
/// there is). Sent outside a transaction, so it leaves at once.
pub async fn notify(db: &Db, payload: &str) -> Result<(), DbError> {
    let mut conn = db.write().await?;
    if let DbConn::Pg(c) = &mut conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(CHANNEL)
            .bind::<Text, _>(payload)
            .execute(&mut **c)
            .await?;
    }
    Ok(())
}

/// A connection of its own that listens on [`CHANNEL`].
pub struct Listener {
    // Kept so the connection stays open; it is used by nothing else.
    _client: tokio_postgres::Client,
    notices: mpsc::UnboundedReceiver<String>,
}

impl Listener {
    /// Opens a connection to the PostgreSQL at `url` and listens. The caller should treat
    /// anything it cached as possibly stale once this returns: notices sent before it were missed.
    pub async fn open(url: &str) -> Result<Listener, DbError> {
        let unavailable = |e: tokio_postgres::Error| DbError::Unavailable(e.to_string());
        let (client, mut connection) =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio_postgres::connect(url, NoTls))
                .await
                .map_err(|_| DbError::Unavailable("listener connect timed out".into()))?
                .map_err(unavailable)?;
        let (tx, notices) = mpsc::unbounded_channel();
        // The connection does its I/O only while polled: this task drives it and passes each
        // notice on, and ends (closing the channel) when the connection does.
        tokio::spawn(async move {
            while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx.send(n.payload().to_owned()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "notice listener connection failed");
                        break;
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(unavailable)?;
        Ok(Listener {
            _client: client,
            notices,
        })
    }

    /// The next notice, or None once the connection is gone.
    pub async fn next(&mut self) -> Option<String> {
        self.notices.recv().await
    }
}
