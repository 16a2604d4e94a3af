//! The claimer: keeps this node's shards in line with rendezvous hashing over the live members.
//! [`plan`] (plain, unit tested) says which shards to claim and which to hand over; [`run`]
//! does it against etcd and the database.
//!
//! A claim is an etcd transaction that puts `/mall/v1/shards/{n}` under this node's lease only
//! if no one holds it (or it holds this node's own id, left by an earlier life of the node).
//! Its revision is the shard's fencing epoch; the node records the epoch in the database
//! (`repo::fences::advance`, which waits for the old owner's open writes) before it serves
//! the shard. A hand-over stops new requests for the shard, waits for those in flight, then
//! deletes the claim; the new owner claims it as soon as it sees the key go.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use futures_util::StreamExt as _;

use mall_db::clock;
use mall_db::repo::fences;

use super::Shared;
use super::etcd::bounded;
use super::keys::{self, Claim};
use super::ownership::Slot;
use super::view::View;

/// One thing to do about a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Claim it: no one holds it (`takeover: false`), or a claim in this node's name that it
    /// does not serve does (`takeover: true`).
    Claim {
        /// The shard.
        shard: u32,
        /// Whether the claim exists already in this node's name.
        takeover: bool,
    },
    /// Hand it over: another live member should own it.
    Release(u32),
    /// Delete a claim in this node's name that it does not serve and should not own (a
    /// release whose delete failed, or an earlier life's): the shard's owner waits for it.
    Drop(u32),
}

/// What `me` should do, given the live view and its own table.
pub fn plan(me: &str, view: &View, table: &[Slot]) -> Vec<Action> {
    let mut actions = Vec::new();
    for (shard, slot) in table.iter().enumerate() {
        let Ok(shard) = u32::try_from(shard) else {
            break;
        };
        let assigned = view.assigned(shard);
        let holder = view.claims.get(&shard).map(String::as_str);
        match slot {
            Slot::Mine { .. } => {
                if assigned.is_some_and(|a| a != me) {
                    actions.push(Action::Release(shard));
                }
            }
            Slot::Releasing { .. } | Slot::Acquiring => {}
            Slot::Theirs(_) | Slot::Unclaimed if assigned == Some(me) => match holder {
                None => actions.push(Action::Claim {
                    shard,
                    takeover: false,
                }),
                Some(h) if h == me => actions.push(Action::Claim {
                    shard,
                    takeover: true,
                }),
                // Another holds it: it hands it over when it sees us (or its lease ends).
                Some(_) => {}
            },
            Slot::Theirs(_) | Slot::Unclaimed if holder == Some(me) => {
                actions.push(Action::Drop(shard));
            }
            Slot::Theirs(_) | Slot::Unclaimed => {}
        }
    }
    actions
}

/// How long a hand-over waits for the requests in flight on the shard.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Claims and releases until the node leaves: at every change of the view, and every
/// `every` in case an attempt failed.
pub(super) async fn run(shared: Arc<Shared>, client: Client, every: Duration) {
    loop {
        if shared.leaving.load(Ordering::Acquire) {
            return;
        }
        let actions = {
            let view = shared.read_view();
            plan(&shared.settings.node_id, &view, &shared.ownership.table())
        };
        // Several at once: a node joining a large cluster (or taking over a dead node's
        // shards) has many to claim, each an etcd and a database round trip.
        futures_util::stream::iter(actions)
            .for_each_concurrent(CONCURRENT_ACTIONS, |action| {
                let (shared, mut client) = (&shared, client.clone());
                async move {
                    if shared.leaving.load(Ordering::Acquire) {
                        return;
                    }
                    let done = match action {
                        Action::Claim { shard, takeover } => {
                            shared.ownership.begin_acquiring(shard);
                            let claimed = claim(shared, &mut client, shard, takeover).await;
                            if claimed.is_err() {
                                shared.ownership.abandon_acquiring(shard);
                                shared.refollow();
                            }
                            claimed
                        }
                        Action::Release(shard) => release(shared, &mut client, shard).await,
                        Action::Drop(shard) => delete_claim(shared, &mut client, shard).await,
                    };
                    if let Err(why) = done {
                        tracing::debug!(?action, error = %why, "shard action failed; retried later");
                    }
                }
            })
            .await;
        let _ = tokio::time::timeout(every, shared.claimer_wake.notified()).await;
    }
}

/// How many claims and releases run at once.
const CONCURRENT_ACTIONS: usize = 16;

fn claim_value(node_id: &str) -> Vec<u8> {
    serde_json::to_vec(&Claim {
        node_id: node_id.to_owned(),
    })
    .unwrap_or_default()
}

/// Claims `shard` under the current lease, records its epoch, and serves it.
async fn claim(
    shared: &Shared,
    client: &mut Client,
    shard: u32,
    takeover: bool,
) -> Result<(), String> {
    let Some(lease) = shared.current_lease() else {
        return Err("no lease".into());
    };
    let me = &shared.settings.node_id;
    let key = keys::shard_key(shard);
    let value = claim_value(me);
    let when = if takeover {
        Compare::value(key.clone(), CompareOp::Equal, value.clone())
    } else {
        Compare::create_revision(key.clone(), CompareOp::Equal, 0)
    };
    let txn = Txn::new().when([when]).and_then([TxnOp::put(
        key,
        value,
        Some(PutOptions::new().with_lease(lease)),
    )]);
    let limit = super::etcd::call_timeout(shared.settings.lease_ttl);
    let resp = bounded(limit, client.txn(txn))
        .await
        .map_err(|e| e.to_string())?;
    if !resp.succeeded() {
        return Err("held by another node".into());
    }
    let revision = resp.header().map_or(0, |h| h.revision());
    let epoch = record_epoch(shared, shard, revision).await?;
    shared.write_view().claims.insert(shard, me.clone());
    shared.ownership.acquired(shard, epoch);
    tracing::debug!(shard, epoch, "shard claimed");
    Ok(())
}

/// Records the claim's revision as the shard's epoch in the database; should etcd's revisions
/// ever restart below the recorded epoch (its data lost), one past the recorded one instead,
/// so the epoch still only grows. Waits for the old owner's open writes (see `fences`).
async fn record_epoch(shared: &Shared, shard: u32, revision: i64) -> Result<i64, String> {
    let mut conn = shared.db.write().await.map_err(|e| e.to_string())?;
    let recorded = fences::current(&mut conn, shard)
        .await
        .map_err(|e| e.to_string())?;
    let epoch = revision.max(recorded.unwrap_or(0) + 1);
    let advanced = fences::advance(
        &mut conn,
        shard,
        epoch,
        &shared.settings.node_id,
        clock::now(),
    )
    .await
    .map_err(|e| e.to_string())?;
    if advanced {
        Ok(epoch)
    } else {
        Err(format!("epoch {epoch} of shard {shard} was overtaken"))
    }
}

/// Hands `shard` over: no new requests, wait for those in flight, delete the claim.
async fn release(shared: &Shared, client: &mut Client, shard: u32) -> Result<(), String> {
    if !shared.ownership.releasing(shard) {
        return Ok(());
    }
    shared.ownership.drained(shard, DRAIN_LIMIT).await;
    let deleted = delete_claim(shared, client, shard).await;
    // Whatever etcd answered, this node does not serve the shard any more; a claim left behind
    // is dropped at the next round (or taken over, if the shard comes back).
    shared.ownership.released(shard);
    shared.refollow();
    deleted
}

/// Deletes this node's claim of `shard`, if it still holds it.
async fn delete_claim(shared: &Shared, client: &mut Client, shard: u32) -> Result<(), String> {
    let key = keys::shard_key(shard);
    let txn = Txn::new()
        .when([Compare::value(
            key.clone(),
            CompareOp::Equal,
            claim_value(&shared.settings.node_id),
        )])
        .and_then([TxnOp::delete(key, None)]);
    let limit = super::etcd::call_timeout(shared.settings.lease_ttl);
    bounded(limit, client.txn(txn))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Hands every shard over (a planned leave): no new requests, and waits (bounded) for those
/// in flight; the lease's revocation then deletes the claims at once.
pub(super) async fn release_all(shared: &Shared) {
    let table = shared.ownership.table();
    let mine: Vec<u32> = table
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Slot::Mine { .. }))
        .filter_map(|(i, _)| u32::try_from(i).ok())
        .collect();
    for shard in &mine {
        shared.ownership.releasing(*shard);
    }
    for shard in mine {
        shared.ownership.drained(shard, DRAIN_LIMIT).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::keys::Member;
    use crate::cluster::shards;

    fn view(members: &[&str], claims: &[(u32, &str)]) -> View {
        let mut v = View::default();
        for m in members {
            v.members.insert(
                (*m).to_owned(),
                Member {
                    node_id: (*m).to_owned(),
                    advertise_url: format!("http://{m}"),
                    version: "0".into(),
                    started_at: "2026-01-01T00:00:00Z".into(),
                },
            );
        }
        for (s, n) in claims {
            v.claims.insert(*s, (*n).to_owned());
        }
        v
    }

    #[test]
    fn a_node_claims_the_free_shards_assigned_to_it_and_nothing_else() {
        let v = view(&["a", "b"], &[]);
        let table = vec![Slot::Unclaimed; 32];
        let actions = plan("a", &v, &table);
        let expected: Vec<Action> = (0..32)
            .filter(|s| shards::owner(*s, &["a", "b"]) == Some("a"))
            .map(|shard| Action::Claim {
                shard,
                takeover: false,
            })
            .collect();
        assert_eq!(actions, expected);
        assert!(!expected.is_empty() && expected.len() < 32);
    }

    #[test]
    fn a_shard_held_by_another_waits_and_one_held_in_our_name_is_taken_over() {
        let shard = (0..64)
            .find(|s| shards::owner(*s, &["a", "b"]) == Some("a"))
            .unwrap();
        let mut table = vec![Slot::Theirs("b".into()); 64];
        table[shard as usize] = Slot::Theirs("b".into());
        let held = view(&["a", "b"], &[(shard, "b")]);
        assert!(!plan("a", &held, &table).contains(&Action::Claim {
            shard,
            takeover: false
        }));
        let ours = view(&["a", "b"], &[(shard, "a")]);
        table[shard as usize] = Slot::Unclaimed;
        assert!(plan("a", &ours, &table).contains(&Action::Claim {
            shard,
            takeover: true
        }));
        // A claim in our name on a shard assigned to another is dropped, so it can claim it.
        let theirs = (0..64)
            .find(|s| shards::owner(*s, &["a", "b"]) == Some("b"))
            .unwrap();
        let orphan = view(&["a", "b"], &[(theirs, "a")]);
        assert!(plan("a", &orphan, &vec![Slot::Unclaimed; 64]).contains(&Action::Drop(theirs)));
    }

    #[test]
    fn a_joining_member_gets_its_share_handed_over() {
        let before = ["a", "b"];
        let after = view(&["a", "b", "c"], &[]);
        let table: Vec<Slot> = (0..64)
            .map(|s| {
                if shards::owner(s, &before) == Some("a") {
                    Slot::Mine { epoch: 1 }
                } else {
                    Slot::Theirs("b".into())
                }
            })
            .collect();
        for action in plan("a", &after, &table) {
            let Action::Release(shard) = action else {
                panic!("only releases expected: {action:?}");
            };
            assert_eq!(shards::owner(shard, &["a", "b", "c"]), Some("c"));
        }
        // A node that is not a member of its own view (its lease just ended) claims nothing.
        let gone = view(&["b"], &[]);
        assert!(
            plan("a", &gone, &vec![Slot::Unclaimed; 16])
                .iter()
                .all(|a| matches!(a, Action::Release(_)))
        );
    }
}
