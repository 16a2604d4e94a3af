//! Throw-away databases for tests: each test gets its own, dropped when the value is dropped.
//!
//! PostgreSQL databases are created on the server named by `MALL_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`, the machine's trust-auth server).
//! A test that wants the schema asks for a copy of a migrated template
//! ([`TestDatabase::postgres_migrated`], `CREATE DATABASE ... TEMPLATE`), which takes a
//! fraction of the time of running the migrations on an empty database. The template is named
//! after a hash of the PostgreSQL migrations, made once by the first test process that needs it
//! (under an advisory lock, published by a rename so no one copies it half made) and kept on
//! the server for later runs: it is a cache, like `target/`; a changed migration makes a new one.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

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

/// A fresh database that disappears on drop.
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

    /// A new, empty PostgreSQL database on the test server (no migrations applied).
    pub async fn postgres() -> TestDatabase {
        Self::postgres_from("").await
    }

    /// A new PostgreSQL database on the test server, migrated: a copy of the template, much
    /// faster than migrating an empty one.
    pub async fn postgres_migrated() -> TestDatabase {
        let template = match migrated_template() {
            Ok(name) => name,
            Err(e) => panic!("cannot make the migrated template database: {e}"),
        };
        Self::postgres_from(&format!("TEMPLATE {template}")).await
    }

    async fn postgres_from(options: &str) -> TestDatabase {
        let admin_url = postgres_admin_url();
        let name = format!("mall_test_{:016x}", rand::random::<u64>());
        if let Err(e) = admin_sql(&admin_url, &format!("CREATE DATABASE {name} {options}")).await {
            panic!("cannot create test database {name}: {e}");
        }
        let url = database_url(&admin_url, &name);
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

/// The URL of database `name` on the server of `admin_url`.
fn database_url(admin_url: &str, name: &str) -> String {
    match admin_url.rfind('/') {
        Some(slash) if slash > "postgres://".len() => format!("{}/{name}", &admin_url[..slash]),
        _ => panic!("MALL_TEST_POSTGRES_URL must name a database: {admin_url}"),
    }
}

/// The name of the migrated template for these migrations, made on first use in this process.
fn migrated_template() -> Result<String, String> {
    static TEMPLATE: OnceLock<Result<String, String>> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            // Its own thread and runtime: the caller may be inside a runtime, and the
            // migration harness blocks on one of its own.
            std::thread::spawn(make_template)
                .join()
                .unwrap_or_else(|_| Err("the template thread panicked".into()))
        })
        .clone()
}

/// A hash of every PostgreSQL migration (names and SQL), so a changed migration gets a new template.
fn migrations_hash() -> Result<u64, String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/postgres");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .map_err(|e| format!("{}: {e}", root.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    let mut hasher = DefaultHasher::new();
    for dir in dirs {
        dir.file_name().hash(&mut hasher);
        let sql =
            std::fs::read(dir.join("up.sql")).map_err(|e| format!("{}: {e}", dir.display()))?;
        sql.hash(&mut hasher);
    }
    Ok(hasher.finish())
}

/// Makes the template if no process has yet: under an advisory lock, migrated under a
/// temporary name, then renamed and closed to connections (a copy needs a template no one
/// is connected to).
fn make_template() -> Result<String, String> {
    /// The advisory lock the template makers take (any fixed number, "mall" in ASCII).
    const LOCK: i64 = 0x6d61_6c6c;
    let name = format!("mall_template_{:016x}", migrations_hash()?);
    let admin_url = postgres_admin_url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut admin = rt
        .block_on(AsyncPgConnection::establish(&admin_url))
        .map_err(|e| e.to_string())?;
    rt.block_on(admin.batch_execute(&format!("SELECT pg_advisory_lock({LOCK})")))
        .map_err(|e| e.to_string())?;
    let exists_sql = format!("EXISTS (SELECT 1 FROM pg_database WHERE datname = '{name}')");
    let exists: bool = rt
        .block_on(
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&exists_sql))
                .get_result(&mut admin),
        )
        .map_err(|e| e.to_string())?;
    if !exists {
        let building = format!("{name}_building");
        // One statement per call: neither may run inside the implicit transaction of a batch.
        for sql in [
            format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
            format!("CREATE DATABASE {building}"),
        ] {
            rt.block_on(admin.batch_execute(&sql))
                .map_err(|e| e.to_string())?;
        }
        crate::migrate::run_pending(&database_url(&admin_url, &building))
            .map_err(|e| format!("migrating the template: {e}"))?;
        for sql in [
            format!("ALTER DATABASE {building} RENAME TO {name}"),
            format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"),
        ] {
            rt.block_on(admin.batch_execute(&sql))
                .map_err(|e| e.to_string())?;
        }
    }
    // Closing the connection releases the lock.
    drop(admin);
    Ok(name)
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
