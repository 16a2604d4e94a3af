//! Identity at the edge: ids in paths, and the role names handlers check. The account, session
//! and role services themselves are in `crate::services`.

pub use crate::services::roles::{ADMIN_ROLE, DEFAULT_ROLE};

use crate::error::ApiError;

/// Parses an id from a path; anything that is not one of ours is simply not found.
/// Only the canonical form counts: `"007"` or `"+7"` name nothing.
pub fn parse_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    crate::services::parse_id(raw).ok_or_else(|| ApiError::not_found(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_not_ours_are_not_found() {
        assert_eq!(parse_id("123", "user").unwrap(), 123);
        assert_eq!(parse_id("007", "user").unwrap_err().code, "not_found");
    }
}
