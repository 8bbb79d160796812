//! Names and time lines of windows on daylight-saving days and at the range ends.

use super::*;

fn line_pair(start: &str, secs: u64, tz: Tz) -> (String, String) {
    let w = window(start, secs, tz);
    (period_line(&w, tz), time_line(&w, tz))
}

#[test]
fn new_york_fall_back_day_keeps_its_names() {
    let ny = Tz::America__New_York;
    let day: Vec<_> = [
        "2025-11-02T04:00:00Z",
        "2025-11-02T11:00:00Z",
        "2025-11-02T17:00:00Z",
        "2025-11-02T23:00:00Z",
    ]
    .iter()
    .map(|s| line_pair(s, 6 * 3600, ny))
    .collect();
    let expected = [
        (
            "Night Period (12:00 AM – 6:00 AM)",
            "00:00 EDT – 06:00 EST on 2025-11-02",
        ),
        (
            "Morning Period (6:00 AM – 12:00 PM)",
            "06:00 – 12:00 EST on 2025-11-02",
        ),
        (
            "Afternoon Period (12:00 PM – 6:00 PM)",
            "12:00 – 18:00 EST on 2025-11-02",
        ),
        (
            "Evening Period (6:00 PM – 12:00 AM)",
            "18:00 – 24:00 EST on 2025-11-02",
        ),
    ]
    .map(|(p, t)| (p.to_owned(), t.to_owned()));
    assert_eq!(day, expected);
    let night = window("2025-11-02T06:30:00Z", 6 * 3600, ny); // 01:30 EST, second pass
    assert_eq!(window_label(&night, ny), "Night 2025-11-02");
}

#[test]
fn new_york_spring_forward_day_keeps_its_names() {
    let ny = Tz::America__New_York;
    assert_eq!(
        line_pair("2025-03-09T05:00:00Z", 6 * 3600, ny),
        (
            "Night Period (12:00 AM – 6:00 AM)".to_owned(),
            "00:00 EST – 06:00 EDT on 2025-03-09".to_owned()
        )
    );
    assert_eq!(
        line_pair("2025-03-09T10:00:00Z", 6 * 3600, ny),
        (
            "Morning Period (6:00 AM – 12:00 PM)".to_owned(),
            "06:00 – 12:00 EDT on 2025-03-09".to_owned()
        )
    );
    // Not a 6-hour stretch of clock: the range, with both zones.
    let w = window("2025-03-09T06:30:00Z", 1800, ny);
    assert_eq!(period_line(&w, ny), "1:30 AM – 3:00 AM");
    assert_eq!(time_line(&w, ny), "01:30 EST – 03:00 EDT on 2025-03-09");
}

/// Santiago's September day starts at 01:00 (00:00 is skipped): its night is still the Night.
#[test]
fn midnight_gap_and_half_hour_shift_keep_their_names() {
    let scl = Tz::America__Santiago;
    assert_eq!(
        line_pair("2025-09-07T04:00:00Z", 6 * 3600, scl),
        (
            "Night Period (1:00 AM – 6:00 AM)".to_owned(),
            "01:00 – 06:00 -03 on 2025-09-07".to_owned()
        )
    );
    // The April evening runs 7 h through the repeated 23:00 to the only 00:00.
    assert_eq!(
        line_pair("2025-04-05T21:00:00Z", 6 * 3600, scl),
        (
            "Evening Period (6:00 PM – 12:00 AM)".to_owned(),
            "18:00 -03 – 24:00 -04 on 2025-04-05".to_owned()
        )
    );
    let lhi = Tz::Australia__Lord_Howe;
    assert_eq!(
        line_pair("2025-10-04T13:30:00Z", 6 * 3600, lhi),
        (
            "Night Period (12:00 AM – 6:00 AM)".to_owned(),
            "00:00 +1030 – 06:00 +11 on 2025-10-05".to_owned()
        )
    );
}

/// Every 6-hour window of every day is named, in order, whatever its zone does to the clock
/// (Apia skipped 2011-12-30 entirely; Santiago and Havana change at midnight).
#[test]
fn every_six_hour_window_is_named_in_order() {
    let names = ["Night", "Morning", "Afternoon", "Evening"];
    for tz in [
        Tz::America__New_York,
        Tz::Europe__London,
        Tz::America__Santiago,
        Tz::America__Havana,
        Tz::Australia__Lord_Howe,
        Tz::Asia__Tehran,
        Tz::Pacific__Apia,
    ] {
        let spec = WindowSpec::new(6 * 3600, tz).unwrap();
        let mut w = spec.window_of(
            DateTime::parse_from_rfc3339("2005-01-01T12:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        );
        let mut expected = names
            .iter()
            .position(|n| window_label(&w, tz).starts_with(n))
            .unwrap();
        while w.start.year() < 2030 {
            let label = window_label(&w, tz);
            assert!(
                label.starts_with(names[expected]),
                "{tz}: {} is {label}, expected {}",
                time_line(&w, tz),
                names[expected]
            );
            expected = (expected + 1) % 4;
            w = spec.next(&w);
        }
    }
}

/// Near chrono's range ends the lines degrade (no name) but do not panic.
#[test]
fn extreme_windows_do_not_panic() {
    for tz in [Tz::UTC, Tz::America__New_York, Tz::Pacific__Kiritimati] {
        let spec = WindowSpec::new(6 * 3600, tz).unwrap();
        for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            let w = spec.window_of(t);
            let _ = (period_line(&w, tz), time_line(&w, tz), window_label(&w, tz));
        }
    }
}
