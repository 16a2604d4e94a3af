//! The registry's key layout in etcd and the JSON values stored under it (API.md, "Cluster"):
//! `/mall/v1/members/{node_id}` and `/mall/v1/services/{service}/{node_id}`, plus the node
//! numbers ids are minted with, `/mall/v1/node_numbers/{n}`, and the shard claims,
//! `/mall/v1/shards/{n}` (value [`Claim`]). Plain data, no I/O.

use serde::{Deserialize, Serialize};

/// Where every member key lives.
pub const MEMBERS_PREFIX: &str = "/mall/v1/members/";
/// Where every service key lives.
pub const SERVICES_PREFIX: &str = "/mall/v1/services/";
/// Where the claimed node numbers live (value: the holder's node id).
pub const NODE_NUMBERS_PREFIX: &str = "/mall/v1/node_numbers/";

/// Where the shard claims live (value: a [`Claim`], under the owner's lease).
pub const SHARDS_PREFIX: &str = "/mall/v1/shards/";

/// The services every node runs (each gets its own key).
pub const SERVICES: [&str; 4] = ["api", "cart", "order", "payment"];

/// The value of a member key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node's id.
    pub node_id: String,
    /// The base URL other nodes reach it at.
    pub advertise_url: String,
    /// The `mall` version it runs.
    pub version: String,
    /// When the process started, RFC 3339.
    pub started_at: String,
}

/// The value of a service key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// The node running the service.
    pub node_id: String,
    /// Where the service is reached (the node's advertise URL: every service shares it).
    pub address: String,
}

/// The value of a shard's claim: which node owns it. The claim's etcd revision is the
/// shard's fencing epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The owner.
    pub node_id: String,
}

/// `/mall/v1/shards/{n}`.
pub fn shard_key(shard: u32) -> String {
    format!("{SHARDS_PREFIX}{shard}")
}

/// `/mall/v1/members/{node_id}`.
pub fn member_key(node_id: &str) -> String {
    format!("{MEMBERS_PREFIX}{node_id}")
}

/// `/mall/v1/services/{service}/{node_id}`.
pub fn service_key(service: &str, node_id: &str) -> String {
    format!("{SERVICES_PREFIX}{service}/{node_id}")
}

/// `/mall/v1/node_numbers/{n}`.
pub fn node_number_key(number: u16) -> String {
    format!("{NODE_NUMBERS_PREFIX}{number}")
}

/// The node number a `/mall/v1/node_numbers/{n}` key names.
pub fn parse_node_number_key(key: &str) -> Option<u16> {
    key.strip_prefix(NODE_NUMBERS_PREFIX)?.parse().ok()
}

/// What a key under the members or services prefix names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyName {
    /// A member key: the node id.
    Member(String),
    /// A service key: the service and the node id.
    Service(String, String),
    /// A shard's claim: the shard.
    Shard(u32),
}

/// Parses a member or service key; `None` for anything else.
pub fn parse_key(key: &str) -> Option<KeyName> {
    if let Some(node) = key.strip_prefix(MEMBERS_PREFIX) {
        return valid_node_id(node).then(|| KeyName::Member(node.to_owned()));
    }
    if let Some(shard) = key.strip_prefix(SHARDS_PREFIX) {
        return shard.parse().ok().map(KeyName::Shard);
    }
    let rest = key.strip_prefix(SERVICES_PREFIX)?;
    let (service, node) = rest.split_once('/')?;
    (!service.is_empty() && valid_node_id(node))
        .then(|| KeyName::Service(service.to_owned(), node.to_owned()))
}

/// Whether `id` can be a node id: 1 to 64 ASCII letters, digits, `-`, `_` or `.`, so that it
/// is one path segment of a key and shows as is in URLs and logs.
pub fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_laid_out_as_the_contract_says() {
        assert_eq!(member_key("n1"), "/mall/v1/members/n1");
        assert_eq!(service_key("cart", "n1"), "/mall/v1/services/cart/n1");
        assert_eq!(node_number_key(7), "/mall/v1/node_numbers/7");
        assert_eq!(
            parse_node_number_key("/mall/v1/node_numbers/1023"),
            Some(1023)
        );
        assert_eq!(parse_node_number_key("/mall/v1/node_numbers/x"), None);
    }

    #[test]
    fn keys_parse_back() {
        assert_eq!(
            parse_key("/mall/v1/members/n-1"),
            Some(KeyName::Member("n-1".into()))
        );
        assert_eq!(
            parse_key("/mall/v1/services/order/n-1"),
            Some(KeyName::Service("order".into(), "n-1".into()))
        );
        assert_eq!(parse_key("/mall/v1/services/order"), None);
        assert_eq!(shard_key(12), "/mall/v1/shards/12");
        assert_eq!(parse_key("/mall/v1/shards/12"), Some(KeyName::Shard(12)));
        assert_eq!(parse_key("/mall/v1/shards/x"), None);
        assert_eq!(parse_key("/mall/v1/members/a/b"), None);
        assert_eq!(parse_key("/other"), None);
    }

    #[test]
    fn member_values_have_exactly_the_contract_fields() {
        let m = Member {
            node_id: "n1".into(),
            advertise_url: "http://127.0.0.1:1".into(),
            version: "0.1.0".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
        };
        let v = serde_json::to_value(&m).unwrap_or_default();
        let mut fields: Vec<_> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        fields.sort();
        assert_eq!(
            fields,
            ["advertise_url", "node_id", "started_at", "version"]
        );
    }

    #[test]
    fn node_ids_are_one_safe_segment() {
        assert!(valid_node_id("mall-1.eu_west"));
        assert!(!valid_node_id(""));
        assert!(!valid_node_id("a/b"));
        assert!(!valid_node_id("a b"));
        assert!(!valid_node_id(&"x".repeat(65)));
    }
}
