//! The identity service: registration, login, token renewal and revocation, profile changes,
//! account closing, and the admin operations on users and roles.

use std::sync::LazyLock;

use regex::Regex;
use time::Duration as TimeDelta;

use mall_db::models::{NewUser, RefreshTokenRow, SessionRow, UserRow};
use mall_db::repo::roles::NewPermission;
use mall_db::repo::sessions::Rotation;
use mall_db::repo::users::SetRoles;
use mall_db::{DbError, clock, repo};

use super::AuthUser;
use super::password::{
    dummy_hash, hash_password, hash_refresh_token, new_refresh_token, verify_password,
};
use super::policy::{Effect, Rule, validate_rule};
use crate::dto::identity::*;
use crate::dto::{Paged, rfc3339};
use crate::error::{ApiError, ErrorCode};
use crate::notices::{Notice, announce};
use crate::state::AppState;

/// The role every new account gets.
pub const DEFAULT_ROLE: &str = "customer";
/// The role that may do everything; it cannot be changed or deleted through the API.
pub const ADMIN_ROLE: &str = "admin";
/// The roles seeded at first start. None can be deleted: every new account gets `customer`,
/// merchants' products name `merchant` in the policy, and `admin` can do everything. The
/// permissions of `customer` and `merchant` can be replaced.
pub const BUILT_IN_ROLES: [&str; 3] = [ADMIN_ROLE, DEFAULT_ROLE, "merchant"];
/// Most permissions one role may hold.
pub const MAX_PERMISSIONS: usize = 100;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    // Deliberately loose (the real check is a confirmation mail): one @, no spaces, a dot in the domain.
    Regex::new(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]+$").unwrap_or_else(|e| panic!("email regex: {e}"))
});
static ROLE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9_-]{1,64}$").unwrap_or_else(|e| panic!("role regex: {e}"))
});

fn email_problem(email: &str) -> Option<String> {
    (email.len() > 254 || !EMAIL.is_match(email))
        .then(|| "must be an email address (at most 254 bytes)".into())
}

fn password_problem(password: &str) -> Option<String> {
    let n = password.chars().count();
    (!(8..=128).contains(&n)).then(|| "must be 8 to 128 characters".into())
}

fn name_problem(name: &str) -> Option<String> {
    let n = name.chars().count();
    (!(1..=64).contains(&n) || name.trim().is_empty())
        .then(|| "must be 1 to 64 characters, not only spaces".into())
}

/// Collects `(field, problem)` pairs and fails with all of them at once.
fn check(problems: Vec<(&str, Option<String>)>) -> Result<(), ApiError> {
    let found: Vec<(&str, String)> = problems
        .into_iter()
        .filter_map(|(f, p)| p.map(|p| (f, p)))
        .collect();
    if found.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(found))
    }
}

/// Parses an id from a path; anything that is not one of ours is simply not found.
/// Only the canonical form counts: `"007"` or `"+7"` name nothing.
pub fn parse_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0 && id.to_string() == raw)
        .ok_or_else(|| ApiError::not_found(what))
}

async fn hash_blocking(password: String) -> Result<String, ApiError> {
    // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))
}

async fn verify_blocking(password: String, phc: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))
}

async fn roles_of(st: &AppState, user_id: i64) -> Result<Vec<String>, ApiError> {
    let mut conn = st.db.read().await?;
    Ok(repo::users::roles_of(&mut conn, user_id).await?)
}

async fn open_user(st: &AppState, id: i64) -> Result<UserRow, ApiError> {
    let mut conn = st.db.read().await?;
    repo::users::find(&mut conn, id)
        .await?
        .filter(|u| u.closed_at.is_none())
        .ok_or_else(|| ApiError::not_found("user"))
}

/// `POST /users`: a new customer account.
pub async fn register(st: &AppState, req: RegisterRequest) -> Result<UserView, ApiError> {
    check(vec![
        ("email", email_problem(&req.email)),
        ("password", password_problem(&req.password)),
        ("name", name_problem(&req.name)),
    ])?;
    let hash = hash_blocking(req.password).await?;
    let now = clock::now();
    let user = NewUser {
        id: st.ids.next_id(),
        email_norm: req.email.to_lowercase(),
        email: req.email,
        name: req.name,
        password_hash: hash,
        password_changed_at: now,
        created_at: now,
        updated_at: now,
    };
    let mut conn = st.db.write().await?;
    match repo::users::insert(&mut conn, user, &[DEFAULT_ROLE.to_owned()]).await {
        Ok(row) => {
            let roles = repo::users::roles_of(&mut conn, row.id).await?;
            tracing::info!(user_id = row.id, "user registered");
            Ok(UserView::of(&row, roles))
        }
        Err(DbError::UniqueViolation(_)) => Err(ApiError::new(
            ErrorCode::EmailTaken,
            "that email is already registered",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Starts a login for `user_id`: a session, its first refresh token, and an access token.
async fn start_session(st: &AppState, user_id: i64) -> Result<TokenPair, ApiError> {
    let now = clock::now();
    let session_id = st.ids.next_id();
    let refresh = new_refresh_token();
    let ttl = st.config.auth.refresh_ttl_secs;
    let session = SessionRow {
        id: session_id,
        user_id,
        created_at: now,
        revoked_at: None,
        revoke_reason: None,
    };
    let first = refresh_row(&refresh, session_id, now, ttl);
    let mut conn = st.db.write().await?;
    repo::sessions::create(&mut conn, session, first).await?;
    drop(conn);
    token_pair(st, user_id, session_id, refresh)
}

fn refresh_row(
    token: &str,
    session_id: i64,
    now: time::PrimitiveDateTime,
    ttl_secs: u64,
) -> RefreshTokenRow {
    RefreshTokenRow {
        token_hash: hash_refresh_token(token),
        session_id,
        issued_at: now,
        expires_at: now.saturating_add(TimeDelta::seconds(
            i64::try_from(ttl_secs).unwrap_or(i64::MAX),
        )),
        spent_at: None,
    }
}

fn token_pair(
    st: &AppState,
    user_id: i64,
    session_id: i64,
    refresh: String,
) -> Result<TokenPair, ApiError> {
    let access = st
        .tokens
        .issue(user_id, session_id, time::OffsetDateTime::now_utc())
        .map_err(|e| ApiError::internal(&e))?;
    Ok(TokenPair {
        access_token: access.token,
        refresh_token: refresh,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_expires_in: st.config.auth.refresh_ttl_secs,
    })
}

/// `POST /auth/login`. Unknown email and wrong password answer alike, in about the same time.
pub async fn login(st: &AppState, req: LoginRequest) -> Result<TokenPair, ApiError> {
    let email_norm = req.email.trim().to_lowercase();
    st.limits.login_allowed(&email_norm).await?;
    let found = {
        let mut conn = st.db.read().await?;
        repo::users::find_open_by_email(&mut conn, &email_norm).await?
    };
    let phc = found
        .as_ref()
        .map_or_else(|| dummy_hash().to_owned(), |u| u.password_hash.clone());
    let matches = verify_blocking(req.password, phc).await?;
    let Some(user) = found.filter(|_| matches) else {
        st.limits.login_failed(&email_norm).await;
        return Err(ApiError::invalid_credentials());
    };
    if user.banned_at.is_some() {
        return Err(ApiError::user_banned());
    }
    start_session(st, user.id).await
}

/// `POST /auth/refresh`: spends the refresh token and issues the next pair. A spent token
/// presented again ends its whole login.
pub async fn refresh(st: &AppState, req: RefreshRequest) -> Result<TokenPair, ApiError> {
    let now = clock::now();
    let next = new_refresh_token();
    let next_row = refresh_row(&next, 0, now, st.config.auth.refresh_ttl_secs);
    let outcome = {
        let mut conn = st.db.write().await?;
        repo::sessions::rotate(
            &mut conn,
            &hash_refresh_token(&req.refresh_token),
            next_row,
            now,
        )
        .await?
    };
    match outcome {
        Rotation::Rotated {
            session_id,
            user_id,
        } => {
            let state = {
                let mut conn = st.db.read().await?;
                repo::users::auth_state(&mut conn, user_id, session_id).await?
            };
            match state {
                Some(s) if s.banned => Err(ApiError::user_banned()),
                Some(s) if !s.closed && !s.session_revoked => {
                    token_pair(st, user_id, session_id, next)
                }
                _ => Err(ApiError::unauthenticated(
                    "the refresh token is invalid or expired",
                )),
            }
        }
        Rotation::Reused { user_id } => {
            announce(st, Notice::User(user_id)).await;
            tracing::warn!(user_id, "refresh token reused; login revoked");
            Err(ApiError::new(
                ErrorCode::RefreshTokenReused,
                "this refresh token was already used; the login has been ended",
            ))
        }
        Rotation::Invalid => Err(ApiError::unauthenticated(
            "the refresh token is invalid or expired",
        )),
    }
}

/// `POST /auth/logout`: ends the caller's login (and the one of `refresh_token`, if it is the caller's).
pub async fn logout(st: &AppState, user: &AuthUser, req: LogoutRequest) -> Result<(), ApiError> {
    let now = clock::now();
    let mut conn = st.db.write().await?;
    repo::sessions::revoke(&mut conn, user.id, user.session_id, "logout", now).await?;
    let named = match req.refresh_token {
        Some(token) => {
            repo::sessions::session_of_token(&mut conn, &hash_refresh_token(&token)).await?
        }
        None => None,
    };
    if let Some(session) = named {
        // `revoke` only touches the caller's own sessions.
        repo::sessions::revoke(&mut conn, user.id, session.id, "logout", now).await?;
    }
    announce(st, Notice::User(user.id)).await;
    Ok(())
}

/// `GET /auth/verify`
pub fn verify(user: &AuthUser) -> VerifyResponse {
    VerifyResponse {
        user_id: user.id.to_string(),
        roles: user.roles.clone(),
        expires_at: rfc3339(user.expires_at),
    }
}

/// `GET /users/me`
pub async fn me(st: &AppState, user: &AuthUser) -> Result<UserView, ApiError> {
    let row = open_user(st, user.id).await?;
    Ok(UserView::of(&row, roles_of(st, user.id).await?))
}

/// `PATCH /users/me`: a new name and/or password. A new password needs the current one and
/// ends every other login of the account.
pub async fn update_me(
    st: &AppState,
    user: &AuthUser,
    req: UpdateMeRequest,
) -> Result<UserView, ApiError> {
    let null = |field: &Option<Option<String>>| {
        matches!(field, Some(None)).then(|| "must not be null".to_owned())
    };
    check(vec![
        ("name", null(&req.name)),
        ("password", null(&req.password)),
    ])?;
    let (name, password) = (req.name.flatten(), req.password.flatten());
    check(vec![
        ("name", name.as_deref().and_then(name_problem)),
        ("password", password.as_deref().and_then(password_problem)),
        (
            "current_password",
            (password.is_some() && req.current_password.is_none())
                .then(|| "is required to change the password".into()),
        ),
    ])?;
    let row = open_user(st, user.id).await?;
    let new_hash = match (password, req.current_password) {
        (Some(new), Some(current)) => {
            if !verify_blocking(current, row.password_hash.clone()).await? {
                return Err(ApiError::invalid_credentials());
            }
            Some(hash_blocking(new).await?)
        }
        _ => None,
    };
    if name.is_none() && new_hash.is_none() {
        return Ok(UserView::of(&row, roles_of(st, user.id).await?));
    }
    let now = clock::now();
    let mut conn = st.db.write().await?;
    let updated = repo::users::update_profile(
        &mut conn,
        user.id,
        name.as_deref(),
        new_hash.as_deref(),
        now,
    )
    .await?
    .ok_or_else(|| ApiError::not_found("user"))?;
    if new_hash.is_some() {
        let ended = repo::sessions::revoke_all(
            &mut conn,
            user.id,
            Some(user.session_id),
            "password_changed",
            now,
        )
        .await?;
        tracing::info!(
            user_id = user.id,
            ended,
            "password changed; other logins ended"
        );
        announce(st, Notice::User(user.id)).await;
    }
    let roles = repo::users::roles_of(&mut conn, user.id).await?;
    Ok(UserView::of(&updated, roles))
}

/// `DELETE /users/me`: closes the caller's account after checking the password.
pub async fn close_me(
    st: &AppState,
    user: &AuthUser,
    req: CloseAccountRequest,
) -> Result<(), ApiError> {
    let row = open_user(st, user.id).await?;
    if !verify_blocking(req.password, row.password_hash).await? {
        return Err(ApiError::invalid_credentials());
    }
    close_account(st, user.id).await
}

/// Closes an account: its logins end at once and its email is free again.
async fn close_account(st: &AppState, user_id: i64) -> Result<(), ApiError> {
    let closed = {
        let mut conn = st.db.write().await?;
        repo::users::close(&mut conn, user_id, clock::now()).await?
    };
    announce(st, Notice::User(user_id)).await;
    if !closed {
        return Err(ApiError::not_found("user"));
    }
    // Its pending orders are cancelled and their stock returned.
    let cancelled = st
        .orders
        .cancel_all_of(user_id, mall_actors::order::CancelReason::AccountClosed)
        .await?;
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

/// `GET /admin/users`
pub async fn list_users(
    st: &AppState,
    email: Option<&str>,
    page: u32,
    page_size: u32,
) -> Result<Paged<AdminUserView>, ApiError> {
    let mut conn = st.db.read().await?;
    let found =
        repo::users::list(&mut conn, email.filter(|e| !e.is_empty()), page, page_size).await?;
    Ok(Paged::of(found, page, page_size, |(u, roles)| {
        AdminUserView::of(&u, roles)
    }))
}

/// `GET /admin/users/{id}`
pub async fn get_user(st: &AppState, id: i64) -> Result<AdminUserView, ApiError> {
    let mut conn = st.db.read().await?;
    let row = repo::users::find(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let roles = repo::users::roles_of(&mut conn, id).await?;
    Ok(AdminUserView::of(&row, roles))
}

/// `PUT /admin/users/{id}/roles`: replaces the user's roles; in force on the user's next request.
pub async fn set_user_roles(
    st: &AppState,
    id: i64,
    req: SetRolesRequest,
) -> Result<AdminUserView, ApiError> {
    if req.roles.len() > 64 {
        return Err(ApiError::invalid_field("roles", "at most 64 roles"));
    }
    let mut conn = st.db.write().await?;
    let outcome = repo::users::set_roles(&mut conn, id, &req.roles, clock::now()).await?;
    drop(conn);
    announce(st, Notice::User(id)).await;
    match outcome {
        SetRoles::Done => get_user(st, id).await,
        SetRoles::NoSuchUser => Err(ApiError::not_found("user")),
        SetRoles::UnknownRoles(unknown) => Err(ApiError::invalid_field(
            "roles",
            format!("unknown roles: {}", unknown.join(", ")),
        )),
    }
}

/// `POST /admin/users/{id}/ban` (`reason = Some`) and `DELETE` (lift, `reason = None`).
pub async fn set_ban(
    st: &AppState,
    admin: &AuthUser,
    id: i64,
    reason: Option<String>,
) -> Result<(), ApiError> {
    if let Some(r) = &reason {
        let n = r.chars().count();
        if !(1..=500).contains(&n) || r.trim().is_empty() {
            return Err(ApiError::invalid_field(
                "reason",
                "must be 1 to 500 characters",
            ));
        }
        if id == admin.id {
            return Err(ApiError::new(
                ErrorCode::InvalidState,
                "an admin cannot ban their own account",
            ));
        }
    }
    let mut conn = st.db.write().await?;
    let done = repo::users::set_ban(&mut conn, id, reason.as_deref(), clock::now()).await?;
    announce(st, Notice::User(id)).await;
    if !done {
        return Err(ApiError::not_found("user"));
    }
    tracing::info!(
        user_id = id,
        admin_id = admin.id,
        banned = reason.is_some(),
        "ban changed"
    );
    Ok(())
}

/// `DELETE /admin/users/{id}`
pub async fn admin_close(st: &AppState, admin: &AuthUser, id: i64) -> Result<(), ApiError> {
    if id == admin.id {
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            "close your own account through /users/me",
        ));
    }
    close_account(st, id).await
}

/// `GET /admin/roles`
pub async fn list_roles(
    st: &AppState,
    page: u32,
    page_size: u32,
) -> Result<Paged<RoleView>, ApiError> {
    let mut conn = st.db.read().await?;
    let all = repo::roles::list_all(&mut conn).await?;
    let total = all.len() as i64;
    let skip = (page as usize - 1).saturating_mul(page_size as usize);
    let items = all
        .iter()
        .skip(skip)
        .take(page_size as usize)
        .map(RoleView::of)
        .collect();
    Ok(Paged {
        items,
        page,
        page_size,
        total,
    })
}

fn check_role_name(name: &str) -> Result<(), ApiError> {
    if !ROLE_NAME.is_match(name) {
        return Err(ApiError::invalid_field(
            "name",
            "must match [a-z0-9_-]{1,64}",
        ));
    }
    if name == ADMIN_ROLE {
        return Err(ApiError::forbidden(
            "the admin role is built in and cannot be changed",
        ));
    }
    Ok(())
}

/// `PUT /admin/roles/{name}`: creates or replaces a role; in force on every node within a second.
pub async fn put_role(
    st: &AppState,
    name: &str,
    req: PutRoleRequest,
) -> Result<RoleView, ApiError> {
    check_role_name(name)?;
    if req.permissions.len() > MAX_PERMISSIONS {
        return Err(ApiError::invalid_field(
            "permissions",
            format!("at most {MAX_PERMISSIONS} permissions"),
        ));
    }
    let mut problems = Vec::new();
    let mut perms = Vec::with_capacity(req.permissions.len());
    for (i, p) in req.permissions.iter().enumerate() {
        let Some(effect) = Effect::parse(&p.effect) else {
            problems.push((
                format!("permissions[{i}].effect"),
                "must be allow or deny".to_owned(),
            ));
            continue;
        };
        let method = p.method.to_ascii_uppercase();
        let rule = Rule {
            method: method.clone(),
            path: p.path.clone(),
            effect,
        };
        if let Err(e) = validate_rule(&rule) {
            problems.push((format!("permissions[{i}]"), e.to_string()));
            continue;
        }
        perms.push(NewPermission {
            method,
            path: p.path.clone(),
            effect: effect.as_str().to_owned(),
        });
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(
            problems.iter().map(|(f, p)| (f.as_str(), p.clone())),
        ));
    }
    let mut conn = st.db.write().await?;
    repo::roles::put(&mut conn, name, &perms, clock::now()).await?;
    let stored = repo::roles::find(&mut conn, name)
        .await?
        .ok_or_else(|| ApiError::not_found("role"))?;
    drop(conn);
    st.policy.reload().await?;
    announce(st, Notice::Policy).await;
    tracing::info!(role = name, permissions = perms.len(), "role written");
    Ok(RoleView::of(&stored))
}

/// `DELETE /admin/roles/{name}`
pub async fn delete_role(st: &AppState, name: &str) -> Result<(), ApiError> {
    if BUILT_IN_ROLES.contains(&name) {
        return Err(ApiError::forbidden(format!(
            "the {name} role is built in and cannot be deleted"
        )));
    }
    let mut conn = st.db.write().await?;
    let gone = repo::roles::delete(&mut conn, name).await?;
    drop(conn);
    if !gone {
        return Err(ApiError::not_found("role"));
    }
    announce(st, Notice::AllUsers).await;
    st.policy.reload().await?;
    announce(st, Notice::Policy).await;
    tracing::info!(role = name, "role deleted");
    Ok(())
}

/// Makes sure the configured bootstrap admin exists and holds the admin role.
pub async fn ensure_bootstrap_admin(st: &AppState) -> Result<(), ApiError> {
    let cfg = &st.config.bootstrap;
    if cfg.admin_email.is_empty() || cfg.admin_password.is_empty() {
        return Ok(());
    }
    check(vec![
        ("bootstrap.admin_email", email_problem(&cfg.admin_email)),
        (
            "bootstrap.admin_password",
            password_problem(&cfg.admin_password),
        ),
        ("bootstrap.admin_name", name_problem(&cfg.admin_name)),
    ])?;
    let existing = {
        let mut conn = st.db.read().await?;
        repo::users::find_open_by_email(&mut conn, &cfg.admin_email.to_lowercase()).await?
    };
    let id = match existing {
        Some(u) => u.id,
        None => {
            let req = RegisterRequest {
                email: cfg.admin_email.clone(),
                password: cfg.admin_password.clone(),
                name: cfg.admin_name.clone(),
            };
            match register(st, req).await {
                Ok(view) => view.id.parse().map_err(|e| ApiError::internal(&e))?,
                // Another node created it at the same moment.
                Err(e) if e.code == "email_taken" => {
                    return Box::pin(ensure_bootstrap_admin(st)).await;
                }
                Err(e) => return Err(e),
            }
        }
    };
    let mut roles = roles_of(st, id).await?;
    if !roles.iter().any(|r| r == ADMIN_ROLE) {
        roles.push(ADMIN_ROLE.to_owned());
        let mut conn = st.db.write().await?;
        repo::users::set_roles(&mut conn, id, &roles, clock::now()).await?;
        tracing::info!(user_id = id, "bootstrap admin granted the admin role");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn role_names_are_checked_and_admin_is_protected() {
        assert!(check_role_name("auditor").is_ok());
        assert_eq!(
            check_role_name("Auditor").unwrap_err().code,
            "invalid_request"
        );
        assert_eq!(check_role_name("a/b").unwrap_err().code, "invalid_request");
        assert_eq!(check_role_name("admin").unwrap_err().code, "forbidden");
    }

    #[test]
    fn ids_that_are_not_ours_are_not_found() {
        assert_eq!(parse_id("123", "user").unwrap(), 123);
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
            assert_eq!(parse_id(bad, "user").unwrap_err().code, "not_found");
        }
    }
}
