//! Paging: `?page=1&page_size=20` in, `{items, page, page_size, total}` out.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// The default page size.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The largest page size.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Paging parameters as given; validate with [`PageQuery::resolve`].
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
pub struct PageQuery {
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<i64>,
    /// Items per page, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<i64>,
}

impl PageQuery {
    /// `(page, page_size)`, or 400 naming the field out of range.
    pub fn resolve(self) -> Result<(u32, u32), ApiError> {
        let page = self.page.unwrap_or(1);
        let size = self.page_size.unwrap_or(i64::from(DEFAULT_PAGE_SIZE));
        let mut bad = Vec::new();
        if !(1..=1_000_000).contains(&page) {
            bad.push(("page", "must be between 1 and 1000000".to_owned()));
        }
        if !(1..=i64::from(MAX_PAGE_SIZE)).contains(&size) {
            bad.push((
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        if !bad.is_empty() {
            return Err(ApiError::invalid(bad));
        }
        Ok((page as u32, size as u32))
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Paged<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// This page's number.
    pub page: u32,
    /// The page size used.
    pub page_size: u32,
    /// Items across all pages.
    pub total: i64,
}

impl<T> Paged<T> {
    /// The page of views of a repository page's rows.
    pub fn of<R>(
        found: mall_db::repo::Page<R>,
        page: u32,
        page_size: u32,
        view: impl FnMut(R) -> T,
    ) -> Self {
        Paged {
            items: found.items.into_iter().map(view).collect(),
            page,
            page_size,
            total: found.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_bounds_follow_the_contract() {
        let q = |page, page_size| PageQuery { page, page_size }.resolve();
        assert_eq!(q(None, None).unwrap(), (1, 20));
        assert_eq!(q(Some(3), Some(100)).unwrap(), (3, 100));
        assert!(q(None, Some(0)).is_err());
        assert!(q(None, Some(101)).is_err());
        assert!(q(Some(0), None).is_err());
        let err = q(Some(-1), Some(101)).unwrap_err();
        assert!(
            err.details["fields"].get("page").is_some()
                && err.details["fields"].get("page_size").is_some()
        );
    }
}
