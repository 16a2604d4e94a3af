//! mall-db: the mall's persistence layer — schema, models, repositories, pools and migrations,
//! on SQLite (embedded default) and PostgreSQL, through Diesel and diesel-async.

pub mod clock;
pub mod domain;
pub mod error;
pub mod ids;
pub mod migrate;
pub mod models;
pub mod notify;
pub mod pool;
pub mod repo;
pub mod schema;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use diesel_async::AsyncPgConnection;
pub use domain::money;
pub use error::DbError;
pub use ids::IdGenerator;
pub use pool::{Backend, Db, DbConn, PoolOptions, SqliteConn};
