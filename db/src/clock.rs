//! Wall-clock helpers: the database stores UTC `TIMESTAMP`s as `PrimitiveDateTime`.

use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Now in UTC, truncated to microseconds (the precision both backends keep), so a value
/// read back compares equal to the value written.
pub fn now() -> PrimitiveDateTime {
    let now = OffsetDateTime::now_utc();
    let micros = now.microsecond();
    let now = now.replace_microsecond(micros).unwrap_or(now);
    PrimitiveDateTime::new(now.date(), now.time())
}

/// Converts a stored UTC timestamp to an `OffsetDateTime` in UTC.
pub fn to_utc(t: PrimitiveDateTime) -> OffsetDateTime {
    t.assume_utc()
}

/// Converts any instant to the stored UTC form.
pub fn from_utc(t: OffsetDateTime) -> PrimitiveDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    PrimitiveDateTime::new(t.date(), t.time())
}

/// `t + d` as a stored timestamp (saturating: a deadline past the calendar is "never").
pub fn after(t: PrimitiveDateTime, d: std::time::Duration) -> PrimitiveDateTime {
    t.saturating_add(time::Duration::try_from(d).unwrap_or(time::Duration::MAX))
}
