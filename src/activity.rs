//! Activity: how many sales each utility made, in short buckets of time (a minute, or shorter
//! for windows whose length is not a whole number of minutes). Counted by the fold as it adds a
//! sale to the live totals, so only sales that reached the totals, by the same rules, are in
//! it; kept with the checkpoint that covers them (never counted twice across a restart) and,
//! for the days before the service's first start, by the one-time import. Silence baselines
//! are read from it. Pure.

use crate::window::WindowSpec;
use std::collections::BTreeMap;
use std::time::Duration;

/// The longest bucket.
const MAX_BUCKET_MS: i64 = 60_000;

/// Sales per bucket (its start, Unix ms) and utility.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    pub by_bucket: BTreeMap<i64, BTreeMap<String, u64>>,
}

impl Activity {
    /// One more sale of `utility` in the bucket starting at `bucket_ms`.
    pub(crate) fn count(&mut self, bucket_ms: i64, utility: &str) {
        self.add(bucket_ms, utility, 1);
    }

    /// `n` more sales of `utility` in the bucket starting at `bucket_ms`.
    pub fn add(&mut self, bucket_ms: i64, utility: &str, n: u64) {
        let bucket = self.by_bucket.entry(bucket_ms).or_default();
        match bucket.get_mut(utility) {
            Some(c) => *c = c.saturating_add(n),
            None => {
                bucket.insert(utility.to_owned(), n);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_bucket.is_empty()
    }
}

/// The bucket length for windows of `spec` and silences of `silence`, in ms: the greatest
/// divisor of a minute that also divides the window, so that every bucket lies in one window
/// (windows start at local midnight, a whole minute in UTC, plus whole window lengths), and
/// the silence period, so that a baseline's range is a whole number of buckets.
pub fn bucket_ms(spec: &WindowSpec, silence: Option<Duration>) -> i64 {
    let window_ms = spec.length().num_milliseconds().max(1);
    let silence_ms = silence.map_or(MAX_BUCKET_MS, |s| {
        i64::try_from(s.as_millis()).unwrap_or(MAX_BUCKET_MS)
    });
    gcd(gcd(window_ms, MAX_BUCKET_MS), silence_ms).max(1)
}

/// The start of the bucket holding `at_ms`.
pub fn bucket_of(at_ms: i64, bucket_ms: i64) -> i64 {
    at_ms - at_ms.rem_euclid(bucket_ms.max(1))
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;

    fn spec(secs: u64) -> WindowSpec {
        WindowSpec::new(secs, Tz::UTC).unwrap()
    }

    #[test]
    fn buckets_are_a_minute_or_what_divides_the_window() {
        let thirty_minutes = Some(Duration::from_secs(1800));
        assert_eq!(bucket_ms(&spec(6 * 3600), thirty_minutes), 60_000);
        assert_eq!(bucket_ms(&spec(600), None), 60_000);
        assert_eq!(bucket_ms(&spec(90), None), 30_000);
        assert_eq!(bucket_ms(&spec(20), None), 20_000);
        assert_eq!(bucket_ms(&spec(5), None), 5_000);
        // A silence shorter than the window: buckets as fine as it.
        assert_eq!(bucket_ms(&spec(10), Some(Duration::from_secs(5))), 5_000);
        assert_eq!(bucket_ms(&spec(600), Some(Duration::from_secs(90))), 30_000);
        assert_eq!(bucket_of(125_000, 60_000), 120_000);
        assert_eq!(bucket_of(-1, 60_000), -60_000);
    }

    #[test]
    fn counts_add_up_per_bucket_and_utility() {
        let mut a = Activity::default();
        a.count(0, "IKEDC");
        a.count(0, "IKEDC");
        a.add(60_000, "EKEDC", u64::MAX);
        a.count(60_000, "EKEDC");
        assert_eq!(a.by_bucket[&0]["IKEDC"], 2);
        assert_eq!(a.by_bucket[&60_000]["EKEDC"], u64::MAX);
    }
}
