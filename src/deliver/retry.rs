//! When a summary whose preparation failed (its period's query failed or timed out) is tried
//! again: a pure schedule, `now` injected, kept in memory by the deliverer. The first retry
//! comes after [`FIRST_WAIT`], each further one after twice the last wait, up to
//! [`LONGEST_WAIT`]. A query that failed at its limit would fail the same way every round, and
//! each attempt is another query of up to that limit on the server. After a restart the
//! schedule is empty and every pending summary is tried at once.

use crate::window::WindowId;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The wait after a summary's first failed preparation.
pub(super) const FIRST_WAIT: Duration = Duration::from_secs(30);
/// The longest wait between two attempts: a failing summary is still tried twice an hour.
pub(super) const LONGEST_WAIT: Duration = Duration::from_secs(30 * 60);

/// One failing summary's place in the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Failing {
    /// Failed preparations in a row (at least one).
    failures: u32,
    /// Not tried again before this.
    not_before: Instant,
}

/// The failing summaries, by period; a summary not in it is due.
#[derive(Debug, Default)]
pub(super) struct PrepareRetries {
    /// Each failing period's failures and next attempt.
    failing: BTreeMap<WindowId, Failing>,
}

/// The wait after `failures` failed preparations in a row: 30 s, 1 m, 2 m, … 30 m.
pub(super) fn wait_after(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1);
    let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
    FIRST_WAIT.saturating_mul(factor).min(LONGEST_WAIT)
}

impl PrepareRetries {
    /// Whether the summary of `period` may be prepared at `now`.
    pub(super) fn is_due(&self, period: WindowId, now: Instant) -> bool {
        self.failing
            .get(&period)
            .is_none_or(|f| now >= f.not_before)
    }

    /// Its preparation failed at `now`: returns how long until it is tried again.
    pub(super) fn failed(&mut self, period: WindowId, now: Instant) -> Duration {
        let failures = self
            .failing
            .get(&period)
            .map_or(1, |f| f.failures.saturating_add(1));
        let wait = wait_after(failures);
        // `Instant` has no saturating add; an unrepresentable instant (never, for 30 min) means
        // "not again in this process".
        let not_before = now.checked_add(wait).unwrap_or(now);
        self.failing.insert(
            period,
            Failing {
                failures,
                not_before,
            },
        );
        wait
    }

    /// Prepared (or no longer pending): forgotten.
    pub(super) fn settled(&mut self, period: WindowId) {
        self.failing.remove(&period);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_30_seconds_to_at_most_30_minutes() {
        let secs: Vec<u64> = (1..=9).map(|n| wait_after(n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1800, 1800, 1800]);
        assert_eq!(wait_after(u32::MAX), LONGEST_WAIT);
    }

    #[test]
    fn a_failed_summary_waits_and_others_do_not() {
        let t0 = Instant::now();
        let (a, b) = (WindowId(0), WindowId(6_000));
        let mut r = PrepareRetries::default();
        assert!(r.is_due(a, t0));
        assert_eq!(r.failed(a, t0), Duration::from_secs(30));
        assert!(!r.is_due(a, t0));
        assert!(!r.is_due(a, t0 + Duration::from_secs(29)));
        assert!(r.is_due(b, t0), "another period is not held back");
        let t1 = t0 + Duration::from_secs(30);
        assert!(r.is_due(a, t1));
        assert_eq!(r.failed(a, t1), Duration::from_secs(60));
        assert!(!r.is_due(a, t1 + Duration::from_secs(59)));
        assert!(r.is_due(a, t1 + Duration::from_secs(60)));
        r.settled(a);
        assert!(r.is_due(a, t1));
        assert_eq!(r.failed(a, t1), Duration::from_secs(30), "starts over");
    }

    #[test]
    fn a_long_failure_is_still_tried_every_30_minutes() {
        let mut now = Instant::now();
        let p = WindowId(0);
        let mut r = PrepareRetries::default();
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            last = r.failed(p, now);
            now += last;
            assert!(r.is_due(p, now));
        }
        assert_eq!(last, LONGEST_WAIT);
    }
}
