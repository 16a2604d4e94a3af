//! Embedded migrations for both backends, applied by `mall migrate` and at start-up.
//!
//! Blocking code: diesel's migration harness drives the async PostgreSQL connection with its own
//! `block_on`, which panics on actix's current-thread workers. Call [`run_pending`] before the
//! runtime starts, or [`run_pending_async`] from inside one (it moves to a blocking thread).

use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::DbError;
use crate::pool::{Backend, ensure_parent_dir, sqlite_path, sqlite_sync_connection};

const POSTGRES: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

/// Applies every pending migration to the database at `url`; returns the versions applied.
pub fn run_pending(url: &str) -> Result<Vec<String>, DbError> {
    use diesel::Connection;
    let applied = match Backend::of_url(url)? {
        Backend::Sqlite => {
            let path = sqlite_path(url)?;
            ensure_parent_dir(path)?;
            let mut conn = sqlite_sync_connection(path)?;
            conn.run_pending_migrations(SQLITE)
                .map_err(|e| DbError::Migration(e.to_string()))?
                .iter()
                .map(|v| v.to_string())
                .collect()
        }
        Backend::Postgres => {
            let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(url)
                .map_err(|e| DbError::Unavailable(e.to_string()))?;
            conn.run_pending_migrations(POSTGRES)
                .map_err(|e| DbError::Migration(e.to_string()))?
                .iter()
                .map(|v| v.to_string())
                .collect()
        }
    };
    Ok(applied)
}

/// [`run_pending`] on a blocking thread, for callers already inside a tokio runtime.
pub async fn run_pending_async(url: &str) -> Result<Vec<String>, DbError> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || run_pending(&url))
        .await
        .map_err(|e| DbError::Migration(format!("migration task failed: {e}")))?
}
