//! When a request goes out again, and where: the failover and 503-retry rules of a client that
//! knows several nodes of one mall cluster, as a pure function ([`decide`]) the HTTP client
//! ([`super::client::Api`]) applies attempt after attempt.
//!
//! - An attempt that got no HTTP answer at all (connection refused, reset or closed before the
//!   status line) goes to the next target that has not failed that way yet: each target is tried
//!   at most once so, with one target, it is not retried at all. That is a *failover*.
//! - A 503 carrying `Retry-After` goes out again, after `min(Retry-After, max_pause)`, to the next
//!   target still believed alive (the same one when it is the only one), at most
//!   `max_503_retries` times. That is a *503 retry*.
//! - Nothing else is retried, and nothing goes out once the request's time budget (the
//!   per-request timeout, counted from its first attempt) is spent or would be by the pause.

use std::time::Duration;

/// The longest pause before retrying a 503, whatever its `Retry-After` says.
pub const MAX_503_PAUSE: Duration = Duration::from_millis(250);
/// How many times a 503 with `Retry-After` is retried before it counts as the answer.
pub const MAX_503_RETRIES: u32 = 3;

/// The rules one client follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Whether an attempt with no answer goes to the next target.
    pub failover: bool,
    /// How many times a 503 with `Retry-After` is retried.
    pub max_503_retries: u32,
    /// The longest pause before a 503 retry.
    pub max_pause: Duration,
}

impl Policy {
    /// Fail over, and retry a 503 a few times after a short pause.
    pub const RETRY: Policy = Policy {
        failover: true,
        max_503_retries: MAX_503_RETRIES,
        max_pause: MAX_503_PAUSE,
    };

    /// One attempt, whatever it gets (for measuring what a client without retries would see).
    pub const NEVER: Policy = Policy {
        failover: false,
        max_503_retries: 0,
        max_pause: Duration::ZERO,
    };
}

/// What one attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No HTTP answer: refused, reset or closed before a status line, or timed out.
    NoAnswer,
    /// A status line (and a body, or the body broke off: either way the server answered).
    Answered {
        /// The status.
        status: u16,
        /// Its `Retry-After`, when it has one that parses as seconds.
        retry_after: Option<Duration>,
    },
}

/// What the client does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The last attempt's result is the request's.
    Done,
    /// Send it again at once to `target` (the last one gave no answer).
    Failover {
        /// Index into the targets.
        target: usize,
    },
    /// Send it again to `target` after `pause` (the last one was a 503 with `Retry-After`).
    Retry503 {
        /// Index into the targets.
        target: usize,
        /// How long to wait first.
        pause: Duration,
    },
}

/// Where one request stands: the target of its last attempt, the targets that gave no answer,
/// and the 503 retries made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The target of the last attempt.
    pub current: usize,
    /// Per target: it gave no answer to this request.
    pub silent: Vec<bool>,
    /// 503 retries made so far.
    pub retries_503: u32,
}

impl State {
    /// A request about to go to `home` among `targets` targets.
    pub fn new(targets: usize, home: usize) -> State {
        let n = targets.max(1);
        State {
            current: home % n,
            silent: vec![false; n],
            retries_503: 0,
        }
    }

    /// Takes `outcome` of the last attempt into account and moves on as `decision` says.
    pub fn apply(&mut self, outcome: Outcome, decision: Decision) {
        if outcome == Outcome::NoAnswer {
            self.silent[self.current] = true;
        }
        match decision {
            Decision::Done => {}
            Decision::Failover { target } => self.current = target,
            Decision::Retry503 { target, .. } => {
                self.current = target;
                self.retries_503 += 1;
            }
        }
    }

    /// The first target after the current one, going round, that has not been silent; after
    /// an attempt at `current` with `current_silent` as its fate.
    fn next_alive(&self, current_silent: bool) -> Option<usize> {
        let n = self.silent.len();
        (1..=n)
            .map(|step| (self.current + step) % n)
            .filter(|&t| t != self.current || !current_silent)
            .find(|&t| !self.silent[t])
    }
}

/// What to do after an attempt at `state.current` got `outcome`, with `remaining` of the
/// request's time budget left.
pub fn decide(policy: &Policy, state: &State, outcome: Outcome, remaining: Duration) -> Decision {
    if remaining.is_zero() {
        return Decision::Done;
    }
    match outcome {
        Outcome::NoAnswer => {
            if !policy.failover {
                return Decision::Done;
            }
            match state.next_alive(true) {
                Some(target) => Decision::Failover { target },
                None => Decision::Done,
            }
        }
        Outcome::Answered {
            status: 503,
            retry_after: Some(after),
        } => {
            if state.retries_503 >= policy.max_503_retries {
                return Decision::Done;
            }
            let pause = after.min(policy.max_pause);
            // A retry must leave time for its own answer.
            if pause >= remaining {
                return Decision::Done;
            }
            match state.next_alive(false) {
                Some(target) => Decision::Retry503 { target, pause },
                None => Decision::Done,
            }
        }
        Outcome::Answered { .. } => Decision::Done,
    }
}

/// A `Retry-After` value in seconds (`"1"`, `"0"`); an HTTP date or anything else is `None`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(30);

    fn answered(status: u16, retry_after: Option<u64>) -> Outcome {
        Outcome::Answered {
            status,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    /// Runs the rules over `outcomes` (one per attempt) from `home`; the targets tried and the
    /// final decision.
    fn walk(policy: Policy, n: usize, home: usize, outcomes: &[Outcome]) -> (Vec<usize>, usize) {
        let mut state = State::new(n, home);
        let mut tried = vec![state.current];
        for (i, outcome) in outcomes.iter().enumerate() {
            let d = decide(&policy, &state, *outcome, LONG);
            state.apply(*outcome, d);
            if d == Decision::Done {
                return (tried, i + 1);
            }
            tried.push(state.current);
        }
        (tried, outcomes.len())
    }

    #[test]
    fn answers_other_than_503_with_retry_after_are_final() {
        let s = State::new(3, 0);
        for status in [200, 201, 400, 404, 409, 429, 500, 502, 504] {
            assert_eq!(
                decide(&Policy::RETRY, &s, answered(status, Some(1)), LONG),
                Decision::Done,
                "{status}"
            );
        }
        // A 503 without Retry-After is an answer like any other.
        assert_eq!(
            decide(&Policy::RETRY, &s, answered(503, None), LONG),
            Decision::Done
        );
    }

    #[test]
    fn no_answer_fails_over_to_each_other_target_once() {
        let s = State::new(3, 1);
        assert_eq!(
            decide(&Policy::RETRY, &s, Outcome::NoAnswer, LONG),
            Decision::Failover { target: 2 }
        );
        // Every target silent: three attempts, home first, then round the others, then done.
        let silent = [Outcome::NoAnswer; 5];
        assert_eq!(walk(Policy::RETRY, 3, 1, &silent), (vec![1, 2, 0], 3));
        // The second target answers: two attempts.
        let outcomes = [Outcome::NoAnswer, answered(200, None)];
        assert_eq!(walk(Policy::RETRY, 3, 2, &outcomes), (vec![2, 0], 2));
        // One target: nothing to fail over to.
        assert_eq!(walk(Policy::RETRY, 1, 0, &silent), (vec![0], 1));
    }

    #[test]
    fn a_503_with_retry_after_is_retried_a_few_times_on_the_next_target() {
        let s = State::new(3, 0);
        assert_eq!(
            decide(&Policy::RETRY, &s, answered(503, Some(1)), LONG),
            Decision::Retry503 {
                target: 1,
                pause: MAX_503_PAUSE
            }
        );
        // A short Retry-After is kept as is.
        assert_eq!(
            decide(&Policy::RETRY, &s, answered(503, Some(0)), LONG),
            Decision::Retry503 {
                target: 1,
                pause: Duration::ZERO
            }
        );
        // Always 503: the first attempt and MAX_503_RETRIES retries, round the targets.
        let busy = [answered(503, Some(1)); 10];
        let (tried, attempts) = walk(Policy::RETRY, 3, 0, &busy);
        assert_eq!(attempts, 1 + MAX_503_RETRIES as usize);
        assert_eq!(tried, vec![0, 1, 2, 0]);
        // One target: retried on itself.
        let (tried, _) = walk(Policy::RETRY, 1, 0, &busy);
        assert_eq!(tried, vec![0; 1 + MAX_503_RETRIES as usize]);
    }

    #[test]
    fn a_503_retry_skips_targets_that_gave_no_answer() {
        // 0 silent, then 1 and 2 busy by turns: never back to 0, and the failover does not
        // use up a 503 retry.
        let busy = [answered(503, Some(1)); 4];
        let outcomes = [&[Outcome::NoAnswer][..], &busy, &busy].concat();
        let (tried, attempts) = walk(Policy::RETRY, 3, 0, &outcomes);
        assert_eq!(tried, vec![0, 1, 2, 1, 2]);
        assert_eq!(attempts, 2 + MAX_503_RETRIES as usize);
        // A target that answered 503 may still take a failover; one silent never comes back.
        let outcomes = [
            Outcome::NoAnswer,
            answered(503, Some(1)),
            Outcome::NoAnswer,
            Outcome::NoAnswer,
            Outcome::NoAnswer,
        ];
        assert_eq!(walk(Policy::RETRY, 3, 0, &outcomes), (vec![0, 1, 2, 1], 4));
    }

    #[test]
    fn the_time_budget_bounds_every_retry() {
        let s = State::new(3, 0);
        for outcome in [Outcome::NoAnswer, answered(503, Some(1))] {
            assert_eq!(
                decide(&Policy::RETRY, &s, outcome, Duration::ZERO),
                Decision::Done
            );
        }
        // The pause would use up what is left.
        assert_eq!(
            decide(
                &Policy::RETRY,
                &s,
                answered(503, Some(1)),
                Duration::from_millis(200)
            ),
            Decision::Done
        );
        assert_eq!(
            decide(
                &Policy::RETRY,
                &s,
                answered(503, Some(1)),
                Duration::from_millis(300)
            ),
            Decision::Retry503 {
                target: 1,
                pause: MAX_503_PAUSE
            }
        );
    }

    #[test]
    fn never_retries_nothing() {
        let s = State::new(3, 0);
        for outcome in [Outcome::NoAnswer, answered(503, Some(1))] {
            assert_eq!(decide(&Policy::NEVER, &s, outcome, LONG), Decision::Done);
        }
    }

    #[test]
    fn retry_after_in_seconds_only() {
        assert_eq!(parse_retry_after("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
