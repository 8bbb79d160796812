//! The windows a report compares with: the one before, and the same wall-clock start days
//! earlier, across DST changes.

use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn ny(length_secs: u64) -> WindowSpec {
    WindowSpec::new(length_secs, chrono_tz::America::New_York).unwrap()
}

#[test]
fn previous_is_the_window_that_ends_at_the_start() {
    let spec = WindowSpec::new(600, chrono_tz::Africa::Lagos).unwrap();
    let w = spec.window_of(utc("2025-05-29T10:25:00Z"));
    let p = spec.previous(&w);
    assert_eq!(p.end, w.start);
    assert_eq!(p.start, utc("2025-05-29T10:10:00Z"));
    // Across spring-forward the 00:00–06:00 window lasts 5 h; the one after follows it.
    let spec = ny(6 * 3600);
    let w = spec.window_of(utc("2025-03-09T11:00:00Z"));
    assert_eq!(
        spec.previous(&w),
        Window {
            start: utc("2025-03-09T05:00:00Z"),
            end: utc("2025-03-09T10:00:00Z")
        }
    );
}

#[test]
fn same_window_days_before_keeps_the_wall_clock() {
    let spec = WindowSpec::new(6 * 3600, chrono_tz::Africa::Lagos).unwrap();
    let w = spec.window_of(utc("2025-05-29T13:00:00Z"));
    let y = spec.days_before(&w, 1);
    assert_eq!(y.start, utc("2025-05-28T11:00:00Z"));
    assert_eq!(spec.days_before(&w, 7).start, utc("2025-05-22T11:00:00Z"));
    assert_eq!(spec.days_before(&w, 0), w);
}

#[test]
fn same_window_yesterday_across_dst() {
    let spec = ny(6 * 3600);
    // Monday 00:00 EDT (04:00Z); Sunday's 00:00 was still EST (05:00Z): 23 h earlier, and
    // Sunday's night window is 5 h long.
    let w = spec.window_of(utc("2025-03-10T05:00:00Z"));
    assert_eq!(w.start, utc("2025-03-10T04:00:00Z"));
    let y = spec.days_before(&w, 1);
    assert_eq!(
        y,
        Window {
            start: utc("2025-03-09T05:00:00Z"),
            end: utc("2025-03-09T10:00:00Z")
        }
    );
    // Autumn: Sunday's night window is 7 h; Monday's 06:00 EST is 25 h after Sunday's EDT.
    let w = spec.window_of(utc("2025-11-03T12:00:00Z"));
    assert_eq!(w.start, utc("2025-11-03T11:00:00Z"));
    assert_eq!(spec.days_before(&w, 1).start, utc("2025-11-02T11:00:00Z"));
    assert_eq!(spec.days_before(&w, 1).start, utc("2025-11-02T11:00:00Z"));
    // A week back lands on the same local reading, whatever DST did in between.
    let w = spec.window_of(utc("2025-03-12T13:00:00Z"));
    assert_eq!(spec.days_before(&w, 7).start, utc("2025-03-05T11:00:00Z"));
}

#[test]
fn a_reading_skipped_on_the_earlier_day_takes_the_window_after_the_gap() {
    let spec = ny(3600);
    // Monday 02:00 EDT; Sunday had no 02:00: the window after the gap, 03:00 EDT.
    let w = spec.window_of(utc("2025-03-10T06:30:00Z"));
    assert_eq!(w.start, utc("2025-03-10T06:00:00Z"));
    assert_eq!(
        spec.days_before(&w, 1),
        Window {
            start: utc("2025-03-09T07:00:00Z"),
            end: utc("2025-03-09T08:00:00Z")
        }
    );
}

#[test]
fn the_range_ends_do_not_panic() {
    let spec = ny(3600);
    let first = spec.window_of(DateTime::<Utc>::MIN_UTC);
    assert_eq!(spec.previous(&first), first);
    let _ = spec.days_before(&first, 7);
    let last = spec.window_of(DateTime::<Utc>::MAX_UTC - TimeDelta::seconds(1));
    let _ = spec.days_before(&last, 7);
}

mod props {
    use super::super::props::{LENGTHS, ZONES};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// In every zone but Apia (which skipped a whole day) the same window yesterday is a
        /// real window about a day earlier (a DST shift, at most two hours, and a skipped
        /// start moved past its gap are the only differences), and the previous window ends
        /// where this one starts.
        #[test]
        fn compared_windows_are_windows(
            zone in 0..ZONES.len(),
            length in 0..LENGTHS.len(),
            secs in 0i64..4_102_444_800, // 1970–2100
        ) {
            let tz = ZONES[zone];
            prop_assume!(tz != Tz::Pacific__Apia);
            let spec = WindowSpec::new(LENGTHS[length], tz).unwrap();
            let w = spec.window_of(DateTime::from_timestamp(secs, 0).unwrap());
            let p = spec.previous(&w);
            prop_assert_eq!(p.end, w.start);
            prop_assert_eq!(spec.window_of(p.start), p);
            for days in [1, 7] {
                let y = spec.days_before(&w, days);
                prop_assert_eq!(spec.window_of(y.start), y);
                let back = (w.start - y.start).num_seconds() - i64::from(days) * DAY_SECS;
                prop_assert!(back.abs() <= 4 * 3600, "{:?} {} days back from {:?}: {:?}", tz, days, w, y);
            }
        }
    }
}
