//! Who the caller is: a bearer token checked against its signature, its login and the account.

use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;

use mall_db::repo::users::AuthState;
use mall_db::{Db, repo};

use super::cache::AuthCache;
use super::jwt::TokenService;
use crate::error::ApiError;
use crate::services::Principal;
use crate::services::roles::ADMIN_ROLE;

/// The authenticated caller, put in the request's extensions by the access middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// The user's id.
    pub id: i64,
    /// The login the token belongs to.
    pub session_id: i64,
    /// The user's roles now (not when the token was issued).
    pub roles: Vec<String>,
    /// When the access token expires.
    pub expires_at: OffsetDateTime,
}

impl AuthUser {
    /// True when the user holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The caller as the services see it.
    pub fn principal(&self) -> Principal {
        Principal {
            user_id: self.id,
            admin: self.has_role(ADMIN_ROLE),
        }
    }
}

/// Checks bearer tokens.
pub struct Authenticator {
    tokens: Arc<TokenService>,
    db: Db,
    cache: Arc<AuthCache>,
}

impl Authenticator {
    /// An authenticator over `db`, caching account state for `cache.ttl()` (the cache is shared
    /// with whoever forgets what changed: see `crate::notices`).
    pub fn new(tokens: Arc<TokenService>, db: Db, cache: Arc<AuthCache>) -> Self {
        Authenticator { tokens, db, cache }
    }

    /// The caller behind `token`: 401 for a bad, expired, revoked or closed-account token,
    /// 403 `user_banned` for a banned account, 503 when the database cannot say.
    pub async fn authenticate(&self, token: &str) -> Result<AuthUser, ApiError> {
        let claims = self
            .tokens
            .verify(token)
            .map_err(|_| ApiError::unauthenticated("the access token is invalid or expired"))?;
        let (Some(user_id), Some(session_id)) = (claims.user_id(), claims.session_id()) else {
            return Err(ApiError::unauthenticated("the access token is invalid"));
        };
        let state = self.state(user_id, session_id).await?;
        let Some(state) = state else {
            return Err(ApiError::unauthenticated("the account no longer exists"));
        };
        if state.closed {
            return Err(ApiError::unauthenticated("the account is closed"));
        }
        if state.banned {
            return Err(ApiError::user_banned());
        }
        if state.session_revoked {
            return Err(ApiError::unauthenticated("the login has ended"));
        }
        let expires_at =
            OffsetDateTime::from_unix_timestamp(i64::try_from(claims.exp).unwrap_or(i64::MAX))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Ok(AuthUser {
            id: user_id,
            session_id,
            roles: state.roles,
            expires_at,
        })
    }

    async fn state(&self, user_id: i64, session_id: i64) -> Result<Option<AuthState>, ApiError> {
        if let Some(hit) = self.cache.get(user_id, session_id) {
            return Ok(Some(hit));
        }
        let fetched_at = Instant::now();
        let mut conn = self.db.read().await?;
        let state = repo::users::auth_state(&mut conn, user_id, session_id).await?;
        if let Some(s) = &state {
            self.cache.put(user_id, session_id, fetched_at, s.clone());
        }
        Ok(state)
    }
}
