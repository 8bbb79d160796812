//! The settings of the insights: silent-utility alerts and period summaries.

use super::base;
use crate::config::*;
use std::time::Duration;

#[test]
fn silence_settings_are_bounded() {
    let with = |silence: Option<&str>, min: Option<&str>| {
        Config::from_settings(Settings {
            silence: silence.map(Into::into),
            silence_min_sales: min.map(Into::into),
            ..base()
        })
    };
    let after = |secs, min_sales| Silence::After {
        period: Duration::from_secs(secs),
        min_sales,
    };
    assert_eq!(with(None, None).unwrap().silence, after(1800, 5));
    assert_eq!(with(Some("2s"), Some("1")).unwrap().silence, after(2, 1));
    assert_eq!(with(Some("1d"), None).unwrap().silence, after(86_400, 5));
    assert_eq!(with(Some("off"), None).unwrap().silence, Silence::Off);
    assert_eq!(with(Some(" OFF "), None).unwrap().silence, Silence::Off);
    let err = |silence, min| with(silence, min).unwrap_err().to_string();
    assert!(
        err(Some("25h"), None).contains("at most 1d"),
        "{}",
        err(Some("25h"), None)
    );
    assert!(err(Some("0s"), None).contains("at least 1s"));
    assert!(err(Some("500ms"), None).contains("at least 1s"));
    assert!(err(Some("soon"), None).contains("not a duration"));
    assert!(err(Some("300000y"), None).contains("too long"));
    for bad in ["0", "-1", "1000001", "five", "1.5", ""] {
        let e = err(None, Some(bad));
        assert!(
            e.starts_with("POWER_REVENUE_SILENCE_MIN_SALES") && e.contains("from 1 to 1000000"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }
}

#[test]
fn summary_is_daily_unless_off_or_another_multiple_of_the_window_dividing_a_day() {
    let with = |window: &str, v: &str| {
        Config::from_settings(Settings {
            window: Some(window.into()),
            summary: Some(v.into()),
            ..base()
        })
    };
    let c = Config::from_settings(base()).unwrap();
    assert!(c.summary.is_some_and(|s| s.is_daily()));
    assert!(with("6h", "off").unwrap().summary.is_none());
    assert!(with("6h", " OFF ").unwrap().summary.is_none());
    assert_eq!(
        with("6h", "12h").unwrap().summary.unwrap().length_secs(),
        43_200
    );
    assert_eq!(with("2s", "6s").unwrap().summary.unwrap().length_secs(), 6);
    for (window, value, says) in [
        ("6h", "9h", "not a multiple of the window"),
        ("6h", "3h", "not a multiple of the window"),
        ("2s", "14s", "does not divide 24 h"),
        ("6h", "2d", "at most 1d"),
        ("6h", "1500ms", "whole seconds"),
        ("6h", "daily", "not a duration"),
    ] {
        let e = with(window, value).unwrap_err().to_string();
        assert!(
            e.contains("POWER_REVENUE_SUMMARY") && e.contains(says) && !e.contains('\n'),
            "{value}: {e}"
        );
    }
}
