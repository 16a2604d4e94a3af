//! The shard table: rendezvous (highest-random-weight) hashing of `cluster.shards` shards over
//! the live members. Each shard goes to the member with the highest weight for it, so when a
//! member joins or leaves only the shards it wins or held move. Plain functions, no I/O; the
//! hash is our own (FNV-1a and a SplitMix64 finaliser), so every node and every version of the
//! binary computes the same table.

use std::collections::BTreeMap;

/// FNV-1a over `bytes`.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64's finaliser: spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The weight of `node` for `shard`.
pub fn weight(node: &str, shard: u32) -> u64 {
    mix(fnv1a(node.as_bytes()) ^ mix(u64::from(shard).wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

/// The shard of a user: where its cart, orders and payment sessions live. A stable mix of the
/// id, so the time-ordered ids of users created together still spread over every shard.
pub fn of_user(user_id: i64, shards: u32) -> u32 {
    let h = mix(u64::from_le_bytes(user_id.to_le_bytes()) ^ 0x5bd1_e995_7f4a_7c15);
    // The remainder is below `shards`, a u32.
    (h % u64::from(shards.max(1))) as u32
}

/// The owner of `shard` among `nodes`: the highest weight, ties to the smaller id.
pub fn owner<'a>(shard: u32, nodes: &[&'a str]) -> Option<&'a str> {
    nodes.iter().copied().max_by(|a, b| {
        weight(a, shard)
            .cmp(&weight(b, shard))
            .then_with(|| b.cmp(a))
    })
}

/// The owner of every shard `0..shards` (`None` for each when there is no member).
pub fn table<'a>(shards: u32, nodes: &[&'a str]) -> Vec<Option<&'a str>> {
    (0..shards).map(|s| owner(s, nodes)).collect()
}

/// How many shards each member owns (every member listed, possibly with 0).
pub fn counts(shards: u32, nodes: &[&str]) -> BTreeMap<String, u32> {
    let mut counts: BTreeMap<String, u32> = nodes.iter().map(|n| ((*n).to_owned(), 0)).collect();
    for node in table(shards, nodes).into_iter().flatten() {
        if let Some(c) = counts.get_mut(node) {
            *c += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_member_owns_every_shard() {
        assert_eq!(counts(256, &["a"]).get("a"), Some(&256));
        assert!(table(4, &[]).iter().all(Option::is_none));
    }

    #[test]
    fn every_shard_has_one_owner_and_the_split_is_fair() {
        let nodes = ["n1", "n2", "n3"];
        let c = counts(256, &nodes);
        assert_eq!(c.values().sum::<u32>(), 256);
        // 256/3 ≈ 85; rendezvous hashing is random-like, so allow a wide margin.
        assert!(c.values().all(|&n| (50..=120).contains(&n)), "{c:?}");
    }

    #[test]
    fn the_order_of_members_does_not_matter() {
        assert_eq!(table(64, &["a", "b", "c"]), table(64, &["c", "a", "b"]));
    }

    #[test]
    fn a_leaving_member_moves_only_its_own_shards() {
        let before = table(256, &["a", "b", "c"]);
        let after = table(256, &["a", "b"]);
        for (s, (old, new)) in before.iter().zip(&after).enumerate() {
            if *old != Some("c") {
                assert_eq!(old, new, "shard {s} moved though its owner stayed");
            }
        }
    }

    #[test]
    fn a_joining_member_takes_shards_only_for_itself() {
        let before = table(256, &["a", "b"]);
        let after = table(256, &["a", "b", "d"]);
        for (old, new) in before.iter().zip(&after) {
            assert!(old == new || *new == Some("d"));
        }
    }

    #[test]
    fn users_spread_over_every_shard() {
        let mut seen = [0u32; 16];
        // Time-ordered ids share their high bits: the shard must still spread them.
        for i in 0..1600i64 {
            seen[of_user((1 << 40) + (i << 12), 16) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (50..=150).contains(&n)), "{seen:?}");
    }

    #[test]
    fn the_hash_is_stable() {
        // Every node, and every build, must agree: pin a few values.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(weight("n1", 0), weight("n1", 0));
        assert_ne!(weight("n1", 0), weight("n1", 1));
        assert_eq!(of_user(42, 256), of_user(42, 256));
        assert!(of_user(-1, 7) < 7 && of_user(5, 0) == 0);
    }
}
