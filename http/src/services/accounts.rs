//! Accounts: registration, the profile, closing, and the admin operations on users (lookup,
//! roles, bans, closing), with the contract's rules for emails, passwords and names.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};

use regex::Regex;

use mall_actors::order::{CancelReason, OrderError, OrderHandle};
use mall_db::models::{NewUser, UserRow};
use mall_db::repo::users::SetRoles;
use mall_db::{Db, DbError, IdGenerator, clock, repo};

use super::password::Hasher;
use super::roles::{ADMIN_ROLE, DEFAULT_ROLE};
use super::{Announce, Notice, Problems, ServiceError};

/// Most roles one user may hold.
pub const MAX_ROLES_PER_USER: usize = 64;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    // Deliberately loose (the real check is a confirmation mail): one @, no spaces, a dot in the domain.
    Regex::new(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]+$").unwrap_or_else(|e| panic!("email regex: {e}"))
});

/// What is wrong with an email, if anything.
pub fn email_problem(email: &str) -> Option<String> {
    (email.len() > 254 || !EMAIL.is_match(email))
        .then(|| "must be an email address (at most 254 bytes)".into())
}

/// What is wrong with a new password, if anything.
pub fn password_problem(password: &str) -> Option<String> {
    let n = password.chars().count();
    (!(8..=128).contains(&n)).then(|| "must be 8 to 128 characters".into())
}

/// What is wrong with a display name, if anything.
pub fn name_problem(name: &str) -> Option<String> {
    let n = name.chars().count();
    (!(1..=64).contains(&n) || name.trim().is_empty())
        .then(|| "must be 1 to 64 characters, not only spaces".into())
}

/// The form of an email that uniqueness and login compare.
pub fn normalised_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// An account and the roles it holds now.
#[derive(Debug, Clone)]
pub struct Account {
    /// The stored user.
    pub user: UserRow,
    /// Its roles.
    pub roles: Vec<String>,
}

/// A change to one's own profile (a `null` was already refused at the edge).
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    /// A new display name.
    pub name: Option<String>,
    /// A new password (needs `current_password`).
    pub password: Option<String>,
    /// The password now.
    pub current_password: Option<String>,
}

/// Ends the pending orders of a closed account (the order actors, in the running mall).
pub trait PendingOrders: Send + Sync {
    /// Cancels every pending order of `user_id`; how many were cancelled.
    fn cancel_all_of(
        &self,
        user_id: i64,
    ) -> Pin<Box<dyn Future<Output = Result<usize, OrderError>> + Send + '_>>;
}

impl PendingOrders for OrderHandle {
    fn cancel_all_of(
        &self,
        user_id: i64,
    ) -> Pin<Box<dyn Future<Output = Result<usize, OrderError>> + Send + '_>> {
        Box::pin(OrderHandle::cancel_all_of(
            self,
            user_id,
            CancelReason::AccountClosed,
        ))
    }
}

/// The account service.
#[derive(Clone)]
pub struct Accounts {
    db: Db,
    ids: Arc<IdGenerator>,
    hasher: Hasher,
    orders: Arc<dyn PendingOrders>,
    notices: Arc<dyn Announce>,
}

impl Accounts {
    /// The service over `db`, cancelling closed accounts' orders through `orders` and telling
    /// `notices` of every change to an account.
    pub fn new(
        db: Db,
        ids: Arc<IdGenerator>,
        hasher: Hasher,
        orders: Arc<dyn PendingOrders>,
        notices: Arc<dyn Announce>,
    ) -> Self {
        Accounts {
            db,
            ids,
            hasher,
            orders,
            notices,
        }
    }

    /// A new customer account.
    pub async fn register(
        &self,
        email: String,
        password: String,
        name: String,
    ) -> Result<Account, ServiceError> {
        let mut problems = Problems::default();
        problems.note("email", email_problem(&email));
        problems.note("password", password_problem(&password));
        problems.note("name", name_problem(&name));
        problems.finish()?;
        let hash = self.hasher.hash(password).await?;
        let now = clock::now();
        let user = NewUser {
            id: self.ids.next_id(),
            email_norm: email.to_lowercase(),
            email,
            name,
            password_hash: hash,
            password_changed_at: now,
            created_at: now,
            updated_at: now,
        };
        let mut conn = self.db.write().await?;
        match repo::users::insert(&mut conn, user, &[DEFAULT_ROLE.to_owned()]).await {
            Ok(user) => {
                let roles = repo::users::roles_of(&mut conn, user.id).await?;
                tracing::info!(user_id = user.id, "user registered");
                Ok(Account { user, roles })
            }
            Err(DbError::UniqueViolation(_)) => Err(ServiceError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// An open account (a closed one is not found).
    pub async fn open(&self, user_id: i64) -> Result<Account, ServiceError> {
        let user = self.open_user(user_id).await?;
        let roles = self.roles_of(user_id).await?;
        Ok(Account { user, roles })
    }

    async fn open_user(&self, id: i64) -> Result<UserRow, ServiceError> {
        let mut conn = self.db.read().await?;
        repo::users::find(&mut conn, id)
            .await?
            .filter(|u| u.closed_at.is_none())
            .ok_or(ServiceError::NotFound("user"))
    }

    async fn roles_of(&self, user_id: i64) -> Result<Vec<String>, ServiceError> {
        let mut conn = self.db.read().await?;
        Ok(repo::users::roles_of(&mut conn, user_id).await?)
    }

    /// A new name and/or password for one's own account. A new password needs the current one
    /// and ends every other login (`session_id` is the caller's, which stays).
    pub async fn update_profile(
        &self,
        user_id: i64,
        session_id: i64,
        change: ProfileChange,
    ) -> Result<Account, ServiceError> {
        let ProfileChange {
            name,
            password,
            current_password,
        } = change;
        let mut problems = Problems::default();
        problems.note("name", name.as_deref().and_then(name_problem));
        problems.note("password", password.as_deref().and_then(password_problem));
        problems.note(
            "current_password",
            (password.is_some() && current_password.is_none())
                .then(|| "is required to change the password".into()),
        );
        problems.finish()?;
        let row = self.open_user(user_id).await?;
        let new_hash = match (password, current_password) {
            (Some(new), Some(current)) => {
                if !self
                    .hasher
                    .verify(current, row.password_hash.clone())
                    .await?
                {
                    return Err(ServiceError::InvalidCredentials);
                }
                Some(self.hasher.hash(new).await?)
            }
            _ => None,
        };
        if name.is_none() && new_hash.is_none() {
            let roles = self.roles_of(user_id).await?;
            return Ok(Account { user: row, roles });
        }
        let now = clock::now();
        let mut conn = self.db.write().await?;
        let updated = repo::users::update_profile(
            &mut conn,
            user_id,
            name.as_deref(),
            new_hash.as_deref(),
            now,
        )
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
        if new_hash.is_some() {
            let ended = repo::sessions::revoke_all(
                &mut conn,
                user_id,
                Some(session_id),
                "password_changed",
                now,
            )
            .await?;
            tracing::info!(user_id, ended, "password changed; other logins ended");
            self.notices.announce(Notice::User(user_id)).await;
        }
        let roles = repo::users::roles_of(&mut conn, user_id).await?;
        Ok(Account {
            user: updated,
            roles,
        })
    }

    /// Closes one's own account after checking the password.
    pub async fn close_own(&self, user_id: i64, password: String) -> Result<(), ServiceError> {
        let row = self.open_user(user_id).await?;
        if !self.hasher.verify(password, row.password_hash).await? {
            return Err(ServiceError::InvalidCredentials);
        }
        self.close(user_id).await
    }

    /// An admin closes someone else's account.
    pub async fn close_by_admin(&self, admin_id: i64, user_id: i64) -> Result<(), ServiceError> {
        if user_id == admin_id {
            return Err(ServiceError::InvalidState(
                "close your own account through /users/me".into(),
            ));
        }
        self.close(user_id).await
    }

    /// Closes an account: its logins end at once, its email is free again, and its pending
    /// orders are cancelled (their stock returned).
    async fn close(&self, user_id: i64) -> Result<(), ServiceError> {
        let closed = {
            let mut conn = self.db.write().await?;
            repo::users::close(&mut conn, user_id, clock::now()).await?
        };
        self.notices.announce(Notice::User(user_id)).await;
        if !closed {
            return Err(ServiceError::NotFound("user"));
        }
        let cancelled = self.orders.cancel_all_of(user_id).await?;
        if cancelled > 0 {
            tracing::info!(
                user_id,
                cancelled,
                "pending orders of a closed account cancelled"
            );
        }
        tracing::info!(user_id, "account closed");
        Ok(())
    }

    /// A page of accounts (closed ones too) whose email contains `email`.
    pub async fn list(
        &self,
        email: Option<&str>,
        page: u32,
        page_size: u32,
    ) -> Result<repo::Page<(UserRow, Vec<String>)>, ServiceError> {
        let mut conn = self.db.read().await?;
        let email = email.filter(|e| !e.is_empty());
        Ok(repo::users::list(&mut conn, email, page, page_size).await?)
    }

    /// Any account, closed or not.
    pub async fn get(&self, user_id: i64) -> Result<Account, ServiceError> {
        let mut conn = self.db.read().await?;
        let user = repo::users::find(&mut conn, user_id)
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        let roles = repo::users::roles_of(&mut conn, user_id).await?;
        Ok(Account { user, roles })
    }

    /// Replaces a user's roles; in force on the user's next request.
    pub async fn set_roles(&self, user_id: i64, roles: &[String]) -> Result<Account, ServiceError> {
        if roles.len() > MAX_ROLES_PER_USER {
            return Err(ServiceError::invalid_field(
                "roles",
                format!("at most {MAX_ROLES_PER_USER} roles"),
            ));
        }
        let outcome = {
            let mut conn = self.db.write().await?;
            repo::users::set_roles(&mut conn, user_id, roles, clock::now()).await?
        };
        self.notices.announce(Notice::User(user_id)).await;
        match outcome {
            SetRoles::Done => self.get(user_id).await,
            SetRoles::NoSuchUser => Err(ServiceError::NotFound("user")),
            SetRoles::UnknownRoles(unknown) => Err(ServiceError::invalid_field(
                "roles",
                format!("unknown roles: {}", unknown.join(", ")),
            )),
        }
    }

    /// Bans a user (`reason = Some`) or lifts the ban (`None`); their tokens stop working at once.
    pub async fn set_ban(
        &self,
        admin_id: i64,
        user_id: i64,
        reason: Option<String>,
    ) -> Result<(), ServiceError> {
        if let Some(r) = &reason {
            let n = r.chars().count();
            if !(1..=500).contains(&n) || r.trim().is_empty() {
                return Err(ServiceError::invalid_field(
                    "reason",
                    "must be 1 to 500 characters",
                ));
            }
            if user_id == admin_id {
                return Err(ServiceError::InvalidState(
                    "an admin cannot ban their own account".into(),
                ));
            }
        }
        let done = {
            let mut conn = self.db.write().await?;
            repo::users::set_ban(&mut conn, user_id, reason.as_deref(), clock::now()).await?
        };
        self.notices.announce(Notice::User(user_id)).await;
        if !done {
            return Err(ServiceError::NotFound("user"));
        }
        tracing::info!(user_id, admin_id, banned = reason.is_some(), "ban changed");
        Ok(())
    }

    /// Makes sure an open account with this email exists and holds the admin role (the
    /// configured bootstrap admin); `field` prefixes the names of bad values in the error.
    pub async fn ensure_admin(
        &self,
        email: &str,
        password: &str,
        name: &str,
        field: &str,
    ) -> Result<(), ServiceError> {
        let mut problems = Problems::default();
        problems.note(format!("{field}.admin_email"), email_problem(email));
        problems.note(
            format!("{field}.admin_password"),
            password_problem(password),
        );
        problems.note(format!("{field}.admin_name"), name_problem(name));
        problems.finish()?;
        // Twice at most: another node may create the account between our look and our insert.
        for _ in 0..2 {
            let existing = {
                let mut conn = self.db.read().await?;
                repo::users::find_open_by_email(&mut conn, &email.to_lowercase()).await?
            };
            let id = match existing {
                Some(u) => u.id,
                None => match self
                    .register(email.to_owned(), password.to_owned(), name.to_owned())
                    .await
                {
                    Ok(account) => account.user.id,
                    Err(ServiceError::EmailTaken) => continue,
                    Err(e) => return Err(e),
                },
            };
            let mut roles = self.roles_of(id).await?;
            if !roles.iter().any(|r| r == ADMIN_ROLE) {
                roles.push(ADMIN_ROLE.to_owned());
                let mut conn = self.db.write().await?;
                repo::users::set_roles(&mut conn, id, &roles, clock::now()).await?;
                tracing::info!(user_id = id, "bootstrap admin granted the admin role");
            }
            return Ok(());
        }
        Err(ServiceError::Internal(
            "the bootstrap admin's email is taken by an account that keeps changing".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use mall_db::testing::TestDatabase;

    use super::*;
    use crate::services::testing::{Heard, Orders, fields, on_both, pool, user};

    #[test]
    fn field_rules_follow_the_contract() {
        assert!(email_problem("a@b.co").is_none());
        assert!(email_problem("A.Person+tag@Example.COM").is_none());
        for bad in [
            "",
            "no-at",
            "a@b",
            "a b@c.d",
            "a@@b.c",
            "a@b.",
            &format!("{}@b.co", "x".repeat(65)),
        ] {
            assert!(email_problem(bad).is_some(), "{bad:?}");
        }
        assert!(password_problem(&"x".repeat(7)).is_some());
        assert!(password_problem(&"x".repeat(8)).is_none());
        assert!(password_problem(&"é".repeat(128)).is_none());
        assert!(password_problem(&"x".repeat(129)).is_some());
        assert!(name_problem("").is_some());
        assert!(name_problem("   ").is_some());
        assert!(name_problem(&"n".repeat(64)).is_none());
        assert!(name_problem(&"n".repeat(65)).is_some());
    }

    struct Fixture {
        _db: TestDatabase,
        accounts: Accounts,
        heard: Arc<Heard>,
        orders: Arc<Orders>,
    }

    async fn fixture(db: TestDatabase) -> Fixture {
        let heard = Arc::new(Heard::default());
        let orders = Arc::new(Orders::default());
        let accounts = Accounts::new(
            pool(&db).await,
            Arc::new(IdGenerator::new(1)),
            Hasher,
            orders.clone(),
            heard.clone(),
        );
        Fixture {
            _db: db,
            accounts,
            heard,
            orders,
        }
    }

    #[tokio::test]
    async fn registration_checks_every_field_and_keeps_emails_unique_in_any_case() {
        on_both(fixture, async |f: Fixture| {
            let err = f
                .accounts
                .register("nope".into(), "short".into(), " ".into())
                .await
                .unwrap_err();
            assert_eq!(fields(err), ["email", "password", "name"]);
            let ada = f
                .accounts
                .register(
                    "Ada@Example.com".into(),
                    "correct horse".into(),
                    "Ada".into(),
                )
                .await
                .unwrap();
            assert_eq!(ada.roles, [DEFAULT_ROLE]);
            assert!(ada.user.password_hash.starts_with("$argon2id$"));
            let again = f
                .accounts
                .register("ada@EXAMPLE.com".into(), "another one".into(), "A".into())
                .await;
            assert!(matches!(again, Err(ServiceError::EmailTaken)), "{again:?}");
        })
        .await;
    }

    #[tokio::test]
    async fn a_new_password_needs_the_current_one_and_ends_other_logins() {
        on_both(fixture, async |f: Fixture| {
            let id = user(&f.accounts, "ada").await;
            let change = |current: Option<&str>| ProfileChange {
                name: None,
                password: Some("battery staple".into()),
                current_password: current.map(str::to_owned),
            };
            let err = f.accounts.update_profile(id, 1, change(None)).await;
            assert_eq!(fields(err.unwrap_err()), ["current_password"]);
            let wrong = f
                .accounts
                .update_profile(id, 1, change(Some("guess")))
                .await;
            assert!(matches!(wrong, Err(ServiceError::InvalidCredentials)));
            assert!(f.heard.all().is_empty(), "nothing changed yet");
            let renamed = ProfileChange {
                name: Some("Ada L.".into()),
                ..ProfileChange::default()
            };
            let after = f.accounts.update_profile(id, 1, renamed).await.unwrap();
            assert_eq!(after.user.name, "Ada L.");
            assert!(f.heard.all().is_empty(), "a new name ends no login");
            f.accounts
                .update_profile(id, 1, change(Some("correct horse")))
                .await
                .unwrap();
            assert_eq!(f.heard.all(), [Notice::User(id)]);
            // The old password no longer closes the account; the new one does.
            let old = f.accounts.close_own(id, "correct horse".into()).await;
            assert!(matches!(old, Err(ServiceError::InvalidCredentials)));
            f.accounts
                .close_own(id, "battery staple".into())
                .await
                .unwrap();
            assert_eq!(f.orders.cancelled(), 1, "orders cancelled");
            let gone = f.accounts.open(id).await;
            assert!(matches!(gone, Err(ServiceError::NotFound("user"))));
            // The email is free again.
            user(&f.accounts, "ada").await;
        })
        .await;
    }

    #[tokio::test]
    async fn admins_set_roles_and_bans_but_not_on_themselves() {
        on_both(fixture, async |f: Fixture| {
            let admin = user(&f.accounts, "root").await;
            let bob = user(&f.accounts, "bob").await;
            let merchant = ["customer".to_owned(), "merchant".to_owned()];
            let set = f.accounts.set_roles(bob, &merchant).await.unwrap();
            assert_eq!(set.roles, merchant);
            let unknown = f.accounts.set_roles(bob, &["wizard".to_owned()]).await;
            assert_eq!(fields(unknown.unwrap_err()), ["roles"]);
            let missing = f.accounts.set_roles(bob + 1000, &merchant).await;
            assert!(matches!(missing, Err(ServiceError::NotFound("user"))));

            let own = f.accounts.set_ban(admin, admin, Some("x".into())).await;
            assert!(matches!(own, Err(ServiceError::InvalidState(_))));
            let blank = f.accounts.set_ban(admin, bob, Some(" ".into())).await;
            assert_eq!(fields(blank.unwrap_err()), ["reason"]);
            f.accounts
                .set_ban(admin, bob, Some("spam".into()))
                .await
                .unwrap();
            assert!(f.accounts.get(bob).await.unwrap().user.banned_at.is_some());
            f.accounts.set_ban(admin, bob, None).await.unwrap();
            assert!(f.accounts.get(bob).await.unwrap().user.banned_at.is_none());

            let own = f.accounts.close_by_admin(admin, admin).await;
            assert!(matches!(own, Err(ServiceError::InvalidState(_))));
            f.accounts.close_by_admin(admin, bob).await.unwrap();
            // An admin still sees a closed account.
            assert!(f.accounts.get(bob).await.unwrap().user.closed_at.is_some());
            let listed = f.accounts.list(Some("BOB@"), 1, 20).await.unwrap();
            assert_eq!(listed.total, 1);
        })
        .await;
    }

    #[tokio::test]
    async fn the_bootstrap_admin_is_made_once_and_granted_the_role() {
        on_both(fixture, async |f: Fixture| {
            let bad = f
                .accounts
                .ensure_admin("x", "short", "A", "bootstrap")
                .await;
            assert_eq!(
                fields(bad.unwrap_err()),
                ["bootstrap.admin_email", "bootstrap.admin_password"]
            );
            for _ in 0..2 {
                f.accounts
                    .ensure_admin("root@example.com", "correct horse", "Root", "bootstrap")
                    .await
                    .unwrap();
            }
            let listed = f.accounts.list(Some("root@"), 1, 20).await.unwrap();
            assert_eq!(listed.total, 1);
            let (_, roles) = &listed.items[0];
            assert!(roles.iter().any(|r| r == ADMIN_ROLE), "{roles:?}");
        })
        .await;
    }
}
