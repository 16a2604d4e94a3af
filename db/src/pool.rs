//! Connection pools for both backends and `DbConn`, the one connection type the repositories take.
//!
//! diesel-async has no connection type that spans PostgreSQL and SQLite, so `DbConn` is an enum
//! and [`with_conn!`](crate::with_conn) expands one Diesel query once per backend.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use diesel::SqliteConnection;
use diesel::prelude::*;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection, TransactionManager};
use futures_util::FutureExt;

use crate::error::DbError;

/// SQLite behind diesel-async's blocking-thread wrapper.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a `database.url` names: `sqlite://PATH` or `postgres://...`/`postgresql://...`.
    pub fn of_url(url: &str) -> Result<Backend, DbError> {
        if url.starts_with("sqlite://") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(DbError::Config(format!(
                "database.url must start with sqlite:// or postgres://, got {:?}",
                redact(url)
            )))
        }
    }
}

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Connections per pool (for SQLite: the readers; there is always exactly one writer).
    pub max_connections: usize,
    /// How long a caller waits for a free connection before `DbError::Unavailable`.
    pub acquire_timeout: Duration,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// PostgreSQL `statement_timeout`; SQLite `busy_timeout`.
    pub statement_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

enum Pools {
    Postgres(Pool<AsyncPgConnection>),
    // SQLite allows one writer at a time; giving writes their own single-connection pool makes
    // them queue in the application instead of failing with SQLITE_BUSY when a deferred
    // transaction tries to upgrade its lock.
    Sqlite {
        read: Pool<SqliteConn>,
        write: Pool<SqliteConn>,
    },
}

/// A handle on the database: cheap to clone, shared by everything.
#[derive(Clone)]
pub struct Db {
    pools: Arc<Pools>,
    acquire_timeout: Duration,
}

/// One pooled connection to either backend; returned to its pool on drop.
// The PostgreSQL variant is large, but a connection is checked out once per unit of work and
// barely moved; boxing it would add an allocation to every checkout.
#[expect(
    clippy::large_enum_variant,
    reason = "see above: boxing costs an allocation per checkout"
)]
pub enum DbConn {
    /// A PostgreSQL connection.
    Pg(Object<AsyncPgConnection>),
    /// An SQLite connection.
    Sqlite(Object<SqliteConn>),
}

/// Runs `$body` with `$c` bound to the concrete connection (`&mut AsyncPgConnection` or
/// `&mut SqliteConn`) inside `$conn: &mut DbConn`. The body is compiled once per backend.
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::DbConn::Pg(pooled) => {
                let $c: &mut $crate::AsyncPgConnection = &mut *pooled;
                $body
            }
            $crate::DbConn::Sqlite(pooled) => {
                let $c: &mut $crate::SqliteConn = &mut *pooled;
                $body
            }
        }
    };
}

impl DbConn {
    /// Runs `work` in one transaction on this connection, owned by the caller: every repository
    /// function `work` calls with the connection is part of it (a repository's own transaction
    /// nests as a savepoint), so repositories compose instead of each use case needing one of
    /// its own. Commits when `work` answers `Ok`, rolls back on `Err`. A future dropped midway
    /// leaves the connection marked as in a broken transaction, which the pool then discards.
    /// It is traced as a `db.transaction` span named by `op`, like the repositories' own.
    pub async fn transaction<T, E>(
        &mut self,
        op: &'static str,
        work: impl AsyncFnOnce(&mut DbConn) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DbError>,
    {
        use tracing::Instrument as _;
        let span = tracing::info_span!("db.transaction", op);
        self.run_transaction(work).instrument(span).await
    }

    async fn run_transaction<T, E>(
        &mut self,
        work: impl AsyncFnOnce(&mut DbConn) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DbError>,
    {
        with_conn!(&mut *self, c => begin(c).await).map_err(|e| E::from(e.into()))?;
        let outcome = work(self).await;
        let ended = match &outcome {
            Ok(_) => with_conn!(&mut *self, c => commit(c).await),
            Err(_) => with_conn!(&mut *self, c => rollback(c).await),
        };
        match (outcome, ended) {
            (Ok(value), Ok(())) => Ok(value),
            (Ok(_), Err(e)) => Err(E::from(e.into())),
            (Err(e), _) => Err(e),
        }
    }

    /// Which backend this connection talks to.
    pub fn backend(&self) -> Backend {
        match self {
            DbConn::Pg(_) => Backend::Postgres,
            DbConn::Sqlite(_) => Backend::Sqlite,
        }
    }
}

async fn begin<C: AsyncConnection>(c: &mut C) -> QueryResult<()> {
    <C::TransactionManager as TransactionManager<C>>::begin_transaction(c).await
}

async fn commit<C: AsyncConnection>(c: &mut C) -> QueryResult<()> {
    <C::TransactionManager as TransactionManager<C>>::commit_transaction(c).await
}

async fn rollback<C: AsyncConnection>(c: &mut C) -> QueryResult<()> {
    <C::TransactionManager as TransactionManager<C>>::rollback_transaction(c).await
}

/// The filesystem path inside a `sqlite://PATH` URL.
pub fn sqlite_path(url: &str) -> Result<&str, DbError> {
    let path = url
        .strip_prefix("sqlite://")
        .ok_or_else(|| DbError::Config("not an sqlite:// url".into()))?;
    if path.is_empty() {
        return Err(DbError::Config("sqlite:// url has no path".into()));
    }
    Ok(path)
}

/// Creates the directory an SQLite file will live in.
pub(crate) fn ensure_parent_dir(path: &str) -> Result<(), DbError> {
    match Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir).map_err(|e| {
            DbError::Config(format!("cannot create directory {}: {e}", dir.display()))
        }),
        _ => Ok(()),
    }
}

/// Hides a password in a URL before it reaches a log line or an error message.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Db {
    /// Opens the pools for `url`. Connections are made lazily; call [`Db::ping`] to check.
    pub fn connect(url: &str, opts: &PoolOptions) -> Result<Db, DbError> {
        let pools = match Backend::of_url(url)? {
            Backend::Postgres => Pools::Postgres(pg_pool(url, opts)?),
            Backend::Sqlite => {
                let path = sqlite_path(url)?;
                ensure_parent_dir(path)?;
                Pools::Sqlite {
                    read: sqlite_pool(path, opts.max_connections.max(1), opts)?,
                    write: sqlite_pool(path, 1, opts)?,
                }
            }
        };
        Ok(Db {
            pools: Arc::new(pools),
            acquire_timeout: opts.acquire_timeout,
        })
    }

    /// Which backend this handle talks to.
    pub fn backend(&self) -> Backend {
        match &*self.pools {
            Pools::Postgres(_) => Backend::Postgres,
            Pools::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// `sqlite` or `postgres`, for logs.
    pub fn backend_name(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// A connection for reads.
    pub async fn read(&self) -> Result<DbConn, DbError> {
        match &*self.pools {
            Pools::Postgres(p) => self.acquire(p.get()).await.map(DbConn::Pg),
            Pools::Sqlite { read, .. } => self.acquire(read.get()).await.map(DbConn::Sqlite),
        }
    }

    /// A connection for writes (on SQLite, the single writer).
    pub async fn write(&self) -> Result<DbConn, DbError> {
        match &*self.pools {
            Pools::Postgres(p) => self.acquire(p.get()).await.map(DbConn::Pg),
            Pools::Sqlite { write, .. } => self.acquire(write.get()).await.map(DbConn::Sqlite),
        }
    }

    /// Waits at most `acquire_timeout` for a pooled connection.
    async fn acquire<T, E: std::fmt::Display>(
        &self,
        get: impl Future<Output = Result<T, E>>,
    ) -> Result<T, DbError> {
        match tokio::time::timeout(self.acquire_timeout, get).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(DbError::Unavailable(e.to_string())),
            Err(_) => Err(DbError::Unavailable(
                "timed out waiting for a connection".into(),
            )),
        }
    }

    /// Runs a trivial query: Ok when the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        let mut conn = self.read().await?;
        with_conn!(&mut conn, c => c.batch_execute("SELECT 1").await)?;
        Ok(())
    }

    /// Connections in use and the pool's size (for SQLite, the reader pool).
    pub fn pool_status(&self) -> (usize, usize) {
        let status = match &*self.pools {
            Pools::Postgres(p) => p.status(),
            Pools::Sqlite { read, .. } => read.status(),
        };
        (
            status.size.saturating_sub(status.available),
            status.max_size,
        )
    }
}

/// How long PostgreSQL lets a transaction sit idle before it ends the session (ours take
/// milliseconds between statements).
const IDLE_IN_TRANSACTION_MS: u64 = 3_000;

fn pg_pool(url: &str, opts: &PoolOptions) -> Result<Pool<AsyncPgConnection>, DbError> {
    let connect_timeout = opts.connect_timeout;
    let statement_ms = opts.statement_timeout.as_millis();
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        async move {
            let mut conn =
                tokio::time::timeout(connect_timeout, AsyncPgConnection::establish(&url))
                    .await
                    .map_err(|_| {
                        diesel::ConnectionError::BadConnection("connect timed out".into())
                    })??;
            // A transaction left idle (its process paused or hung between statements) is
            // ended by the server: it would otherwise hold its locks, among them the share lock
            // on a shard's epoch that a new owner waits for (repo::fences).
            conn.batch_execute(&format!(
                "SET statement_timeout = {statement_ms}; SET TIME ZONE 'UTC'; \
                 SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}"
            ))
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config(url, config);
    Pool::builder(manager)
        .max_size(opts.max_connections.max(1))
        .build()
        .map_err(|e| DbError::Config(e.to_string()))
}

fn sqlite_pool(path: &str, size: usize, opts: &PoolOptions) -> Result<Pool<SqliteConn>, DbError> {
    let busy_ms = opts.statement_timeout.as_millis();
    let mut config = ManagerConfig::<SqliteConn>::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |path| {
        let path = path.to_owned();
        async move {
            let mut conn = SqliteConn::establish(&path).await?;
            // The busy timeout must come before the switch to WAL, which itself takes a lock.
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {busy_ms}; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
            ))
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config(path, config);
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| DbError::Config(e.to_string()))
}

/// Opens one synchronous SQLite connection with the same pragmas as the pools (for migrations).
pub(crate) fn sqlite_sync_connection(path: &str) -> Result<SqliteConnection, DbError> {
    use diesel::connection::SimpleConnection;
    let mut conn =
        SqliteConnection::establish(path).map_err(|e| DbError::Unavailable(e.to_string()))?;
    conn.batch_execute(
        "PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(
            Backend::of_url("sqlite://data/mall.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::of_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::of_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::of_url("mysql://h/db").is_err());
        assert_eq!(sqlite_path("sqlite:///tmp/x.db").unwrap(), "/tmp/x.db");
        assert!(sqlite_path("sqlite://").is_err());
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://data/mall.db"), "sqlite://data/mall.db");
    }
}
