//! Repositories: async functions that take a `&mut DbConn` and run one unit of work on it.

pub mod carts;
pub mod deadlines;
pub mod fences;
pub mod idempotency;
pub mod orders;
pub mod payments;
pub mod placements;
pub mod products;
pub mod roles;
pub mod sessions;
pub mod users;

/// Why a repository's transaction rolled back: it found that it must answer `T` and write
/// nothing, or the database failed. [`Rollback::settle`] turns the transaction's result into
/// the repository's.
pub(crate) enum Rollback<T> {
    /// Roll back and answer this.
    Answer(T),
    /// The database failed.
    Db(crate::error::DbError),
}

impl<T> From<diesel::result::Error> for Rollback<T> {
    fn from(e: diesel::result::Error) -> Self {
        Rollback::Db(e.into())
    }
}

impl<T> Rollback<T> {
    /// The answer of a transaction that committed (`Ok`) or rolled back (`Answer`).
    pub(crate) fn settle(result: Result<T, Rollback<T>>) -> Result<T, crate::error::DbError> {
        match result {
            Ok(answer) | Err(Rollback::Answer(answer)) => Ok(answer),
            Err(Rollback::Db(e)) => Err(e),
        }
    }
}

/// One page of a list and the total across all pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// How many rows the whole list has.
    pub total: i64,
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a `LIKE ... ESCAPE '\'`.
pub fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// `(offset, limit)` for a 1-based page.
pub fn page_bounds(page: u32, page_size: u32) -> (i64, i64) {
    let page = i64::from(page.max(1));
    let size = i64::from(page_size.max(1));
    ((page - 1) * size, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escape_makes_wildcards_literal() {
        assert_eq!(like_escape("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(like_escape("plain"), "plain");
    }

    #[test]
    fn page_bounds_are_one_based() {
        assert_eq!(page_bounds(1, 20), (0, 20));
        assert_eq!(page_bounds(3, 10), (20, 10));
        assert_eq!(page_bounds(0, 0), (0, 1));
    }
}
