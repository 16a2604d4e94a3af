//! Fixtures shared by the repository tests: migrated databases, connections and row builders.

use std::sync::LazyLock;

use mall_db::models::{NewProduct, NewUser, RefreshTokenRow, SessionRow, UserRow};
use mall_db::repo::{products, sessions, users};
use mall_db::testing::TestDatabase;
use mall_db::{Db, DbConn, IdGenerator, PoolOptions, clock};
use time::{Duration, PrimitiveDateTime};

/// One generator for the whole test binary, so ids never repeat across tests.
static IDS: LazyLock<IdGenerator> = LazyLock::new(|| IdGenerator::new(1));

/// A fresh application id.
pub fn next_id() -> i64 {
    IDS.next_id()
}

/// A unique 64-hex-digit stand-in for a refresh token's SHA-256.
pub fn token_hash() -> String {
    format!("{:064x}", next_id())
}

/// Applies the migrations to `database` and connects to it. A PostgreSQL test database is a
/// copy of the migrated template, so nothing may be left to apply; that migrations apply to a
/// bare database, once, is `migrations.rs`'s test.
pub async fn migrated(database: &TestDatabase) -> Db {
    mall_db::migrate::run_pending_async(database.url())
        .await
        .expect("migrations apply");
    connect(database.url())
}

/// A pool on `url` with the default options.
pub fn connect(url: &str) -> Db {
    Db::connect(url, &PoolOptions::default()).expect("pool opens")
}

/// A connection for writes.
pub async fn wr(db: &Db) -> DbConn {
    db.write().await.expect("write connection")
}

/// A connection for reads.
pub async fn rd(db: &Db) -> DbConn {
    db.read().await.expect("read connection")
}

/// Owned strings from string literals.
pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A registration for `email` (normalised by lower-casing) created now.
pub fn new_user(email: &str) -> NewUser {
    let now = clock::now();
    NewUser {
        id: next_id(),
        email: email.to_owned(),
        email_norm: email.to_lowercase(),
        name: "Test User".to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        password_changed_at: now,
        created_at: now,
        updated_at: now,
    }
}

/// Inserts a user with `roles` and returns the stored row.
pub async fn add_user(db: &Db, email: &str, roles: &[&str]) -> UserRow {
    users::insert(&mut wr(db).await, new_user(email), &strings(roles))
        .await
        .expect("user inserts")
}

/// An unspent refresh token; `rotate` fills in the session id of a successor itself.
pub fn refresh_token(
    hash: &str,
    session_id: i64,
    expires_at: PrimitiveDateTime,
) -> RefreshTokenRow {
    RefreshTokenRow {
        token_hash: hash.to_owned(),
        session_id,
        issued_at: clock::now(),
        expires_at,
        spent_at: None,
    }
}

/// A successor token for `rotate`, valid for an hour.
pub fn successor(hash: &str) -> RefreshTokenRow {
    refresh_token(hash, 0, clock::now() + Duration::hours(1))
}

/// Records a login of `user_id` whose first token expires at `expires_at`: (session id, token hash).
pub async fn login_until(db: &Db, user_id: i64, expires_at: PrimitiveDateTime) -> (i64, String) {
    let session = SessionRow {
        id: next_id(),
        user_id,
        created_at: clock::now(),
        revoked_at: None,
        revoke_reason: None,
    };
    let hash = token_hash();
    let first = refresh_token(&hash, session.id, expires_at);
    let id = session.id;
    sessions::create(&mut wr(db).await, session, first)
        .await
        .expect("session is created");
    (id, hash)
}

/// Records a login of `user_id` whose first token is valid for an hour.
pub async fn login(db: &Db, user_id: i64) -> (i64, String) {
    login_until(db, user_id, clock::now() + Duration::hours(1)).await
}

/// The auth state of an existing user.
pub async fn auth(db: &Db, user_id: i64, session_id: i64) -> users::AuthState {
    users::auth_state(&mut rd(db).await, user_id, session_id)
        .await
        .expect("auth_state query")
        .expect("the user exists")
}

/// The session a token belongs to; panics when the token is unknown.
pub async fn session_of(db: &Db, hash: &str) -> SessionRow {
    sessions::session_of_token(&mut rd(db).await, hash)
        .await
        .expect("session_of_token query")
        .expect("the token is stored")
}

/// A new live product of `merchant` named `name`; returns its id.
pub async fn add_product(db: &Db, merchant: i64, name: &str, price_cents: i64, stock: i64) -> i64 {
    let now = clock::now();
    let p = NewProduct {
        id: next_id(),
        merchant_id: merchant,
        name: name.to_owned(),
        description: String::new(),
        price_cents,
        stock,
        image_url: None,
        created_at: now,
        updated_at: now,
    };
    products::insert(&mut wr(db).await, p, &[])
        .await
        .expect("product inserted")
        .0
        .id
}
