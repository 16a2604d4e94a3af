//! Request and response bodies, as the API shows them (ids as strings, times as RFC 3339).

pub mod cart;
pub mod catalog;
pub mod identity;
pub mod orders;
pub mod page;

pub use page::{PageQuery, Paged};

/// A body that must be empty or `{}` (`POST /cart`, `.../cancel`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoBody {}

use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// Deserialises a field that is present: `Some(None)` for `null`, `Some(Some(v))` for a value;
/// with `#[serde(default)]` an absent field stays `None` (so a PATCH can tell the two apart).
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Formats a time as RFC 3339 UTC (`2026-11-26T02:19:55.123456Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Formats a stored UTC timestamp as RFC 3339.
pub fn stored_time(t: time::PrimitiveDateTime) -> String {
    rfc3339(t.assume_utc())
}
