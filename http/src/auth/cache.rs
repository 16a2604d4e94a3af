//! A short-lived per-login cache of the caller's account state, so an authenticated request
//! need not read the database every time.
//!
//! An entry lives at most [`AuthCache::ttl`] (half a second by default): a ban, a role change or
//! a logout made on another node is seen within that time. Changes made on this node invalidate
//! the user's entries at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mall_db::repo::users::AuthState;

/// Past this many entries, expired ones are swept on insert.
const SWEEP_AT: usize = 50_000;

/// `(user id, session id) -> (fetched at, state)`.
pub struct AuthCache {
    ttl: Duration,
    entries: Mutex<HashMap<(i64, i64), (Instant, AuthState)>>,
}

impl AuthCache {
    /// A cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        AuthCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// How long an entry is trusted.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, i64), (Instant, AuthState)>> {
        // A panic while holding the lock cannot leave the map inconsistent: keep using it.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached state, if fresh.
    pub fn get(&self, user_id: i64, session_id: i64) -> Option<AuthState> {
        let entries = self.lock();
        entries
            .get(&(user_id, session_id))
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, s)| s.clone())
    }

    /// Remembers a state read at `fetched_at` (taken before the read, so a concurrent
    /// invalidation is never papered over by an older read).
    pub fn put(&self, user_id: i64, session_id: i64, fetched_at: Instant, state: AuthState) {
        let mut entries = self.lock();
        if entries.len() >= SWEEP_AT {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        entries.insert((user_id, session_id), (fetched_at, state));
    }

    /// Forgets everything (after a role is deleted: many users' roles changed).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Forgets every entry of a user (after a change to the account, its roles or its logins).
    pub fn invalidate_user(&self, user_id: i64) {
        self.lock().retain(|(uid, _), _| *uid != user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(banned: bool) -> AuthState {
        AuthState {
            banned,
            closed: false,
            session_revoked: false,
            roles: vec!["customer".into()],
        }
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = AuthCache::new(Duration::from_millis(500));
        cache.put(1, 10, Instant::now(), state(false));
        assert_eq!(cache.get(1, 10), Some(state(false)));
        cache.put(
            1,
            11,
            Instant::now() - Duration::from_millis(600),
            state(false),
        );
        assert_eq!(cache.get(1, 11), None);
    }

    #[test]
    fn invalidation_drops_every_login_of_the_user_only() {
        let cache = AuthCache::new(Duration::from_secs(5));
        cache.put(1, 10, Instant::now(), state(false));
        cache.put(1, 11, Instant::now(), state(false));
        cache.put(2, 20, Instant::now(), state(true));
        cache.invalidate_user(1);
        assert_eq!(cache.get(1, 10), None);
        assert_eq!(cache.get(1, 11), None);
        assert_eq!(cache.get(2, 20), Some(state(true)));
    }
}
