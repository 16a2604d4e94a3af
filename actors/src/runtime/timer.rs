//! Time until a stored deadline, for the hosts' timers.

use std::time::Duration;

use time::PrimitiveDateTime;

/// How long until `at` (zero when it has passed).
pub fn until(at: PrimitiveDateTime, now: PrimitiveDateTime) -> Duration {
    Duration::try_from(at - now).unwrap_or(Duration::ZERO)
}
