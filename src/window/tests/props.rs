//! Properties of wall-clock windows over many zones, years and lengths, checked against an
//! oracle that decides from chrono's own local-time resolution whether an instant is a bound.

use super::super::*;
use proptest::prelude::*;

pub(super) const ZONES: [Tz; 16] = [
    Tz::UTC,
    Tz::Europe__London,
    Tz::Europe__Dublin, // negative DST in tzdata: winter is the "saving" time
    Tz::America__New_York,
    Tz::America__Santiago,    // changes at midnight
    Tz::America__Havana,      // changes at midnight
    Tz::America__St_Johns,    // -03:30
    Tz::Australia__Lord_Howe, // 30-minute shift
    Tz::Asia__Tehran,
    Tz::Asia__Kathmandu, // +05:45
    Tz::Africa__Lagos,
    Tz::Africa__Casablanca, // suspends DST for Ramadan: two extra transitions a year
    Tz::Pacific__Apia,      // skipped 2011-12-30 entirely
    Tz::Pacific__Chatham,   // +12:45 / +13:45
    Tz::Antarctica__Troll,  // a two-hour DST shift
    Tz::Europe__Moscow,
];
pub(super) const LENGTHS: [u64; 6] = [20, 600, 1800, 3600, 4 * 3600, 6 * 3600];

fn offset_at(tz: Tz, t: DateTime<Utc>) -> i64 {
    i64::from(
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

/// Whether `u` (a whole second) is a window bound by the rules, decided without the code under
/// test: its clock reading is on the grid and this is the reading's first occurrence, or `u`
/// ends a skipped stretch of clock that holds a grid time.
fn is_bound(tz: Tz, len: i64, u: i64) -> bool {
    let local = u + offset_at(tz, at(u));
    if local.rem_euclid(len) == 0 {
        let first = tz
            .from_local_datetime(&at(local).naive_utc())
            .earliest()
            .map(|t| t.timestamp());
        if first == Some(u) {
            return true;
        }
    }
    let before = u - 1 + offset_at(tz, at(u - 1));
    // A gap ends at u if the clock jumps forward by more than the one second that passed.
    before + 1 < local && local.div_euclid(len) * len > before
}

/// Instants where the zone's offset changes in `year` (to the second).
fn transitions(tz: Tz, year: i32) -> Vec<i64> {
    let start = Utc
        .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    let mut out = vec![];
    for d in 0..366 {
        let (mut lo, mut hi) = (start + d * 86_400, start + (d + 1) * 86_400);
        if offset_at(tz, at(lo)) == offset_at(tz, at(hi)) {
            continue;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if offset_at(tz, at(mid)) == offset_at(tz, at(lo)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        out.push(hi);
    }
    out
}

/// Walks the windows over `[from, to)` and checks every property on each.
fn check_range(spec: &WindowSpec, from: i64, to: i64) -> Result<(), TestCaseError> {
    let (tz, len) = (spec.tz(), spec.length().num_seconds());
    let mut w = spec.window_of(at(from));
    prop_assert!(w.contains(at(from)));
    while w.start < at(to) {
        prop_assert!(w.start < w.end, "empty {w:?}");
        prop_assert_eq!(spec.window_of(w.start), w);
        prop_assert_eq!(spec.window_of(w.end - TimeDelta::milliseconds(1)), w);
        prop_assert_ne!(spec.window_of(w.end), w);
        prop_assert!(
            is_bound(tz, len, w.start.timestamp()),
            "{w:?} starts off the grid"
        );
        let next = spec.next(&w);
        prop_assert_eq!(next.start, w.end, "gap or overlap after {:?}", w);
        // Nothing inside the window is a bound, and all of it maps to the window: sample every half grid step, which catches a
        // missed bound on the grid and the second a gap ends (each checked exactly).
        let step = (len / 2).max(1);
        let mut u = w.start.timestamp() + 1;
        while u < w.end.timestamp() {
            let v = u + step - 1; // also the second before the next sample
            for x in [u, v] {
                if x < w.end.timestamp() {
                    prop_assert!(!is_bound(tz, len, x), "{} is a bound inside {:?}", at(x), w);
                    prop_assert_eq!(spec.window_of(at(x)), w, "{} is inside", at(x));
                }
            }
            u += step;
        }
        w = next;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    /// Around every transition of a random zone-year, and around a random instant.
    #[test]
    fn windows_tile_the_wall_clock(
        zone in 0..ZONES.len(),
        year in 1970i32..=2100,
        length in 0..LENGTHS.len(),
        day_secs in 0i64..365 * 86_400,
    ) {
        let spec = WindowSpec::new(LENGTHS[length], ZONES[zone]).unwrap();
        let len = spec.length().num_seconds();
        // Enough to see a few windows on each side, and all of a transition day for 20 s ones
        // would be slow in debug builds: two hours is past any gap or repeat.
        let reach = (8 * len).max(2 * 3600);
        let random = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap().timestamp() + day_secs;
        for t in transitions(ZONES[zone], year).into_iter().chain([random]) {
            check_range(&spec, t - reach, t + reach)?;
        }
    }

    /// Any millisecond chrono can hold, in any zone: no panic, and the window contains it.
    #[test]
    fn any_instant_has_a_window(
        ms in DateTime::<Utc>::MIN_UTC.timestamp_millis()..=DateTime::<Utc>::MAX_UTC.timestamp_millis(),
        zone in 0..ZONES.len(),
        length in 0..LENGTHS.len(),
    ) {
        let spec = WindowSpec::new(LENGTHS[length], ZONES[zone]).unwrap();
        let t = DateTime::from_timestamp_millis(ms).unwrap();
        let w = spec.window_of(t);
        prop_assert!(w.contains(t), "{t:?} not in {w:?}");
        let next = spec.next(&w);
        prop_assert!(next.start == w.end || next == w);
        prop_assert_eq!(spec.starting_at(w.start), Some(w));
    }
}

/// The oracle itself agrees with hand-checked New York bounds.
#[test]
fn oracle_knows_new_york() {
    let tz = Tz::America__New_York;
    let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp();
    assert!(is_bound(tz, 6 * 3600, t("2025-11-02T04:00:00Z")));
    assert!(is_bound(tz, 6 * 3600, t("2025-11-02T11:00:00Z")));
    assert!(!is_bound(tz, 6 * 3600, t("2025-11-02T10:00:00Z")));
    assert!(is_bound(tz, 1800, t("2025-11-02T05:30:00Z")));
    assert!(!is_bound(tz, 1800, t("2025-11-02T06:30:00Z"))); // 01:30 EST, second pass
    assert!(is_bound(tz, 1800, t("2025-03-09T07:00:00Z"))); // 03:00 EDT, gap end
    assert!(is_bound(tz, 7200, t("2025-03-09T07:00:00Z"))); // 02:00 in the gap
    assert!(!is_bound(tz, 4 * 3600, t("2025-03-09T07:00:00Z"))); // no grid time in the gap
}
