//! Baselines: how many sales each utility usually makes in one silence period at this time of
//! day: the same period (`[t − period, t)` at the same wall-clock time) on each of the previous
//! seven days, summed from the activity buckets in the store ([`crate::activity`]): only
//! sales that reached the totals, by the same rules as the reports.

use crate::store::{Store, StoreError};
use chrono::{DateTime, Days, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::time::Duration;

/// The days a baseline averages over.
pub const DAYS: u32 = 7;

/// Sales per utility over the baseline's periods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    /// Per utility (the name as the reconciliation normalises it), sales in all the periods.
    pub sales: BTreeMap<String, u64>,
    /// How many periods (days) the sales cover.
    pub days: u32,
}

impl Baseline {
    /// The utilities averaging at least `min_sales` per period, with that average (rounded
    /// half up, so never below `min_sales`).
    pub(crate) fn usual_at_least(&self, min_sales: u64) -> impl Iterator<Item = (&str, u64)> {
        let days = u64::from(self.days);
        self.sales
            .iter()
            .filter(move |&(_, &n)| days > 0 && n >= min_sales.saturating_mul(days))
            .map(move |(u, &n)| (u.as_str(), n.saturating_add(days / 2) / days))
    }
}

/// `t`'s wall-clock reading in `tz`, `days` days earlier: across a DST change 23 or 25 hours
/// back. A reading repeated that day is its first occurrence; one skipped is read with the
/// offset before the gap (an instant after it, as far past it as the reading is into it).
pub(crate) fn same_time_days_before(tz: Tz, t: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    let local = t.with_timezone(&tz).naive_local();
    let Some(earlier) = local.checked_sub_days(Days::new(u64::from(days))) else {
        return DateTime::<Utc>::MIN_UTC;
    };
    match tz.from_local_datetime(&earlier).earliest() {
        Some(x) => x.with_timezone(&Utc),
        None => {
            // In a gap: the offset of a day before it (zone transitions are months apart).
            let before = earlier
                .checked_sub_days(Days::new(1))
                .and_then(|b| tz.from_local_datetime(&b).earliest());
            let offset = before.map_or(0, |b| {
                i64::from(chrono::Offset::fix(b.offset()).local_minus_utc())
            });
            let utc = earlier.and_utc() - chrono::TimeDelta::seconds(offset);
            utc.max(DateTime::<Utc>::MIN_UTC)
        }
    }
}

/// The baseline's periods for `at`: `[t − period, t)` for `t` the same wall-clock time on each
/// of the previous [`DAYS`] days, most recent first.
pub fn periods(tz: Tz, at: DateTime<Utc>, period: Duration) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    (1..=DAYS)
        .map(|d| {
            let end = same_time_days_before(tz, at, d);
            (crate::window::earlier_by(end, period), end)
        })
        .collect()
}

/// The baseline for the period ending at `at`, from the activity the store holds (the sales
/// the stream counted, and the import's for the days before the first start): seven ranges of
/// buckets, read in place. No query.
pub(crate) fn read(
    store: &Store,
    tz: Tz,
    at: DateTime<Utc>,
    period: Duration,
) -> Result<Baseline, StoreError> {
    let mut sales: BTreeMap<String, u64> = BTreeMap::new();
    for (from, to) in periods(tz, at, period) {
        for (utility, n) in store.sales_between(from, to)? {
            let c = sales.entry(utility).or_default();
            *c = c.saturating_add(n);
        }
    }
    Ok(Baseline { sales, days: DAYS })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_same_wall_clock_time_across_dst() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 2025-11-03 12:00 EST; the day before (2025-11-02) had 25 hours.
        let t = at("2025-11-03T17:00:00Z");
        assert_eq!(same_time_days_before(ny, t, 1), at("2025-11-02T17:00:00Z"));
        assert_eq!(same_time_days_before(ny, t, 2), at("2025-11-01T16:00:00Z"));
        // 01:30 on 2025-11-03: a week back, 2025-10-27 01:30 EDT.
        let t = at("2025-11-03T06:30:00Z");
        assert_eq!(same_time_days_before(ny, t, 7), at("2025-10-27T05:30:00Z"));
        // 02:30 on 2025-03-10 was skipped the day before: read with the offset before (EST).
        let t = at("2025-03-10T06:30:00Z");
        assert_eq!(same_time_days_before(ny, t, 1), at("2025-03-09T07:30:00Z"));
        // 01:30 on 2025-11-02 is repeated: its first occurrence (EDT).
        let t = at("2025-11-03T06:30:00Z");
        assert_eq!(same_time_days_before(ny, t, 1), at("2025-11-02T05:30:00Z"));
        // At the start of chrono's range: clamped, never a panic.
        let utc: Tz = "UTC".parse().unwrap();
        assert_eq!(
            same_time_days_before(utc, DateTime::<Utc>::MIN_UTC, 7),
            DateTime::<Utc>::MIN_UTC
        );
    }

    #[test]
    fn seven_periods_ending_at_the_same_time() {
        let lagos: Tz = "Africa/Lagos".parse().unwrap();
        let p = periods(lagos, at("2025-05-29T13:05:00Z"), Duration::from_secs(1800));
        assert_eq!(p.len(), 7);
        assert_eq!(
            p[0],
            (at("2025-05-28T12:35:00Z"), at("2025-05-28T13:05:00Z"))
        );
        assert_eq!(
            p[6],
            (at("2025-05-22T12:35:00Z"), at("2025-05-22T13:05:00Z"))
        );
    }

    #[test]
    fn usual_is_the_rounded_average_and_never_below_the_minimum() {
        let b = Baseline {
            sales: [("IKEDC", 294), ("EKEDC", 35), ("AEDC", 34), ("JED", 0)]
                .into_iter()
                .map(|(u, n)| (u.to_owned(), n))
                .collect(),
            days: 7,
        };
        let v: Vec<_> = b.usual_at_least(5).collect();
        assert_eq!(v, [("EKEDC", 5), ("IKEDC", 42)]);
        let none = Baseline::default();
        assert_eq!(none.usual_at_least(0).count(), 0);
    }
}
