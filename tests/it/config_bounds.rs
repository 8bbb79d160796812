//! Property tests over extreme settings: parsing any duration (0, 1 s, u64::MAX seconds,
//! `300000y`, `400000000y`, garbage) never panics and either fails naming the bound or yields
//! a value within it; and the arithmetic those values take part in (the window of an instant,
//! close = end + grace, catch-up cut-off = now − max_catchup, horizon cut-off, the latest
//! accepted sale time) never panics for in-bounds values at any instant chrono can hold.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use power_revenue::change::latest_ms;
use power_revenue::config::{Config, ConfigError, Settings, MAX_ALERT, MAX_HORIZON, MAX_WINDOW};
use power_revenue::window::{earlier_by, later_by, WindowSpec};
use proptest::prelude::*;
use std::time::Duration;

/// Duration strings an operator, or an attacker, might write.
fn duration_text() -> impl Strategy<Value = String> {
    let units = prop::sample::select(vec![
        "ns", "us", "ms", "s", "m", "h", "d", "w", "M", "y", "sec", "days", "years",
    ]);
    prop_oneof![
        prop::sample::select(vec![
            "0s",
            "1s",
            "0",
            "",
            " ",
            "18446744073709551615s",
            "18446744073709551616s",
            "300000y",
            "400000000y",
            "99999999999999999999d",
            "366d",
            "367d",
            "7d",
            "8d",
            "5h59m59s",
            "6h",
            "24h",
            "1d 1ns",
            "1y",
            "-1s",
            "1.5h",
            "NaN",
            "1e9s",
        ])
        .prop_map(str::to_owned),
        (any::<u64>(), units.clone()).prop_map(|(n, u)| format!("{n}{u}")),
        (0u64..1_000_000, units.clone(), 0u64..1_000, units)
            .prop_map(|(a, u, b, v)| format!("{a}{u} {b}{v}")),
        "[0-9a-zA-Z .:-]{0,24}",
    ]
}

/// Window lengths that divide a day, plus a few that do not.
fn window_text() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "1s", "20s", "1m", "10m", "1h", "6h", "24h", "1d", "7h", "25h", "0s", "300000y",
    ])
    .prop_map(str::to_owned)
}

fn base() -> Settings {
    Settings {
        mongodb_uri: Some("mongodb://u:p@h:27017/power".into()),
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsing_never_panics_and_honours_every_bound(
        window in window_text(),
        grace in prop::option::of(duration_text()),
        catchup in duration_text(),
        horizon in duration_text(),
        future in duration_text(),
        alert in duration_text(),
    ) {
        let settings = Settings {
            window: Some(window),
            grace,
            max_catchup: Some(catchup),
            restate_horizon: Some(horizon),
            max_future: Some(future),
            alert_stream_down: Some(alert),
            ..base()
        };
        match Config::from_settings(settings) {
            Ok(c) => {
                let window = c.window.length().to_std().unwrap();
                prop_assert!(window <= MAX_WINDOW);
                prop_assert!(c.grace < window);
                prop_assert!(c.max_catchup <= MAX_HORIZON);
                prop_assert!(c.restate_horizon <= MAX_HORIZON);
                prop_assert!(c.max_future <= MAX_HORIZON);
                prop_assert!(c.alert_stream_down <= MAX_ALERT);
            }
            Err(e) => {
                let text = e.to_string();
                prop_assert_eq!(text.lines().count(), 1, "{}", text);
                match e {
                    ConfigError::OutOfBounds { name, max, .. } => {
                        let expected = match name {
                            "POWER_REVENUE_ALERT_STREAM_DOWN" => "7d",
                            "POWER_REVENUE_WINDOW" => "1d",
                            _ => "366d",
                        };
                        prop_assert_eq!(max.as_str(), expected, "{}", text);
                        let wanted = format!("at most {expected}");
                        prop_assert!(text.contains(&wanted), "{}", text);
                    }
                    ConfigError::GraceNotBelowWindow { .. } => {
                        prop_assert!(text.contains("is not shorter than the window"));
                    }
                    ConfigError::BadDuration { .. } | ConfigError::BadWindow(_) => {}
                    other => prop_assert!(false, "unexpected error: {}", other),
                }
            }
        }
    }

    #[test]
    fn derived_arithmetic_never_panics_at_extreme_instants(
        length in prop::sample::select(vec![1u64, 20, 60, 600, 3_600, 21_600, 86_400]),
        tz in prop::sample::select(vec![
            Tz::UTC, Tz::Africa__Lagos, Tz::America__New_York, Tz::Pacific__Chatham,
            Tz::Australia__Lord_Howe, Tz::Pacific__Kiritimati, Tz::America__St_Johns,
        ]),
        at in prop_oneof![
            Just(DateTime::<Utc>::MIN_UTC.timestamp()),
            Just(DateTime::<Utc>::MAX_UTC.timestamp() - 1),
            Just(0i64),
            DateTime::<Utc>::MIN_UTC.timestamp()..DateTime::<Utc>::MAX_UTC.timestamp(),
        ],
        grace_frac in 0.0f64..1.0,
        span_secs in prop_oneof![Just(0u64), Just(MAX_HORIZON.as_secs()), 0..=MAX_HORIZON.as_secs()],
    ) {
        let spec = WindowSpec::new(length, tz).unwrap();
        let now = DateTime::from_timestamp(at, 0).unwrap();
        let grace = Duration::from_secs_f64(length as f64 * grace_frac).min(Duration::from_secs(length - 1));
        let span = Duration::from_secs(span_secs);

        let w = spec.window_of(now);
        prop_assert!(w.start <= now && (now < w.end || w.end == DateTime::<Utc>::MAX_UTC));
        let close = later_by(w.end, grace);
        prop_assert!(close >= w.end);
        let cutoff = earlier_by(now, span);
        prop_assert!(cutoff <= now);
        let oldest = spec.window_of(cutoff);
        prop_assert!(oldest.start <= w.start);
        let _ = spec.next(&w);
        let _ = later_by(now, span);
        let latest = latest_ms(now, span);
        prop_assert!(latest >= now.timestamp_millis());
    }
}

#[test]
fn the_issue_s_inputs_are_refused_with_their_bound() {
    let refused = |s: Settings| Config::from_settings(s).unwrap_err().to_string();
    for value in ["300000y", "400000000y", "18446744073709551615s"] {
        let e = refused(Settings {
            max_catchup: Some(value.into()),
            ..base()
        });
        assert!(e.contains("at most 366d"), "{e}");
        let e = refused(Settings {
            grace: Some(value.into()),
            ..base()
        });
        assert!(e.contains("not shorter than the window (6h)"), "{e}");
    }
    // The extremes of the arithmetic, by hand.
    let max = DateTime::<Utc>::MAX_UTC;
    let min = DateTime::<Utc>::MIN_UTC;
    assert_eq!(later_by(max, MAX_HORIZON), max);
    assert_eq!(earlier_by(min, MAX_HORIZON), min);
    assert_eq!(later_by(min, Duration::from_secs(u64::MAX)), max);
    assert_eq!(earlier_by(max, Duration::from_secs(u64::MAX)), min);
}
