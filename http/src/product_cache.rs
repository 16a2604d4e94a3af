//! This node's cache of rendered products (`GET /api/v1/products/{id}`): the JSON the route
//! answers with and its `ETag`, built once per change instead of once per request. The cache
//! itself, and how changes keep it fresh, is `mall_actors::fresh`.

use std::time::Duration;

use actix_web::web::Bytes;
use mall_actors::fresh::FreshCache;
use sha2::{Digest, Sha256};

/// A product as the route answers it.
#[derive(Debug)]
pub struct Rendered {
    /// The response body.
    pub json: Bytes,
    /// A strong entity tag of the body, quoted (`"…"`).
    pub etag: String,
}

impl Rendered {
    /// The body `json` and its tag.
    pub fn new(json: Vec<u8>) -> Self {
        let digest = Sha256::digest(&json);
        let mut etag = String::with_capacity(34);
        etag.push('"');
        for byte in &digest[..16] {
            etag.push_str(&format!("{byte:02x}"));
        }
        etag.push('"');
        Rendered {
            json: Bytes::from(json),
            etag,
        }
    }

    /// True when an `If-None-Match` header value names this copy: `*`, or a list of tags of
    /// which one equals ours (weakly: a `W/` prefix is ignored, as GET's comparison says).
    pub fn matches(&self, if_none_match: &str) -> bool {
        if_none_match
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == self.etag.as_str())
    }
}

/// This node's rendered products, kept fresh by the change notices.
pub type ProductCache = FreshCache<Rendered>;

/// A cache of at most `max_bytes` of rendered products whose entries live at most `ttl`.
pub fn product_cache(max_bytes: u64, ttl: Duration) -> ProductCache {
    FreshCache::new(max_bytes, ttl, |r| {
        u32::try_from(r.json.len() + r.etag.len() + 64).unwrap_or(u32::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_strong_stable_and_matched_weakly_or_by_star() {
        let a = Rendered::new(b"{\"id\":\"1\"}".to_vec());
        let b = Rendered::new(b"{\"id\":\"2\"}".to_vec());
        assert_eq!(a.etag, Rendered::new(b"{\"id\":\"1\"}".to_vec()).etag);
        assert_ne!(a.etag, b.etag);
        assert!(a.etag.starts_with('"') && a.etag.ends_with('"') && a.etag.len() == 34);
        assert!(a.matches(&a.etag));
        assert!(a.matches(&format!("W/{}", a.etag)));
        assert!(a.matches(&format!("{}, {}", b.etag, a.etag)));
        assert!(a.matches("*"));
        assert!(!a.matches(&b.etag));
        assert!(!a.matches(""));
    }
}
