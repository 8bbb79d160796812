//! Windows: ids, bounds and running totals. Pure: no I/O, no clock.
//!
//! A window is half-open `[start, end)`. Windows follow the local wall clock: their bounds are
//! the local times that are whole multiples of the length from local midnight (00:00, 06:00,
//! 12:00, 18:00 for 6 h), so a window that spans a DST change is longer or shorter than its
//! nominal length, and every day's windows keep their names. A wall-clock bound that falls in a
//! skipped hour moves to the first instant after the gap (several such bounds collapse into one,
//! so no window is empty); in a repeated hour the first occurrence is the bound.
//!
//! The arithmetic is on whole Unix seconds in `i64` (every bound is a whole second: lengths
//! are whole seconds and zone offsets and transitions are too), so nothing can overflow for any
//! instant chrono can hold; bounds beyond chrono's range are clamped to it only at the end.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

const DAY_SECS: i64 = 86_400;
const MIN_SECS: i64 = DateTime::<Utc>::MIN_UTC.timestamp();
const MAX_SECS: i64 = DateTime::<Utc>::MAX_UTC.timestamp();
/// Zone offsets are under a day (chrono's `FixedOffset` cannot hold more), so the instant of
/// any wall-clock time lies within this distance of the same reading taken as UTC.
const SEARCH_SECS: i64 = 2 * DAY_SECS;

/// How windows are cut: their length and the time zone whose wall clock they follow.
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

    /// The window that contains `t`. (`DateTime::<Utc>::MAX_UTC` itself is the one instant no
    /// window contains: the last window ends there, exclusive.)
    pub fn window_of(&self, t: DateTime<Utc>) -> Window {
        // Bounds are whole seconds, so comparing them with t's whole second is exact.
        let ts = t.timestamp();
        let len = self.len_secs();
        // Wall-clock bound number j is local time j × length (naive seconds since 1970-01-01,
        // whose midnights are multiples of the length because the length divides a day).
        let j = (ts + self.offset_secs(ts)).div_euclid(len);
        let (mut start, mut end) = (self.bound(j), self.bound(j + 1));
        if !(start <= ts && ts < end) {
            // Near a transition t's clock reading need not name its window (01:10 read the
            // second time lies after the 01:30 bound, the first occurrence): bisect for the
            // last bound at or before t. Bounds never decrease with j, and a bound lies within SEARCH_SECS of its
            // wall-clock reading, so the answer is within this range of j.
            let (mut lo, mut hi) = (j - SEARCH_SECS / len - 1, j + SEARCH_SECS / len + 1);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if self.bound(mid) <= ts {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            (start, end) = (self.bound(lo), self.bound(hi));
        }
        Window {
            start: clamped(start),
            end: clamped(end),
        }
    }

    /// The window right after `w`. (The last window chrono can represent is its own successor.)
    pub fn next(&self, w: &Window) -> Window {
        self.window_of(w.end)
    }

    /// The window right before `w` (comparisons). (The first window chrono can represent is
    /// its own predecessor.)
    pub fn previous(&self, w: &Window) -> Window {
        match w.start.checked_sub_signed(TimeDelta::seconds(1)) {
            Some(before) => self.window_of(before),
            None => *w,
        }
    }

    /// The window whose wall-clock start is `w`'s, `days` days earlier in the zone
    /// (comparisons: "the same window yesterday"). Counted in wall-clock bounds, not elapsed
    /// time: across a DST change the two windows start at the same local time, 23 or 25 hours
    /// apart, and may differ in length. When that reading was skipped on the earlier day the
    /// window is the one that starts right after the gap (how every bound in a gap resolves).
    pub fn days_before(&self, w: &Window, days: u32) -> Window {
        let ts = w.start.timestamp();
        let len = self.len_secs();
        // w's own bound number: how `window_of` numbers the bound at w.start.
        let j = ts.saturating_add(self.offset_secs(ts)).div_euclid(len);
        // The length divides a day, so a day is a whole number of bounds.
        let back = i64::from(days).saturating_mul(DAY_SECS / len);
        self.window_of(clamped(self.bound(j.saturating_sub(back))))
    }

    /// The window that starts exactly at `start`, if `start` is a window boundary.
    pub(crate) fn starting_at(&self, start: DateTime<Utc>) -> Option<Window> {
        let w = self.window_of(start);
        (w.start == start).then_some(w)
    }

    fn len_secs(&self) -> i64 {
        self.length.num_seconds()
    }

    /// The instant (Unix seconds, possibly beyond chrono's range) of wall-clock bound `j`.
    fn bound(&self, j: i64) -> i64 {
        let wall = j.saturating_mul(self.len_secs());
        let Some(local) = naive(wall) else {
            // Beyond chrono's range zone data is constant: the offset at the edge applies.
            return wall.saturating_sub(self.offset_secs(wall));
        };
        match self.tz.offset_from_local_datetime(&local) {
            LocalResult::Single(o) => wall - secs(&o),
            // A repeated hour: the first occurrence, i.e. the larger offset.
            LocalResult::Ambiguous(a, b) => wall - secs(&a).max(secs(&b)),
            LocalResult::None => self.gap_end(wall),
        }
    }

    /// The first instant whose clock reads later than `wall`, a time in a skipped hour: the
    /// transition that skipped it.
    fn gap_end(&self, wall: i64) -> i64 {
        let reads = |u: i64| u + self.offset_secs(u);
        // reads(lo) <= wall < reads(hi) because offsets are under a day.
        let (mut lo, mut hi) = (wall - SEARCH_SECS, wall + SEARCH_SECS);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if reads(mid) > wall {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }

    /// The zone's offset at instant `utc_secs`; beyond chrono's range, the one at its edge.
    fn offset_secs(&self, utc_secs: i64) -> i64 {
        naive(utc_secs.clamp(MIN_SECS, MAX_SECS))
            .map_or(0, |utc| secs(&self.tz.offset_from_utc_datetime(&utc)))
    }
}

fn naive(secs: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp(secs, 0).map(|t| t.naive_utc())
}

fn secs(offset: &impl Offset) -> i64 {
    i64::from(offset.fix().local_minus_utc())
}

/// `t` plus a configured span, clamped to chrono's last instant (the span is bounded, but `t`
/// may be a checkpoint's window anywhere in chrono's range): when a window closes (end +
/// grace).
pub fn later_by(t: DateTime<Utc>, span: std::time::Duration) -> DateTime<Utc> {
    TimeDelta::from_std(span)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t` minus a configured span, clamped to chrono's first instant: the catch-up and
/// restatement cut-offs (now − max_catchup, now − horizon).
pub fn earlier_by(t: DateTime<Utc>, span: std::time::Duration) -> DateTime<Utc> {
    TimeDelta::from_std(span)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A bound as a `DateTime`, clamped to chrono's range: the first and last windows end there.
fn clamped(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or(if secs < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
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
    pub(crate) fn merge_changes(&mut self, other: &Tally) {
        self.revenue = self
            .revenue
            .checked_add(other.revenue)
            .unwrap_or(self.revenue);
        self.count = self.count.saturating_add(other.count);
    }

    /// One more change moving `delta` (a signed estimate; an overflowing delta is dropped:
    /// these figures are never posted, the database is asked instead).
    pub(crate) fn shift(&mut self, delta: Decimal) {
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

    /// Adds a utility's sales.
    pub(crate) fn add_tally(&mut self, utility: &str, t: &Tally) -> Result<(), Overflow> {
        match self.by_utility.get_mut(utility) {
            Some(sum) => sum.merge(t),
            None => {
                self.by_utility.insert(utility.to_owned(), *t);
                Ok(())
            }
        }
    }

    /// Adds another window's figures, utility by utility (a period's sum).
    pub(crate) fn merge(&mut self, other: &Totals) -> Result<(), Overflow> {
        for (name, t) in &other.by_utility {
            self.by_utility.entry(name.clone()).or_default().merge(t)?;
        }
        Ok(())
    }

    /// Utilities by revenue, highest first; ties by name so the order is stable.
    pub(crate) fn ranked(&self) -> Vec<(&str, Tally)> {
        let mut rows: Vec<_> = self
            .by_utility
            .iter()
            .map(|(u, t)| (u.as_str(), *t))
            .collect();
        rows.sort_by(|a, b| b.1.revenue.cmp(&a.1.revenue).then_with(|| a.0.cmp(b.0)));
        rows
    }
}

/// How a window's live totals stood when it closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedBy {
    /// The stream had passed the window's end (+ grace): its totals hold every sale
    /// committed in time.
    #[default]
    Stream,
    /// The stream had not caught up within its bound; sales still behind were not counted.
    Clock { behind_secs: u64 },
    /// The stream was down.
    Disconnected,
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
    pub recomputed: bool,
    /// When rebuilt: the cluster time the database was read at. Events up to it are in the
    /// totals already, also after a restart that replays them.
    pub read_at: Option<u64>,
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
            read_at: None,
        }
    }

    pub(crate) fn is_partial(&self) -> bool {
        self.streaming_since > self.window.start
    }
}

#[cfg(test)]
mod tests;
