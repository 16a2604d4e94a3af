//! The services behind the HTTP edge: accounts, login sessions, roles and the catalog.
//!
//! Each service holds only what it needs (the database, the id generator, the password hasher,
//! the product cache, whoever must hear of a change) and none of them knows actix-web,
//! `AppState`, `ApiError` or the JSON shapes of the API: a handler parses the request, calls
//! one service and renders what it returns, and the edge's `error.rs` alone turns a [`ServiceError`]
//! into a status. Minting access tokens, cookies and headers stay at the edge.
//!
//! They live in the HTTP crate, not in `mall-actors`: none of them is an entity with a mailbox
//! or a timer, and what they lean on (argon2, the RBAC policy, the Redis-backed caches and
//! change notices) is the HTTP layer's. Nothing here imports from the rest of the crate except
//! the product cache, so lifting this folder into a crate of its own is a move, not a rewrite.

pub mod accounts;
pub mod catalog;
pub mod password;
pub mod roles;
pub mod sessions;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mall_actors::order::OrderError;
use mall_db::{Db, DbError, IdGenerator};

/// The four services, wired once at start-up.
pub struct Services {
    /// Accounts.
    pub accounts: accounts::Accounts,
    /// Logins.
    pub sessions: sessions::Sessions,
    /// Roles.
    pub roles: roles::Roles,
    /// The catalog.
    pub catalog: catalog::Catalog,
}

impl Services {
    /// Wires the services over one database and id generator: refresh tokens live
    /// `refresh_ttl`, closed accounts' orders end through `orders`, `notices` hears of every
    /// change to accounts, roles and products, `check_rule` is the policy's check of a permission.
    pub fn new(
        db: &Db,
        ids: &Arc<IdGenerator>,
        refresh_ttl: Duration,
        orders: Arc<dyn accounts::PendingOrders>,
        notices: Arc<dyn Announce>,
        check_rule: roles::RuleCheck,
    ) -> Services {
        let hasher = password::Hasher;
        Services {
            accounts: accounts::Accounts::new(
                db.clone(),
                Arc::clone(ids),
                hasher,
                orders,
                Arc::clone(&notices),
            ),
            sessions: sessions::Sessions::new(
                db.clone(),
                Arc::clone(ids),
                hasher,
                refresh_ttl,
                sessions::Sessions::system_clock(),
                Arc::clone(&notices),
            ),
            roles: roles::Roles::new(db.clone(), check_rule, Arc::clone(&notices)),
            catalog: catalog::Catalog::new(db.clone(), Arc::clone(ids), notices),
        }
    }
}

/// Why a service refused or failed. One enum for the layer; statuses are chosen in
/// the edge's `error.rs` only.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Values that break the rules, as `(field, problem)` pairs, all of them at once.
    #[error("invalid: {}", describe(.0))]
    Invalid(Vec<(String, String)>),
    /// No such thing (or not one the caller may see).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Not in a state that allows this.
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// The email is registered already.
    #[error("that email is already registered")]
    EmailTaken,
    /// Wrong email or password (the same for both).
    #[error("email or password is wrong")]
    InvalidCredentials,
    /// The account is banned.
    #[error("this account is banned")]
    UserBanned,
    /// The refresh token names no live login.
    #[error("the refresh token is invalid or expired")]
    InvalidRefreshToken,
    /// A spent refresh token was presented again; its login has been ended.
    #[error("this refresh token was already used; the login has been ended")]
    RefreshTokenReused,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Cancelling a closed account's orders failed.
    #[error(transparent)]
    Orders(#[from] OrderError),
    /// A bug or a failure with nothing to tell the caller.
    #[error("{0}")]
    Internal(String),
}

/// `field: problem; field: problem`
fn describe(problems: &[(String, String)]) -> String {
    problems
        .iter()
        .map(|(f, p)| format!("{f}: {p}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ServiceError {
    /// One field breaking a rule.
    pub fn invalid_field(field: &str, problem: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![(field.to_owned(), problem.into())])
    }
}

/// Who acts, as far as the services care: an id, and whether the admin role is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// The user's id.
    pub user_id: i64,
    /// True when the user holds the admin role.
    pub admin: bool,
}

/// What changed about accounts, the policy or the catalog, so that the caches trusting the old
/// state forget it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// One user's account, roles or logins.
    User(i64),
    /// Many users' roles (a role was deleted).
    AllUsers,
    /// Roles or permissions.
    Policy,
    /// These products' fields (name, price, stock, deletion...).
    Products(Vec<i64>),
    /// Only these products' stock (an order took or returned it): prices are unchanged.
    Stock(Vec<i64>),
}

/// Whoever must hear of a change before the service answers (this node's caches, then the
/// other nodes). A trait, so the services need not know the caches, Redis or the policy store.
pub trait Announce: Send + Sync {
    /// Applies `notice` here and passes it on; never fails (the polls catch up).
    fn announce(&self, notice: Notice) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The id in a path or a body, when it is one of ours: a positive `i64` in canonical form
/// (`"007"` and `"+7"` name nothing).
pub fn parse_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0 && id.to_string() == raw)
}

/// The `(field, problem)` pairs found so far; all are reported at once.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<(String, String)>);

impl Problems {
    /// Notes `problem`, if there is one, against `field`.
    pub(crate) fn note(&mut self, field: impl Into<String>, problem: Option<String>) {
        if let Some(p) = problem {
            self.0.push((field.into(), p));
        }
    }

    /// Fails with every problem noted, if any.
    pub(crate) fn finish(self) -> Result<(), ServiceError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Invalid(self.0))
        }
    }
}

/// Test doubles and set-ups shared by the services' tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use mall_db::testing::TestDatabase;

    use super::accounts::PendingOrders;
    use super::*;

    /// Remembers every notice, in order.
    #[derive(Default)]
    pub struct Heard(pub Mutex<Vec<Notice>>);

    impl Heard {
        /// What was announced so far.
        pub fn all(&self) -> Vec<Notice> {
            self.0.lock().map(|g| g.clone()).unwrap_or_default()
        }
    }

    impl Announce for Heard {
        fn announce(&self, notice: Notice) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
            if let Ok(mut g) = self.0.lock() {
                g.push(notice);
            }
            Box::pin(async {})
        }
    }

    /// Counts the accounts whose pending orders were to be cancelled.
    #[derive(Default)]
    pub struct Orders(pub AtomicUsize);

    impl Orders {
        /// How many accounts' orders were cancelled.
        pub fn cancelled(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl PendingOrders for Orders {
        fn cancel_all_of(
            &self,
            _user_id: i64,
        ) -> Pin<Box<dyn Future<Output = Result<usize, OrderError>> + Send + '_>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(0) })
        }
    }

    /// A pool on a test database, migrated first.
    pub async fn pool(db: &TestDatabase) -> mall_db::Db {
        mall_db::migrate::run_pending_async(db.url()).await.unwrap();
        mall_db::Db::connect(db.url(), &mall_db::PoolOptions::default()).unwrap()
    }

    /// Runs `test` on a fixture over a fresh SQLite database, then over a fresh PostgreSQL one.
    pub async fn on_both<F>(fixture: impl AsyncFn(TestDatabase) -> F, test: impl AsyncFn(F)) {
        test(fixture(TestDatabase::sqlite().await).await).await;
        test(fixture(TestDatabase::postgres_migrated().await).await).await;
    }

    /// The password of every test account.
    pub const PASSWORD: &str = "correct horse";

    /// Registers `{name}@example.com` (password [`PASSWORD`]); its id.
    pub async fn user(accounts: &super::accounts::Accounts, name: &str) -> i64 {
        let email = format!("{name}@example.com");
        accounts
            .register(email, PASSWORD.into(), name.into())
            .await
            .unwrap()
            .user
            .id
    }

    /// The field names of an `Invalid` error, in order.
    pub fn fields(err: ServiceError) -> Vec<String> {
        match err {
            ServiceError::Invalid(found) => found.into_iter().map(|(f, _)| f).collect(),
            other => panic!("not invalid: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_not_ours_name_nothing() {
        assert_eq!(parse_id("123"), Some(123));
        for bad in [
            "abc",
            "-5",
            "0",
            "99999999999999999999",
            "",
            "007",
            "+7",
            " 7",
        ] {
            assert_eq!(parse_id(bad), None, "{bad:?}");
        }
    }
}
