//! Summary periods (`POWER_REVENUE_SUMMARY`): a day, or another multiple of the window length
//! that divides a day. Pure: no I/O, no clock.
//!
//! Periods are cut exactly like windows ([`WindowSpec`], whose length is the period's): half-open,
//! on the local wall clock of the configured zone, aligned to local midnight, so a `1d` period
//! is a calendar day and lasts 23 or 25 hours across a DST change. Because the period is a
//! whole number of windows and both divide a day, every period bound is a window bound (the
//! same wall-clock reading, resolved the same way), so a period is exactly the windows in it.

use crate::window::{Window, WindowSpec};

const DAY_SECS: u64 = 86_400;

/// How summaries are cut: the period and the windows inside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeriodSpec {
    /// Periods as windows of the period's length.
    period: WindowSpec,
    /// The report windows.
    window: WindowSpec,
}

impl PeriodSpec {
    /// `period_secs` must be a multiple of the window length that divides 24 h.
    pub fn new(period_secs: u64, window: WindowSpec) -> Result<Self, String> {
        let window_secs = window.length().num_seconds().unsigned_abs();
        let show = |secs: u64| humantime::format_duration(std::time::Duration::from_secs(secs));
        if period_secs == 0 || window_secs == 0 || period_secs % window_secs != 0 {
            return Err(format!(
                "a summary period of {} is not a multiple of the window ({}); use e.g. 1d, or off",
                show(period_secs),
                show(window_secs)
            ));
        }
        if DAY_SECS % period_secs != 0 {
            return Err(format!(
                "a summary period of {} does not divide 24 h; use e.g. 1d, 12h, or off",
                show(period_secs)
            ));
        }
        Ok(Self {
            period: WindowSpec::new(period_secs, window.tz())?,
            window,
        })
    }

    /// Whether periods are calendar days ("📆 Daily Revenue Summary").
    pub fn is_daily(&self) -> bool {
        self.length_secs() == DAY_SECS
    }

    /// The nominal length, in seconds (a DST day is longer or shorter).
    pub fn length_secs(&self) -> u64 {
        self.period.length().num_seconds().unsigned_abs()
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.period.tz()
    }

    /// The period holding window `w`.
    pub fn period_of(&self, w: &Window) -> Window {
        self.period.window_of(w.start)
    }

    /// The period `w` is the last window of, if it is: its report's delivery is what makes
    /// the period's summary due.
    pub fn ending_with(&self, w: &Window) -> Option<Window> {
        let p = self.period_of(w);
        (p.end == w.end).then_some(p)
    }

    /// The period before `p` (the summary's comparison).
    pub fn previous(&self, p: &Window) -> Window {
        self.period.previous(p)
    }

    /// The windows of period `p`, in order. At most a (25-hour) day's worth; the bound also
    /// stops at chrono's last window, which is its own successor.
    pub fn windows_in(&self, p: &Window) -> Vec<Window> {
        let len = self.window.length().num_seconds().unsigned_abs().max(1);
        let most = usize::try_from(2 * DAY_SECS / len + 2).unwrap_or(usize::MAX);
        let mut out = vec![];
        let mut w = self.window.window_of(p.start);
        while w.start < p.end && out.len() < most {
            out.push(w);
            let next = self.window.next(&w);
            if next == w {
                break;
            }
            w = next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeDelta, Utc};
    use chrono_tz::Tz;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn spec(period: u64, window: u64, tz: Tz) -> PeriodSpec {
        PeriodSpec::new(period, WindowSpec::new(window, tz).unwrap()).unwrap()
    }

    #[test]
    fn a_period_is_a_multiple_of_the_window_that_divides_a_day() {
        let six_hours = WindowSpec::new(6 * 3600, Tz::UTC).unwrap();
        assert!(PeriodSpec::new(86_400, six_hours).is_ok());
        assert!(PeriodSpec::new(12 * 3600, six_hours).is_ok());
        assert!(PeriodSpec::new(6 * 3600, six_hours).is_ok());
        for bad in [0, 3 * 3600, 9 * 3600, 2 * 86_400, 18 * 3600] {
            assert!(PeriodSpec::new(bad, six_hours).is_err(), "{bad}");
        }
        // Short windows for tests: 6 s of 2 s windows.
        let two = WindowSpec::new(2, Tz::UTC).unwrap();
        assert!(PeriodSpec::new(6, two).is_ok());
        assert!(PeriodSpec::new(7, two).is_err());
    }

    #[test]
    fn a_day_in_lagos_starts_at_local_midnight() {
        let s = spec(86_400, 6 * 3600, Tz::Africa__Lagos);
        let w = WindowSpec::new(6 * 3600, Tz::Africa__Lagos)
            .unwrap()
            .window_of(at("2025-05-29T20:00:00Z"));
        let day = s.period_of(&w);
        // Lagos is UTC+1 all year.
        assert_eq!(day.start, at("2025-05-28T23:00:00Z"));
        assert_eq!(day.end, at("2025-05-29T23:00:00Z"));
        assert!(s.is_daily());
        let windows = s.windows_in(&day);
        assert_eq!(windows.len(), 4);
        assert_eq!(windows[0].start, day.start);
        assert_eq!(windows[3].end, day.end);
        assert_eq!(s.ending_with(&windows[3]), Some(day));
        assert_eq!(s.ending_with(&windows[2]), None);
        assert_eq!(s.previous(&day).end, day.start);
    }

    #[test]
    fn london_dst_days_last_23_and_25_hours_and_hold_their_windows() {
        let s = spec(86_400, 3600, Tz::Europe__London);
        let hourly = WindowSpec::new(3600, Tz::Europe__London).unwrap();
        // 2025-03-30: clocks go forward at 01:00 GMT.
        let spring = s.period_of(&hourly.window_of(at("2025-03-30T12:00:00Z")));
        assert_eq!(spring.start, at("2025-03-30T00:00:00Z"));
        assert_eq!(spring.end, at("2025-03-30T23:00:00Z"));
        assert_eq!(spring.end - spring.start, TimeDelta::hours(23));
        assert_eq!(s.windows_in(&spring).len(), 23);
        // 2025-10-26: clocks go back at 02:00 BST.
        let autumn = s.period_of(&hourly.window_of(at("2025-10-26T12:00:00Z")));
        assert_eq!(autumn.start, at("2025-10-25T23:00:00Z"));
        assert_eq!(autumn.end, at("2025-10-27T00:00:00Z"));
        // The repeated 01:00 bound is its first occurrence: 01:00 – 02:00 lasts two hours.
        assert_eq!(s.windows_in(&autumn).len(), 24);
        let windows = s.windows_in(&autumn);
        assert!(windows.windows(2).all(|p| p[0].end == p[1].start));
        assert_eq!(s.ending_with(windows.last().unwrap()), Some(autumn));
        // The day before the autumn change is an ordinary 24 hours before it.
        let before = s.previous(&autumn);
        assert_eq!(before.end, autumn.start);
        assert_eq!(before.end - before.start, TimeDelta::hours(24));
    }

    #[test]
    fn short_periods_for_tests() {
        let s = spec(6, 2, Tz::UTC);
        let two = WindowSpec::new(2, Tz::UTC).unwrap();
        let w = two.window_of(at("2025-05-29T12:00:04Z"));
        let p = s.period_of(&w);
        assert_eq!(p.start, at("2025-05-29T12:00:00Z"));
        assert_eq!(p.end, at("2025-05-29T12:00:06Z"));
        assert_eq!(s.ending_with(&w), Some(p));
        assert_eq!(s.windows_in(&p).len(), 3);
        assert!(!s.is_daily());
        assert_eq!(s.length_secs(), 6);
    }
}
