//! Repository tests of mall-db: every test runs once on SQLite and once on PostgreSQL.
//!
//! Each test is an `async fn name(db: &Db)` that gets a freshly migrated database of its own;
//! `on_both_backends!(name)` turns it into the tests `name::sqlite` and `name::postgres`.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test, with its reason"
)]

/// Generates, for each `async fn name(db: &Db)`, a module `name` holding the `#[tokio::test]`s
/// `sqlite` and `postgres`, each on a new migrated database that is dropped afterwards.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let database = mall_db::testing::TestDatabase::sqlite().await;
                let db = crate::common::migrated(&database).await;
                super::$name(&db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let database = mall_db::testing::TestDatabase::postgres_migrated().await;
                let db = crate::common::migrated(&database).await;
                super::$name(&db).await;
            }
        }
    )+};
}

mod carts;
mod common;
mod fences;
mod idempotency;
mod migrations;
mod placements;
mod roles;
mod schema;
mod sessions;
mod users;
