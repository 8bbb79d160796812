//! Settings into `Config`: layering, defaults, one-line errors, bounds, secrets.

use super::*;

fn base() -> Settings {
    Settings {
        mongodb_uri: Some("mongodb://u:s3cret@h:27017/power".into()),
        ..Default::default()
    }
}

#[test]
fn defaults() {
    let c = Config::from_settings(base()).unwrap();
    let m = c.mongo().unwrap();
    assert_eq!(
        (m.database.as_str(), m.collection.as_str()),
        ("power", "power_transaction_items")
    );
    assert_eq!(m.redacted, "mongodb://u:****@h:27017/power");
    assert_eq!(c.window.length().num_seconds(), 6 * 3600);
    assert_eq!(c.grace, Duration::from_secs(60));
    assert_eq!(c.fields.time, "createdAt");
    assert_eq!(c.http_addr.to_string(), "127.0.0.1:9464");
}

#[test]
fn higher_layers_win() {
    let file = Settings {
        window: Some("1h".into()),
        grace: Some("5s".into()),
        ..Default::default()
    };
    let cli = Settings {
        window: Some("10m".into()),
        ..base()
    };
    let c = Config::from_settings(cli.over(file)).unwrap();
    assert_eq!(c.window.length().num_seconds(), 600);
    assert_eq!(c.grace, Duration::from_secs(5));
}

#[test]
fn bad_values_say_what_to_do() {
    let err = |s: Settings| Config::from_settings(s).unwrap_err().to_string();
    assert!(err(Settings {
        window: Some("7h".into()),
        ..base()
    })
    .contains("does not divide 24 h"));
    assert!(err(Settings {
        timezone: Some("Mars/Base".into()),
        ..base()
    })
    .contains("IANA"));
    assert!(err(Settings {
        mongodb_uri: Some("mongodb://h/".into()),
        ..base()
    })
    .contains("POWER_REVENUE_DATABASE"));
    let e = err(Settings {
        mongodb_uri: Some("mongo://u:s3cret@h/db".into()),
        ..base()
    });
    assert!(
        e.contains("not a valid MongoDB connection string") && !e.contains("s3cret"),
        "{e}"
    );
    let e = err(Settings {
        slack_webhook_url: Some("http://hooks.slack.com/services/T/B/XYZ".into()),
        ..base()
    });
    assert!(e.contains("must use https") && !e.contains("XYZ"), "{e}");
    assert!(Config::from_settings(Settings {
        slack_webhook_url: Some("http://127.0.0.1:9/x".into()),
        ..base()
    })
    .is_ok());
}

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
fn missing_uri_is_reported_only_when_needed() {
    let c = Config::from_settings(Settings::default()).unwrap();
    assert!(c
        .mongo()
        .unwrap_err()
        .to_string()
        .contains("MONGODB_URI is not set"));
}

#[test]
fn shipped_example_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/power-revenue.toml");
    let c = Config::load(base(), Some(&path)).unwrap();
    assert_eq!(c.window.tz(), chrono_tz::Tz::Africa__Lagos);
    let err = Config::load(base(), Some(Path::new("/nonexistent.toml")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("POWER_REVENUE_CONFIG"), "{err}");
}
