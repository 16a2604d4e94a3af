//! Login sessions: a login starts a family of single-use refresh tokens; each renewal spends one
//! and issues the next; a spent one presented again ends the family; logout ends it at once.
//! The access token of a login is minted at the edge, from the ids this service answers.

use std::sync::Arc;
use std::time::Duration;

use time::PrimitiveDateTime;

use mall_db::models::{RefreshTokenRow, SessionRow};
use mall_db::repo::sessions::Rotation;
use mall_db::{Db, IdGenerator, clock, repo};

use super::password::{Hasher, dummy_hash, hash_refresh_token, new_refresh_token};
use super::{Announce, Notice, ServiceError};

/// The wall clock the service reads (a function, so tests can move time on).
pub type Clock = Arc<dyn Fn() -> PrimitiveDateTime + Send + Sync>;

/// A login, or its renewal: whose it is and the refresh token to hand out (once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The user.
    pub user_id: i64,
    /// The login (the `sid` of its access tokens).
    pub session_id: i64,
    /// The new refresh token, in clear; only its hash is stored.
    pub refresh_token: String,
}

/// The session service.
#[derive(Clone)]
pub struct Sessions {
    db: Db,
    ids: Arc<IdGenerator>,
    hasher: Hasher,
    refresh_ttl: Duration,
    clock: Clock,
    notices: Arc<dyn Announce>,
}

impl Sessions {
    /// The service over `db`; refresh tokens live `refresh_ttl`; `notices` hears of ended logins.
    pub fn new(
        db: Db,
        ids: Arc<IdGenerator>,
        hasher: Hasher,
        refresh_ttl: Duration,
        clock: Clock,
        notices: Arc<dyn Announce>,
    ) -> Self {
        Sessions {
            db,
            ids,
            hasher,
            refresh_ttl,
            clock,
            notices,
        }
    }

    /// The system clock, truncated as the database stores it.
    pub fn system_clock() -> Clock {
        Arc::new(clock::now)
    }

    /// How long a refresh token lives.
    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    /// Logs in. An unknown email and a wrong password fail alike, after the same work.
    pub async fn login(&self, email: &str, password: String) -> Result<Login, ServiceError> {
        let email_norm = super::accounts::normalised_email(email);
        let found = {
            let mut conn = self.db.read().await?;
            repo::users::find_open_by_email(&mut conn, &email_norm).await?
        };
        let phc = found
            .as_ref()
            .map_or_else(|| dummy_hash().to_owned(), |u| u.password_hash.clone());
        let matches = self.hasher.verify(password, phc).await?;
        let Some(user) = found.filter(|_| matches) else {
            return Err(ServiceError::InvalidCredentials);
        };
        if user.banned_at.is_some() {
            return Err(ServiceError::UserBanned);
        }
        self.start(user.id).await
    }

    /// A new login of `user_id` with its first refresh token.
    async fn start(&self, user_id: i64) -> Result<Login, ServiceError> {
        let now = (self.clock)();
        let session_id = self.ids.next_id();
        let refresh_token = new_refresh_token();
        let session = SessionRow {
            id: session_id,
            user_id,
            created_at: now,
            revoked_at: None,
            revoke_reason: None,
        };
        let first = self.refresh_row(&refresh_token, session_id, now);
        let mut conn = self.db.write().await?;
        repo::sessions::create(&mut conn, session, first).await?;
        Ok(Login {
            user_id,
            session_id,
            refresh_token,
        })
    }

    fn refresh_row(&self, token: &str, session_id: i64, now: PrimitiveDateTime) -> RefreshTokenRow {
        RefreshTokenRow {
            token_hash: hash_refresh_token(token),
            session_id,
            issued_at: now,
            expires_at: now.saturating_add(
                time::Duration::try_from(self.refresh_ttl).unwrap_or(time::Duration::MAX),
            ),
            spent_at: None,
        }
    }

    /// Spends `refresh_token` and issues the next one of its login. A spent token presented
    /// again ends the whole login; so does nothing else here.
    pub async fn renew(&self, refresh_token: &str) -> Result<Login, ServiceError> {
        let now = (self.clock)();
        let next = new_refresh_token();
        let next_row = self.refresh_row(&next, 0, now);
        let outcome = {
            let mut conn = self.db.write().await?;
            repo::sessions::rotate(&mut conn, &hash_refresh_token(refresh_token), next_row, now)
                .await?
        };
        match outcome {
            Rotation::Rotated {
                session_id,
                user_id,
            } => {
                let state = {
                    let mut conn = self.db.read().await?;
                    repo::users::auth_state(&mut conn, user_id, session_id).await?
                };
                match state {
                    Some(s) if s.banned => Err(ServiceError::UserBanned),
                    Some(s) if !s.closed && !s.session_revoked => Ok(Login {
                        user_id,
                        session_id,
                        refresh_token: next,
                    }),
                    _ => Err(ServiceError::InvalidRefreshToken),
                }
            }
            Rotation::Reused { user_id } => {
                self.notices.announce(Notice::User(user_id)).await;
                tracing::warn!(user_id, "refresh token reused; login revoked");
                Err(ServiceError::RefreshTokenReused)
            }
            Rotation::Invalid => Err(ServiceError::InvalidRefreshToken),
        }
    }

    /// Ends the caller's login `session_id`, and the one `refresh_token` belongs to if that
    /// login is the caller's too.
    pub async fn logout(
        &self,
        user_id: i64,
        session_id: i64,
        refresh_token: Option<&str>,
    ) -> Result<(), ServiceError> {
        let now = (self.clock)();
        {
            let mut conn = self.db.write().await?;
            repo::sessions::revoke(&mut conn, user_id, session_id, "logout", now).await?;
            let named = match refresh_token {
                Some(token) => {
                    repo::sessions::session_of_token(&mut conn, &hash_refresh_token(token)).await?
                }
                None => None,
            };
            if let Some(session) = named {
                // `revoke` only touches the caller's own sessions.
                repo::sessions::revoke(&mut conn, user_id, session.id, "logout", now).await?;
            }
        }
        self.notices.announce(Notice::User(user_id)).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use mall_db::testing::TestDatabase;

    use super::*;
    use crate::services::accounts::Accounts;
    use crate::services::testing::{Heard, Orders, PASSWORD, on_both, pool, user};

    struct Fixture {
        _db: TestDatabase,
        accounts: Accounts,
        sessions: Sessions,
        heard: Arc<Heard>,
        /// Seconds the test clock runs ahead of the system clock.
        ahead: Arc<AtomicI64>,
    }

    const TTL: Duration = Duration::from_secs(3600);

    async fn fixture(db: TestDatabase) -> Fixture {
        let pool = pool(&db).await;
        let ids = Arc::new(IdGenerator::new(1));
        let heard = Arc::new(Heard::default());
        let ahead = Arc::new(AtomicI64::new(0));
        let offset = ahead.clone();
        let clock: Clock = Arc::new(move || {
            clock::now().saturating_add(time::Duration::seconds(offset.load(Ordering::SeqCst)))
        });
        let accounts = Accounts::new(
            pool.clone(),
            ids.clone(),
            Hasher,
            Arc::new(Orders::default()),
            heard.clone(),
        );
        let sessions = Sessions::new(pool, ids, Hasher, TTL, clock, heard.clone());
        Fixture {
            _db: db,
            accounts,
            sessions,
            heard,
            ahead,
        }
    }

    async fn ada(f: &Fixture) -> i64 {
        user(&f.accounts, "ada").await
    }

    /// Asserts that `token` renews nothing (unknown, expired, or of an ended login).
    async fn assert_renews_nothing(f: &Fixture, token: &str) {
        let renewed = f.sessions.renew(token).await;
        assert!(
            matches!(renewed, Err(ServiceError::InvalidRefreshToken)),
            "{renewed:?}"
        );
    }

    async fn login(f: &Fixture, email: &str) -> Login {
        f.sessions.login(email, PASSWORD.into()).await.unwrap()
    }

    #[tokio::test]
    async fn unknown_email_and_wrong_password_fail_alike_and_bans_refuse() {
        on_both(fixture, async |f: Fixture| {
            let id = ada(&f).await;
            for (email, password) in [
                ("nobody@example.com", "correct horse"),
                ("ada@example.com", "wrong horse"),
            ] {
                let err = f.sessions.login(email, password.into()).await;
                assert!(matches!(err, Err(ServiceError::InvalidCredentials)));
            }
            let login = login(&f, "  ADA@example.com ").await;
            assert_eq!(login.user_id, id);
            assert_eq!(login.refresh_token.len(), 43);
            f.accounts
                .set_ban(0, id, Some("spam".into()))
                .await
                .unwrap();
            let banned = f.sessions.login("ada@example.com", PASSWORD.into()).await;
            assert!(matches!(banned, Err(ServiceError::UserBanned)));
            // The ban ended the login too: its refresh token names nothing any more.
            assert_renews_nothing(&f, &login.refresh_token).await;
        })
        .await;
    }

    #[tokio::test]
    async fn each_renewal_spends_its_token_and_a_reuse_ends_the_login() {
        on_both(fixture, async |f: Fixture| {
            let id = ada(&f).await;
            let first = login(&f, "ada@example.com").await;
            let second = f.sessions.renew(&first.refresh_token).await.unwrap();
            assert_eq!(second.session_id, first.session_id);
            assert_ne!(second.refresh_token, first.refresh_token);
            assert!(f.heard.all().is_empty());
            let reused = f.sessions.renew(&first.refresh_token).await;
            assert!(matches!(reused, Err(ServiceError::RefreshTokenReused)));
            assert_eq!(f.heard.all(), [Notice::User(id)]);
            // The whole family is gone, the unspent token too.
            assert_renews_nothing(&f, &second.refresh_token).await;
            assert_renews_nothing(&f, "not a token").await;
        })
        .await;
    }

    #[tokio::test]
    async fn a_refresh_token_expires_with_its_ttl() {
        on_both(fixture, async |f: Fixture| {
            ada(&f).await;
            let login = login(&f, "ada@example.com").await;
            let secs = i64::try_from(TTL.as_secs()).unwrap();
            f.ahead.store(secs - 1, Ordering::SeqCst);
            let renewed = f.sessions.renew(&login.refresh_token).await.unwrap();
            f.ahead.store(2 * secs, Ordering::SeqCst);
            assert_renews_nothing(&f, &renewed.refresh_token).await;
        })
        .await;
    }

    #[tokio::test]
    async fn logout_ends_the_callers_logins_and_no_one_elses() {
        on_both(fixture, async |f: Fixture| {
            let id = ada(&f).await;
            user(&f.accounts, "bob").await;
            let (a1, a2, b) = (
                login(&f, "ada@example.com").await,
                login(&f, "ada@example.com").await,
                login(&f, "bob@example.com").await,
            );
            // Ada ends her first login and names her second one's token, and Bob's.
            f.sessions
                .logout(id, a1.session_id, Some(&a2.refresh_token))
                .await
                .unwrap();
            f.sessions
                .logout(id, a1.session_id, Some(&b.refresh_token))
                .await
                .unwrap();
            for gone in [&a1, &a2] {
                assert_renews_nothing(&f, &gone.refresh_token).await;
            }
            f.sessions.renew(&b.refresh_token).await.unwrap();
            assert_eq!(f.heard.all(), [Notice::User(id), Notice::User(id)]);
        })
        .await;
    }
}
