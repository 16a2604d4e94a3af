//! `Deadline`: when a caller stops waiting, as wall-clock time, so it means the same thing on
//! any node a call may one day be forwarded to. Each hop turns it into a local timeout with
//! [`Deadline::remaining`], so no hop starts a fresh timeout of its own.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A point in wall-clock time (microseconds since the Unix epoch).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Deadline {
    unix_micros: u64,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl Deadline {
    /// `d` from now.
    pub fn after(d: Duration) -> Deadline {
        let d = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Deadline {
            unix_micros: now_micros().saturating_add(d),
        }
    }

    /// How long until it passes (zero once it has).
    pub fn remaining(&self) -> Duration {
        Duration::from_micros(self.unix_micros.saturating_sub(now_micros()))
    }

    /// True once it has passed.
    pub fn passed(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The local monotonic instant it falls on, for timers.
    pub fn instant(&self) -> Instant {
        Instant::now() + self.remaining()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_counts_down_and_passes() {
        let later = Deadline::after(Duration::from_secs(60));
        assert!(!later.passed());
        assert!(later.remaining() > Duration::from_secs(59));
        assert!(later.instant() > Instant::now() + Duration::from_secs(59));
        let gone = Deadline::after(Duration::ZERO);
        assert!(gone.passed());
        assert_eq!(gone.remaining(), Duration::ZERO);
        assert!(gone < later);
    }

    #[test]
    fn it_travels_as_a_number() {
        let d = Deadline::after(Duration::from_secs(5));
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Deadline>(&json).unwrap(), d);
    }
}
