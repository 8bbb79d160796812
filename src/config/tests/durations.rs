//! Duration settings: each bounded, with the bound in the one-line message; retention's
//! floor.

use super::base;
use crate::config::*;
use std::time::Duration;

/// Settings with one value set, the setting's name and its bound.
type BoundCase = (fn(String) -> Settings, &'static str, &'static str);

#[test]
fn horizons_are_bounded_with_the_bound_in_the_message() {
    let e = Config::from_settings(Settings {
        restate_horizon: Some("2y".into()),
        ..base()
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("POWER_REVENUE_RESTATE_HORIZON") && e.contains("366d"),
        "{e}"
    );
    let c = Config::from_settings(Settings {
        max_future: Some("366d".into()),
        ..base()
    })
    .unwrap();
    assert_eq!(c.restate_horizon, Duration::from_secs(7 * 86_400));
}

#[test]
fn every_duration_is_bounded_with_the_bound_in_the_message() {
    let err = |s: Settings| Config::from_settings(s).unwrap_err().to_string();
    let cases: [BoundCase; 7] = [
        (
            |v| Settings {
                max_catchup: Some(v),
                ..base()
            },
            "POWER_REVENUE_MAX_CATCHUP",
            "366d",
        ),
        (
            |v| Settings {
                restate_horizon: Some(v),
                ..base()
            },
            "POWER_REVENUE_RESTATE_HORIZON",
            "366d",
        ),
        (
            |v| Settings {
                max_future: Some(v),
                ..base()
            },
            "POWER_REVENUE_MAX_FUTURE",
            "366d",
        ),
        (
            |v| Settings {
                alert_stream_down: Some(v),
                ..base()
            },
            "POWER_REVENUE_ALERT_STREAM_DOWN",
            "7d",
        ),
        (
            |v| Settings {
                grace: Some(v),
                ..base()
            },
            "POWER_REVENUE_GRACE",
            "6h",
        ),
        (
            |v| Settings {
                window: Some(v),
                ..base()
            },
            "POWER_REVENUE_WINDOW",
            "1d",
        ),
        (
            |v| Settings {
                silence: Some(v),
                ..base()
            },
            "POWER_REVENUE_SILENCE",
            "1d",
        ),
    ];
    for (set, name, max) in cases {
        for too_big in [
            "300000y",
            "400000000y",
            "18446744073709551615s",
            "99999999999999999999d",
        ] {
            let e = err(set(too_big.into()));
            assert!(
                e.contains(name) && e.contains(max) && e.contains(too_big),
                "{e}"
            );
        }
        assert!(err(set("soon".into())).contains("not a duration"));
    }
    assert!(err(Settings {
        max_catchup: Some("367d".into()),
        ..base()
    })
    .contains("at most 366d"));
    assert!(err(Settings {
        alert_stream_down: Some("8d".into()),
        ..base()
    })
    .contains("at most 7d"));
    let ok = Config::from_settings(Settings {
        max_catchup: Some("366d".into()),
        alert_stream_down: Some("7d".into()),
        grace: Some("5h59m59s".into()),
        ..base()
    })
    .unwrap();
    assert_eq!(ok.grace, Duration::from_secs(6 * 3600 - 1));
    assert_eq!(ok.alert_stream_down, MAX_ALERT);
    let e = err(Settings {
        window: Some("20s".into()),
        grace: Some("20s".into()),
        ..base()
    });
    assert!(e.contains("not shorter than the window (20s)"), "{e}");
    // Unset, the grace fits the window: a minute, or half of a short window.
    let short = Config::from_settings(Settings {
        window: Some("20s".into()),
        ..base()
    })
    .unwrap();
    assert_eq!(short.grace, Duration::from_secs(10));
}

#[test]
fn query_timeout_is_five_minutes_unless_set_within_a_second_and_a_day() {
    let with = |v: &str| {
        Config::from_settings(Settings {
            query_timeout: Some(v.into()),
            ..base()
        })
    };
    let c = Config::from_settings(base()).unwrap();
    assert_eq!(c.query_timeout, Duration::from_secs(300));
    assert_eq!(with("90s").unwrap().query_timeout, Duration::from_secs(90));
    for (value, bound) in [
        ("0s", "at least 1s"),
        ("500ms", "at least 1s"),
        ("2d", "1d"),
    ] {
        let e = with(value).unwrap_err().to_string();
        assert!(
            e.contains("POWER_REVENUE_QUERY_TIMEOUT") && e.contains(bound),
            "{e}"
        );
    }
}

#[test]
fn retention_keeps_at_least_what_later_messages_need() {
    let with = |retention: &str, horizon: Option<&str>| {
        Config::from_settings(Settings {
            retention: Some(retention.into()),
            restate_horizon: horizon.map(Into::into),
            ..base()
        })
        .map(|c| c.retention)
        .map_err(|e| e.to_string())
    };
    assert_eq!(
        Config::from_settings(base()).unwrap().retention,
        Duration::from_secs(90 * 86_400)
    );
    // The default horizon is 7d, the daily summary a day: a week, a period and a day.
    assert_eq!(with("9d", None), Ok(Duration::from_secs(9 * 86_400)));
    assert_eq!(
        with("8d", Some("1d")).unwrap_err(),
        "POWER_REVENUE_RETENTION = \"8d\" is shorter than what comparisons and summaries reach back (a week, a period and a day) (9d); use at least 9d"
    );
    assert_eq!(
        with("20d", Some("30d")).unwrap_err(),
        "POWER_REVENUE_RETENTION = \"20d\" is shorter than POWER_REVENUE_RESTATE_HORIZON (30d); use at least 30d"
    );
    assert!(with("11y", None).unwrap_err().contains("at most"));
    // Left out, it follows a horizon longer than 90 days.
    let long = Config::from_settings(Settings {
        restate_horizon: Some("200d".into()),
        ..base()
    })
    .unwrap();
    assert_eq!(long.retention, Duration::from_secs(200 * 86_400));
    assert!(with("soon", None)
        .unwrap_err()
        .contains("POWER_REVENUE_RETENTION"));
}
