//! Windows: ids, bounds and running totals. Pure: no I/O, no clock.
//!
//! A window is half-open `[start, end)`. Windows tile each local day from local midnight in
//! steps of the configured length; on a day that is not 24 h long (DST) the last window is cut
//! at the next midnight, so every instant belongs to exactly one window.

use chrono::{DateTime, Days, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// How windows are cut: their length and the time zone whose midnight they align to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSpec {
    length: TimeDelta,
    tz: Tz,
}

impl WindowSpec {
    /// `length_secs` must divide 24 h.
    pub fn new(length_secs: u64, tz: Tz) -> Result<Self, String> {
        if length_secs == 0 || 86_400 % length_secs != 0 {
            return Err(format!(
                "window length of {length_secs} s does not divide 24 h; use e.g. 6h, 4h, 1h, 30m, 10m, 20s"
            ));
        }
        Ok(Self {
            length: TimeDelta::seconds(length_secs as i64),
            tz,
        })
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    pub fn length(&self) -> TimeDelta {
        self.length
    }

    /// The window that contains `t`.
    pub fn window_of(&self, t: DateTime<Utc>) -> Window {
        let date = t.with_timezone(&self.tz).date_naive();
        let midnight = self.local_midnight(date);
        let next_midnight = self.local_midnight(date + Days::new(1));
        let k = (t - midnight)
            .num_seconds()
            .div_euclid(self.length.num_seconds());
        let start = midnight + self.length * k as i32;
        Window {
            start,
            end: (start + self.length).min(next_midnight),
        }
    }

    /// The window right after `w`.
    pub fn next(&self, w: &Window) -> Window {
        self.window_of(w.end)
    }

    /// The window that starts exactly at `start`, if `start` is a window boundary.
    pub fn starting_at(&self, start: DateTime<Utc>) -> Option<Window> {
        let w = self.window_of(start);
        (w.start == start).then_some(w)
    }

    fn local_midnight(&self, date: chrono::NaiveDate) -> DateTime<Utc> {
        let local = date.and_time(NaiveTime::MIN);
        // A zone that skips midnight (DST at 00:00) starts its day at the first valid instant.
        match self.tz.from_local_datetime(&local).earliest() {
            Some(t) => t.with_timezone(&Utc),
            None => self
                .tz
                .from_local_datetime(&(local + TimeDelta::hours(1)))
                .earliest()
                .map_or_else(|| Utc.from_utc_datetime(&local), |t| t.with_timezone(&Utc)),
        }
    }
}

/// One window, `[start, end)`. Its id is its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn id(&self) -> WindowId {
        WindowId(self.start.timestamp_millis())
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

/// A window's identity: its start in Unix milliseconds. Orders like time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WindowId(pub i64);

impl WindowId {
    pub fn start(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }
}

impl fmt::Display for WindowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.start().format("%Y-%m-%dT%H:%M:%SZ"))
    }
}

/// Revenue and sale count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    #[serde(with = "rust_decimal::serde::str")]
    pub revenue: Decimal,
    pub count: u64,
}

impl Tally {
    pub fn add(&mut self, amount: Decimal) -> Result<(), Overflow> {
        self.revenue = self.revenue.checked_add(amount).ok_or(Overflow)?;
        self.count += 1;
        Ok(())
    }

    /// Adds another tally of changes (saturating: these figures are counted, never posted).
    pub fn merge_changes(&mut self, other: &Tally) {
        self.revenue = self
            .revenue
            .checked_add(other.revenue)
            .unwrap_or(self.revenue);
        self.count = self.count.saturating_add(other.count);
    }

    /// One more change moving `delta` (a signed estimate; an overflowing delta is dropped:
    /// these figures are never posted, the database is asked instead).
    pub fn shift(&mut self, delta: Decimal) {
        self.revenue = self.revenue.checked_add(delta).unwrap_or(self.revenue);
        self.count = self.count.saturating_add(1);
    }

    fn merge(&mut self, other: &Tally) -> Result<(), Overflow> {
        self.revenue = self.revenue.checked_add(other.revenue).ok_or(Overflow)?;
        self.count += other.count;
        Ok(())
    }
}

/// A sum would leave `Decimal`'s range; the sale is skipped rather than the total corrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("total would overflow")]
pub struct Overflow;

/// Per-utility tallies of one window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub by_utility: BTreeMap<String, Tally>,
}

impl Totals {
    pub fn add(&mut self, utility: &str, amount: Decimal) -> Result<(), Overflow> {
        // Look up by &str first: no allocation for utilities already seen.
        match self.by_utility.get_mut(utility) {
            Some(t) => t.add(amount),
            None => {
                let mut t = Tally::default();
                t.add(amount)?;
                self.by_utility.insert(utility.to_owned(), t);
                Ok(())
            }
        }
    }

    /// Takes one sale back out (it was refunded, edited or moved). A utility this window never
    /// counted (the stream began mid-window) is left alone: the report asks the database.
    pub fn remove(&mut self, utility: &str, amount: Decimal) {
        if let Some(t) = self.by_utility.get_mut(utility) {
            t.revenue = t.revenue.checked_sub(amount).unwrap_or(t.revenue);
            t.count = t.count.saturating_sub(1);
            if t.count == 0 && t.revenue.is_zero() {
                self.by_utility.remove(utility);
            }
        }
    }

    pub fn total(&self) -> Tally {
        let mut sum = Tally::default();
        for t in self.by_utility.values() {
            // Each utility's revenue is within range, but their sum need not be.
            if sum.merge(t).is_err() {
                sum.revenue = Decimal::MAX;
            }
        }
        sum
    }

    pub fn is_empty(&self) -> bool {
        self.by_utility.is_empty()
    }

    /// Utilities by revenue, highest first; ties by name so the order is stable.
    pub fn ranked(&self) -> Vec<(&str, Tally)> {
        let mut rows: Vec<_> = self
            .by_utility
            .iter()
            .map(|(u, t)| (u.as_str(), *t))
            .collect();
        rows.sort_by(|a, b| b.1.revenue.cmp(&a.1.revenue).then_with(|| a.0.cmp(b.0)));
        rows
    }
}

/// The live state of one open window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenWindow {
    pub window: Window,
    pub totals: Totals,
    /// When streaming began for this window: later than `window.start` means the stream saw
    /// only part of it (first start), so a difference at reconciliation is expected.
    pub streaming_since: DateTime<Utc>,
    pub events_applied: u64,
    pub last_event_at: Option<DateTime<Utc>>,
    /// Totals were rebuilt from the database after the change-stream history was lost.
    #[serde(default)]
    pub recomputed: bool,
}

impl OpenWindow {
    pub fn new(window: Window, streaming_since: DateTime<Utc>) -> Self {
        Self {
            window,
            totals: Totals::default(),
            streaming_since,
            events_applied: 0,
            last_event_at: None,
            recomputed: false,
        }
    }

    pub fn is_partial(&self) -> bool {
        self.streaming_since > self.window.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn six_hour_windows_are_half_open_and_aligned() {
        let spec = WindowSpec::new(6 * 3600, Tz::UTC).unwrap();
        let w = spec.window_of(utc("2025-05-29T18:00:00Z"));
        assert_eq!(
            (w.start, w.end),
            (utc("2025-05-29T18:00:00Z"), utc("2025-05-30T00:00:00Z"))
        );
        let w = spec.window_of(utc("2025-05-29T17:59:59.999Z"));
        assert_eq!(w.start, utc("2025-05-29T12:00:00Z"));
        assert!(!w.contains(utc("2025-05-29T18:00:00Z")));
        assert_eq!(spec.next(&w).start, utc("2025-05-29T18:00:00Z"));
    }

    #[test]
    fn windows_align_to_local_midnight() {
        let spec = WindowSpec::new(6 * 3600, Tz::Africa__Lagos).unwrap();
        // 23:30 UTC is 00:30 in Lagos (UTC+1): the local night window starts 23:00 UTC.
        let w = spec.window_of(utc("2025-05-29T23:30:00Z"));
        assert_eq!(
            (w.start, w.end),
            (utc("2025-05-29T23:00:00Z"), utc("2025-05-30T05:00:00Z"))
        );
    }

    #[test]
    fn dst_days_are_tiled_without_gaps() {
        let spec = WindowSpec::new(6 * 3600, Tz::Europe__London).unwrap();
        let mut w = spec.window_of(Utc.with_ymd_and_hms(2025, 3, 30, 0, 0, 0).unwrap());
        let day_end = Utc.with_ymd_and_hms(2025, 3, 30, 23, 0, 0).unwrap(); // 00:00 BST next day
        let mut n = 0;
        while w.end <= day_end {
            let next = spec.next(&w);
            assert_eq!(next.start, w.end);
            w = next;
            n += 1;
        }
        assert_eq!(n, 4);
        assert_eq!(w.start, day_end);
    }

    #[test]
    fn lengths_must_divide_a_day() {
        assert!(WindowSpec::new(7 * 3600, Tz::UTC).is_err());
        assert!(WindowSpec::new(0, Tz::UTC).is_err());
        assert!(WindowSpec::new(20, Tz::UTC).is_ok());
        let spec = WindowSpec::new(20, Tz::UTC).unwrap();
        assert!(spec.starting_at(utc("2025-05-29T12:00:20Z")).is_some());
        assert!(spec.starting_at(utc("2025-05-29T12:00:21Z")).is_none());
    }

    #[test]
    fn totals_rank_by_revenue_then_name() {
        let mut t = Totals::default();
        t.add("EKEDC", Decimal::from(10)).unwrap();
        t.add("AEDC", Decimal::from(10)).unwrap();
        t.add("IKEDC", Decimal::from(25)).unwrap();
        t.add("IKEDC", Decimal::from(1)).unwrap();
        let names: Vec<_> = t.ranked().into_iter().map(|(u, _)| u).collect();
        assert_eq!(names, ["IKEDC", "AEDC", "EKEDC"]);
        assert_eq!(
            t.total(),
            Tally {
                revenue: Decimal::from(46),
                count: 4
            }
        );
        assert_eq!(
            t.add("X", Decimal::MAX).and(t.add("X", Decimal::MAX)),
            Err(Overflow)
        );
    }
}
