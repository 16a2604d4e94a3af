//! Throw-away databases for tests: each test gets its own, dropped when the value is dropped.
//!
//! PostgreSQL databases are created on the server named by `MALL_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`, the machine's trust-auth server).

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::error::DbError;

/// The admin URL used to create and drop test databases.
pub fn postgres_admin_url() -> String {
    std::env::var("MALL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

enum Kind {
    Sqlite(
        #[expect(
            dead_code,
            reason = "held so the directory lives as long as the database"
        )]
        tempfile::TempDir,
    ),
    Postgres {
        admin_url: String,
        name: String,
    },
}

/// A fresh, empty database (no migrations applied) that disappears on drop.
pub struct TestDatabase {
    url: String,
    kind: Kind,
}

impl TestDatabase {
    /// A new SQLite file in its own temporary directory.
    pub async fn sqlite() -> TestDatabase {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("cannot create a temporary directory: {e}"),
        };
        let url = format!("sqlite://{}/mall.db", dir.path().display());
        TestDatabase {
            url,
            kind: Kind::Sqlite(dir),
        }
    }

    /// A new PostgreSQL database on the test server.
    pub async fn postgres() -> TestDatabase {
        let admin_url = postgres_admin_url();
        let name = format!("mall_test_{:016x}", rand::random::<u64>());
        if let Err(e) = admin_sql(&admin_url, &format!("CREATE DATABASE {name}")).await {
            panic!("cannot create test database {name}: {e}");
        }
        let url = match admin_url.rfind('/') {
            Some(slash) if slash > "postgres://".len() => format!("{}/{name}", &admin_url[..slash]),
            _ => panic!("MALL_TEST_POSTGRES_URL must name a database: {admin_url}"),
        };
        TestDatabase {
            url,
            kind: Kind::Postgres { admin_url, name },
        }
    }

    /// Its `database.url`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

async fn admin_sql(admin_url: &str, sql: &str) -> Result<(), DbError> {
    let mut conn = AsyncPgConnection::establish(admin_url)
        .await
        .map_err(|e| DbError::Unavailable(e.to_string()))?;
    conn.batch_execute(sql).await?;
    Ok(())
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Kind::Postgres { admin_url, name } = &self.kind {
            let admin_url = admin_url.clone();
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            // Drop may run inside a runtime: do the async work on a thread of its own.
            let dropped = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match rt {
                    Ok(rt) => rt
                        .block_on(admin_sql(&admin_url, &sql))
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            })
            .join();
            if let Ok(Err(e)) = dropped {
                eprintln!("warning: could not drop test database {name}: {e}");
            }
        }
    }
}

/// A PostgreSQL transaction held open on a connection of its own, for tests of what waits on
/// its locks (`SELECT ... FOR UPDATE` on a product, say). Dropping it without
/// [`OpenTransaction::commit`] closes the connection, which rolls the transaction back.
pub struct OpenTransaction(AsyncPgConnection);

impl OpenTransaction {
    /// Connects to `url`, begins a transaction and runs `sql` in it.
    pub async fn begin(url: &str, sql: &str) -> Result<OpenTransaction, DbError> {
        let mut conn = AsyncPgConnection::establish(url)
            .await
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        conn.batch_execute(&format!("BEGIN; {sql}")).await?;
        Ok(OpenTransaction(conn))
    }

    /// Commits, releasing the locks.
    pub async fn commit(mut self) -> Result<(), DbError> {
        self.0.batch_execute("COMMIT").await?;
        Ok(())
    }
}
