//! The live view of the cluster: the members and services seen under their etcd prefixes, kept
//! up to date by applying watch events. Plain data, no I/O (the watcher in `etcd.rs` feeds it).

use std::collections::BTreeMap;

use super::keys::{self, Claim, KeyName, Member, Service};
use super::shards;

/// One change seen under the watched prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A key was written with this value.
    Put {
        /// The key.
        key: String,
        /// Its value.
        value: Vec<u8>,
    },
    /// A key was deleted (or its lease ended).
    Delete {
        /// The key.
        key: String,
    },
}

/// Members, services and shard claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// Member values by node id.
    pub members: BTreeMap<String, Member>,
    /// Service values by (service, node id).
    pub services: BTreeMap<(String, String), Service>,
    /// The claimed shards: shard -> owner node id.
    pub claims: BTreeMap<u32, String>,
}

impl View {
    /// A view of a full listing of both prefixes (`(key, value)` pairs).
    pub fn from_listing<'a>(kvs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> View {
        let mut view = View::default();
        for (key, value) in kvs {
            view.apply(&Change::Put {
                key: key.to_owned(),
                value: value.to_vec(),
            });
        }
        view
    }

    /// Applies one change; returns whether the membership (the set of members or any member's
    /// value) changed. A value that does not parse is skipped, as if the key were absent: a
    /// foreign or newer writer must not take the view down.
    pub fn apply(&mut self, change: &Change) -> bool {
        match change {
            Change::Put { key, value } => match keys::parse_key(key) {
                Some(KeyName::Member(node)) => match serde_json::from_slice::<Member>(value) {
                    Ok(member) if member.node_id == node => {
                        self.members.insert(node, member.clone()) != Some(member)
                    }
                    _ => self.members.remove(&node).is_some(),
                },
                Some(KeyName::Service(service, node)) => {
                    match serde_json::from_slice::<Service>(value) {
                        Ok(s) if s.node_id == node => {
                            self.services.insert((service, node), s);
                        }
                        _ => {
                            self.services.remove(&(service, node));
                        }
                    }
                    false
                }
                Some(KeyName::Shard(shard)) => {
                    match serde_json::from_slice::<Claim>(value) {
                        Ok(claim) if keys::valid_node_id(&claim.node_id) => {
                            self.claims.insert(shard, claim.node_id);
                        }
                        _ => {
                            self.claims.remove(&shard);
                        }
                    }
                    false
                }
                None => false,
            },
            Change::Delete { key } => match keys::parse_key(key) {
                Some(KeyName::Member(node)) => self.members.remove(&node).is_some(),
                Some(KeyName::Service(service, node)) => {
                    self.services.remove(&(service, node));
                    false
                }
                Some(KeyName::Shard(shard)) => {
                    self.claims.remove(&shard);
                    false
                }
                None => false,
            },
        }
    }

    /// The node ids of the live members, sorted.
    pub fn node_ids(&self) -> Vec<&str> {
        self.members.keys().map(String::as_str).collect()
    }

    /// How many shards each member holds a claim on (every member listed, possibly with 0).
    pub fn shard_counts(&self) -> BTreeMap<String, u32> {
        let mut counts: BTreeMap<String, u32> =
            self.members.keys().map(|n| (n.clone(), 0)).collect();
        for node in self.claims.values() {
            if let Some(c) = counts.get_mut(node) {
                *c += 1;
            }
        }
        counts
    }

    /// The member that should own `shard` under rendezvous hashing over the live members.
    pub fn assigned(&self, shard: u32) -> Option<&str> {
        shards::owner(shard, &self.node_ids())
    }

    /// The base URL of the member `node`, if it is live.
    pub fn url_of(&self, node: &str) -> Option<&str> {
        self.members.get(node).map(|m| m.advertise_url.as_str())
    }

    /// The services a node runs, sorted.
    pub fn services_of(&self, node: &str) -> Vec<&str> {
        self.services
            .keys()
            .filter(|(_, n)| n == node)
            .map(|(s, _)| s.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(node: &str) -> Vec<u8> {
        serde_json::to_vec(&Member {
            node_id: node.into(),
            advertise_url: format!("http://{node}:8080"),
            version: "0.1.0".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
        })
        .unwrap()
    }

    fn put(key: &str, value: Vec<u8>) -> Change {
        Change::Put {
            key: key.into(),
            value,
        }
    }

    #[test]
    fn members_come_and_go_with_their_keys() {
        let mut view = View::default();
        assert!(view.apply(&put("/mall/v1/members/a", member("a"))));
        assert!(view.apply(&put("/mall/v1/members/b", member("b"))));
        // The same value again changes nothing.
        assert!(!view.apply(&put("/mall/v1/members/a", member("a"))));
        assert_eq!(view.node_ids(), ["a", "b"]);
        assert!(view.apply(&Change::Delete {
            key: "/mall/v1/members/a".into()
        }));
        assert_eq!(view.node_ids(), ["b"]);
        assert!(!view.apply(&Change::Delete {
            key: "/mall/v1/members/a".into()
        }));
    }

    #[test]
    fn services_are_tracked_per_node() {
        let svc = |n: &str| {
            serde_json::to_vec(&Service {
                node_id: n.into(),
                address: "http://x".into(),
            })
            .unwrap()
        };
        let mut view = View::from_listing([
            ("/mall/v1/services/api/a", svc("a").as_slice()),
            ("/mall/v1/services/cart/a", svc("a").as_slice()),
            ("/mall/v1/services/cart/b", svc("b").as_slice()),
        ]);
        assert_eq!(view.services_of("a"), ["api", "cart"]);
        view.apply(&Change::Delete {
            key: "/mall/v1/services/cart/a".into(),
        });
        assert_eq!(view.services_of("a"), ["api"]);
        assert_eq!(view.services_of("b"), ["cart"]);
    }

    #[test]
    fn garbage_and_foreign_keys_are_ignored() {
        let mut view = View::default();
        assert!(!view.apply(&put("/mall/v1/members/a", b"not json".to_vec())));
        // A value naming another node than its key is not believed.
        assert!(!view.apply(&put("/mall/v1/members/a", member("b"))));
        assert!(!view.apply(&put("/mall/v1/node_numbers/3", b"a".to_vec())));
        assert!(view.members.is_empty());
        // A bad rewrite of a known member removes it rather than keep a stale value.
        view.apply(&put("/mall/v1/members/a", member("a")));
        assert!(view.apply(&put("/mall/v1/members/a", b"{}".to_vec())));
        assert!(view.members.is_empty());
    }

    #[test]
    fn claims_are_counted_per_live_member() {
        let claim = |n: &str| serde_json::to_vec(&Claim { node_id: n.into() }).unwrap();
        let mut view = View::from_listing([
            ("/mall/v1/members/a", member("a").as_slice()),
            ("/mall/v1/members/b", member("b").as_slice()),
            ("/mall/v1/shards/0", claim("a").as_slice()),
            ("/mall/v1/shards/1", claim("a").as_slice()),
            ("/mall/v1/shards/2", claim("b").as_slice()),
            ("/mall/v1/shards/3", b"garbage".as_slice()),
        ]);
        assert_eq!(view.claims.len(), 3);
        let counts = view.shard_counts();
        assert_eq!((counts["a"], counts["b"]), (2, 1));
        view.apply(&Change::Delete {
            key: "/mall/v1/shards/0".into(),
        });
        assert_eq!(view.shard_counts()["a"], 1);
        assert!(view.assigned(5).is_some());
        assert_eq!(view.url_of("a"), Some("http://a:8080"));
        assert_eq!(view.url_of("z"), None);
    }
}
