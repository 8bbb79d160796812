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

/// London springs forward at 01:00 GMT: the day is still tiled by its four windows, and since
/// windows follow the wall clock the short one is the night (00:00 GMT – 06:00 BST), not the
/// evening cut at midnight as before.
#[test]
fn dst_days_are_tiled_without_gaps() {
    let spec = WindowSpec::new(6 * 3600, Tz::Europe__London).unwrap();
    let mut w = spec.window_of(Utc.with_ymd_and_hms(2025, 3, 30, 0, 0, 0).unwrap());
    let day_end = Utc.with_ymd_and_hms(2025, 3, 30, 23, 0, 0).unwrap(); // 00:00 BST next day
    let mut starts = vec![];
    while w.end <= day_end {
        starts.push(w.start);
        let next = spec.next(&w);
        assert_eq!(next.start, w.end);
        w = next;
    }
    assert_eq!(
        starts,
        ["00:00", "05:00", "11:00", "17:00"].map(|h| utc(&format!("2025-03-30T{h}:00Z")))
    );
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

/// The windows of the local day that starts at `midnight` (UTC), as (start, hours long).
fn day(spec: &WindowSpec, midnight: &str) -> Vec<(DateTime<Utc>, f64)> {
    let mut w = spec.window_of(utc(midnight));
    assert_eq!(w.start, utc(midnight));
    let mut out = vec![];
    for _ in 0..TimeDelta::days(1).num_seconds() / spec.length().num_seconds() {
        out.push((w.start, (w.end - w.start).num_seconds() as f64 / 3600.0));
        w = spec.next(&w);
    }
    out
}

fn starts_and_hours(list: &[(&str, f64)]) -> Vec<(DateTime<Utc>, f64)> {
    list.iter().map(|(s, h)| (utc(s), *h)).collect()
}

#[test]
fn new_york_fall_back_day_has_a_seven_hour_night() {
    let spec = WindowSpec::new(6 * 3600, Tz::America__New_York).unwrap();
    // 00:00 EDT, 06:00 EST, 12:00 EST, 18:00 EST; clocks go back at 02:00 EDT (06:00Z).
    let expected = starts_and_hours(&[
        ("2025-11-02T04:00:00Z", 7.0),
        ("2025-11-02T11:00:00Z", 6.0),
        ("2025-11-02T17:00:00Z", 6.0),
        ("2025-11-02T23:00:00Z", 6.0),
    ]);
    assert_eq!(day(&spec, "2025-11-02T04:00:00Z"), expected);
    // 06:00 EST is a window start now (it was "not a window start" before).
    assert!(spec.starting_at(utc("2025-11-02T11:00:00Z")).is_some());
    assert!(spec.starting_at(utc("2025-11-02T10:00:00Z")).is_none());
    // Both passes through 01:30 belong to the night window.
    for t in ["2025-11-02T05:30:00Z", "2025-11-02T06:30:00Z"] {
        assert_eq!(spec.window_of(utc(t)).start, utc("2025-11-02T04:00:00Z"));
    }
}

#[test]
fn new_york_spring_forward_day_has_a_five_hour_night() {
    let spec = WindowSpec::new(6 * 3600, Tz::America__New_York).unwrap();
    // 00:00 EST, 06:00 EDT, …; clocks skip 02:00–03:00 EST (07:00Z).
    let expected = starts_and_hours(&[
        ("2025-03-09T05:00:00Z", 5.0),
        ("2025-03-09T10:00:00Z", 6.0),
        ("2025-03-09T16:00:00Z", 6.0),
        ("2025-03-09T22:00:00Z", 6.0),
    ]);
    assert_eq!(day(&spec, "2025-03-09T05:00:00Z"), expected);
    assert_eq!(
        spec.window_of(utc("2025-03-10T03:59:59Z")).end,
        utc("2025-03-10T04:00:00Z")
    );
}

#[test]
fn a_skipped_hour_bound_moves_to_the_end_of_the_gap_and_bounds_collapse() {
    let spec = WindowSpec::new(1800, Tz::America__New_York).unwrap();
    // 01:30 EST (06:30Z) runs to the first instant after the gap, 03:00 EDT (07:00Z): the
    // 02:00, 02:30 and 03:00 bounds are that one instant, and no window is empty.
    let w = spec.window_of(utc("2025-03-09T06:45:00Z"));
    assert_eq!(
        (w.start, w.end),
        (utc("2025-03-09T06:30:00Z"), utc("2025-03-09T07:00:00Z"))
    );
    let next = spec.next(&w);
    assert_eq!(
        (next.start, next.end),
        (utc("2025-03-09T07:00:00Z"), utc("2025-03-09T07:30:00Z"))
    );
    // 20 s windows: 180 bounds collapse into one.
    let spec = WindowSpec::new(20, Tz::America__New_York).unwrap();
    let w = spec.window_of(utc("2025-03-09T06:59:59Z"));
    assert_eq!(
        (w.start, w.end),
        (utc("2025-03-09T06:59:40Z"), utc("2025-03-09T07:00:00Z"))
    );
    assert_eq!(spec.next(&w).end, utc("2025-03-09T07:00:20Z"));
}

#[test]
fn a_repeated_hour_bound_is_its_first_occurrence() {
    let spec = WindowSpec::new(1800, Tz::America__New_York).unwrap();
    // 01:30 EDT (05:30Z) starts a window that runs through the repeated hour to 02:00 EST
    // (07:00Z): 01:00 and 01:30 EST are second occurrences, not bounds.
    for t in [
        "2025-11-02T05:30:00Z",
        "2025-11-02T06:00:00Z",
        "2025-11-02T06:59:59Z",
    ] {
        let w = spec.window_of(utc(t));
        assert_eq!(
            (w.start, w.end),
            (utc("2025-11-02T05:30:00Z"), utc("2025-11-02T07:00:00Z"))
        );
    }
}

/// Santiago changes clocks at midnight: in April 23:00–24:00 repeats, in September 00:00–01:00
/// is skipped, so the day starts at 01:00.
#[test]
fn midnight_transitions_in_santiago() {
    let spec = WindowSpec::new(6 * 3600, Tz::America__Santiago).unwrap();
    // 2025-04-06 00:00 -03 (03:00Z) goes back to 23:00 -04: the evening before is 7 h.
    let evening = spec.window_of(utc("2025-04-05T21:00:00Z"));
    assert_eq!(
        (evening.start, evening.end),
        (utc("2025-04-05T21:00:00Z"), utc("2025-04-06T04:00:00Z"))
    );
    let expected = starts_and_hours(&[
        ("2025-04-06T04:00:00Z", 6.0),
        ("2025-04-06T10:00:00Z", 6.0),
        ("2025-04-06T16:00:00Z", 6.0),
        ("2025-04-06T22:00:00Z", 6.0),
    ]);
    assert_eq!(day(&spec, "2025-04-06T04:00:00Z"), expected);
    // 2025-09-07 00:00 -04 (04:00Z) jumps to 01:00 -03: the night is 01:00–06:00, 5 h.
    let expected = starts_and_hours(&[
        ("2025-09-07T04:00:00Z", 5.0),
        ("2025-09-07T09:00:00Z", 6.0),
        ("2025-09-07T15:00:00Z", 6.0),
        ("2025-09-07T21:00:00Z", 6.0),
    ]);
    assert_eq!(day(&spec, "2025-09-07T04:00:00Z"), expected);
    assert_eq!(
        spec.window_of(utc("2025-09-07T03:59:59Z")).start,
        utc("2025-09-06T22:00:00Z")
    );
}

/// Lord Howe shifts by 30 minutes at 02:00 local.
#[test]
fn lord_howe_half_hour_shift() {
    let tz = Tz::Australia__Lord_Howe;
    let six = WindowSpec::new(6 * 3600, tz).unwrap();
    // 2025-10-05: 02:00 +10:30 jumps to 02:30 +11; midnight is 13:30Z the day before.
    let expected = starts_and_hours(&[
        ("2025-10-04T13:30:00Z", 5.5),
        ("2025-10-04T19:00:00Z", 6.0),
        ("2025-10-05T01:00:00Z", 6.0),
        ("2025-10-05T07:00:00Z", 6.0),
    ]);
    assert_eq!(day(&six, "2025-10-04T13:30:00Z"), expected);
    // With 30 min windows the 02:00 bound falls in the gap and collapses into 02:30 +11.
    let half = WindowSpec::new(1800, tz).unwrap();
    let w = half.window_of(utc("2025-10-04T15:10:00Z")); // 01:40 +10:30
    assert_eq!(
        (w.start, w.end),
        (utc("2025-10-04T15:00:00Z"), utc("2025-10-04T15:30:00Z"))
    );
    assert_eq!(half.next(&w).end, utc("2025-10-04T16:00:00Z")); // 03:00 +11
                                                                // 2025-04-06: 02:00 +11 goes back to 01:30 +10:30; 01:30 +11 starts a 1 h window.
    let w = half.window_of(utc("2025-04-05T15:10:00Z")); // 01:40 +10:30, second pass
    assert_eq!(
        (w.start, w.end),
        (utc("2025-04-05T14:30:00Z"), utc("2025-04-05T15:30:00Z"))
    );
}

/// At the ends of chrono's range the last bounds are clamped rather than overflowing.
#[test]
fn extremes_do_not_panic() {
    for tz in [
        Tz::UTC,
        Tz::America__New_York,
        Tz::Pacific__Kiritimati,
        Tz::Etc__GMTPlus12,
    ] {
        for secs in [20, 1800, 6 * 3600] {
            let spec = WindowSpec::new(secs, tz).unwrap();
            let first = spec.window_of(DateTime::<Utc>::MIN_UTC);
            assert_eq!(first.start, DateTime::<Utc>::MIN_UTC);
            assert!(first.contains(DateTime::<Utc>::MIN_UTC) && first.start < first.end);
            assert_eq!(spec.next(&first).start, first.end);
            let last = spec.window_of(DateTime::<Utc>::MAX_UTC);
            assert_eq!(last.end, DateTime::<Utc>::MAX_UTC);
            assert!(last.start < last.end);
            assert_eq!(spec.next(&last), last);
            let before = spec.window_of(DateTime::<Utc>::MAX_UTC - TimeDelta::nanoseconds(1));
            assert!(before.contains(DateTime::<Utc>::MAX_UTC - TimeDelta::nanoseconds(1)));
        }
    }
}

mod days;
mod props;
