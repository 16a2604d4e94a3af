//! The live RBAC policy: an immutable compiled snapshot, swapped atomically when the roles change.
//!
//! Every change bumps `policy_state.version` in the database. Each node polls that version
//! (every quarter second by default) and recompiles when it moves, so a change made on any node
//! is in force everywhere within a second; the node that made the change reloads at once.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mall_db::models::RoleWithPermissions;
use mall_db::repo::roles::NewPermission;
use mall_db::{Db, DbError, repo};

use super::policy::{Effect, Policy, Rule, validate_rule};

/// The current policy and the version it was compiled from.
pub struct PolicyStore {
    db: Db,
    current: RwLock<Arc<Policy>>,
    version: AtomicI64,
}

/// Turns stored roles into policy rules; a stored effect that is not `allow` counts as `deny`
/// (failing closed).
pub fn rules_of(role: &RoleWithPermissions) -> Vec<Rule> {
    role.permissions
        .iter()
        .map(|p| Rule {
            method: p.method.clone(),
            path: p.path.clone(),
            effect: Effect::parse(&p.effect).unwrap_or(Effect::Deny),
        })
        .collect()
}

/// Checks a permission as an admin gives it and answers it as stored (method upper-cased),
/// or the part at fault and why: the roles service's `RuleCheck`, since the policy owns the
/// rule language.
pub fn check_permission(p: &NewPermission) -> Result<NewPermission, (&'static str, String)> {
    let effect = Effect::parse(&p.effect).ok_or((".effect", "must be allow or deny".to_owned()))?;
    let method = p.method.to_ascii_uppercase();
    let rule = Rule {
        method: method.clone(),
        path: p.path.clone(),
        effect,
    };
    validate_rule(&rule).map_err(|e| ("", e.to_string()))?;
    Ok(NewPermission {
        method,
        path: p.path.clone(),
        effect: effect.as_str().to_owned(),
    })
}

impl PolicyStore {
    /// Loads and compiles the policy now.
    pub async fn load(db: Db) -> Result<Arc<PolicyStore>, DbError> {
        let store = Arc::new(PolicyStore {
            db,
            current: RwLock::new(Arc::new(Policy::empty())),
            version: AtomicI64::new(-1),
        });
        store.reload().await?;
        Ok(store)
    }

    /// The snapshot to check a request against.
    pub fn snapshot(&self) -> Arc<Policy> {
        self.current
            .read()
            .map(|g| Arc::clone(&g))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    /// Reloads when the stored version differs from the loaded one. Returns true on reload.
    pub async fn refresh(&self) -> Result<bool, DbError> {
        let mut conn = self.db.read().await?;
        let stored = repo::roles::policy_version(&mut conn).await?;
        drop(conn);
        if stored == self.version.load(Ordering::Acquire) {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    /// Reads every role and swaps in the compiled policy. A policy that fails to compile (a bad
    /// regex written around the API) keeps the previous snapshot and logs an error.
    pub async fn reload(&self) -> Result<(), DbError> {
        let mut conn = self.db.read().await?;
        // Read the version first: a change landing between the two reads is picked up next poll.
        let version = repo::roles::policy_version(&mut conn).await?;
        let roles = repo::roles::list_all(&mut conn).await?;
        drop(conn);
        let rules: Vec<(String, Vec<Rule>)> = roles
            .iter()
            .map(|r| (r.name.clone(), rules_of(r)))
            .collect();
        match Policy::compile(rules.iter().map(|(n, r)| (n.as_str(), r.as_slice()))) {
            Ok(policy) => {
                if let Ok(mut current) = self.current.write() {
                    *current = Arc::new(policy);
                }
                self.version.store(version, Ordering::Release);
                tracing::info!(version, roles = roles.len(), "policy loaded");
            }
            Err(e) => {
                tracing::error!(error = %e, version, "stored policy does not compile; keeping the previous one")
            }
        }
        Ok(())
    }

    /// Polls the version every `every` until the process ends.
    pub fn spawn_watcher(self: &Arc<Self>, every: Duration) {
        let store = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = store.refresh().await {
                    tracing::warn!(error = %e, "policy poll failed");
                }
            }
        });
    }
}
