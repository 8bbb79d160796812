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

/// Passwords holding every character that ends a URI part, as written and percent-encoded.
const HOSTILE_PASSWORDS: &[&str] = &[
    "Sup3rS3cret?x",
    "pa/ss",
    "pa#ss",
    "p@ss",
    "pa:ss",
    "50%off",
    "p%40ss%3F%2F%23%3A%25",
    "a?b/c#d@e:f%g",
];

#[test]
fn redaction_cuts_the_userinfo_at_the_last_at_whatever_the_password_holds() {
    for pw in HOSTILE_PASSWORDS {
        for (uri, shown) in [
            (
                format!("mongodb://admin:{pw}@db.example/power"),
                "mongodb://admin:****@db.example/power",
            ),
            (
                format!("mongodb://admin:{pw}@h1:27017,h2:27018,h3/power?replicaSet=rs0"),
                "mongodb://admin:****@h1:27017,h2:27018,h3/power?replicaSet=rs0",
            ),
            (
                format!("mongodb+srv://admin:{pw}@cluster0.example.net/power?retryWrites=true"),
                "mongodb+srv://admin:****@cluster0.example.net/power?retryWrites=true",
            ),
        ] {
            assert_eq!(redact_uri(&uri), shown, "{uri}");
            let message = format!("invalid port {pw} in {uri}, or {}", pw.to_uppercase());
            let scrubbed = scrub(&message, &uri);
            assert!(!scrubbed.contains(pw), "{scrubbed}");
        }
    }
    assert_eq!(redact_uri("mongodb://h/power"), "mongodb://h/power");
    assert_eq!(
        redact_uri("mongodb://u:p@h/db?tls=true&tlsCertificateKeyFilePassword=hunter2&authMechanismProperties=AWS_SESSION_TOKEN:abc"),
        "mongodb://u:****@h/db?tls=true&tlsCertificateKeyFilePassword=****&authMechanismProperties=****"
    );
    assert_eq!(
        redact_uri("mongodb://u@h/power"),
        "mongodb://u:****@h/power"
    );
    assert_eq!(redact_uri("not a uri"), "<unparseable URI>");
    let decoded = scrub(
        "auth failed for p@ss?/#:%",
        "mongodb://u:p%40ss%3F%2F%23%3A%25@h/",
    );
    assert_eq!(decoded, "auth failed for ****");
}

#[test]
fn a_password_the_driver_would_misread_is_refused_without_quoting_it() {
    let load = |uri: String| {
        Config::from_settings(Settings {
            mongodb_uri: Some(uri),
            ..Default::default()
        })
    };
    for pw in HOSTILE_PASSWORDS {
        for uri in [
            format!("mongodb://admin:{pw}@db.example/power"),
            format!("mongodb+srv://admin:{pw}@cluster0.example.net/power"),
            format!("mongodb://admin:{pw}@h1,h2:27018/power"),
        ] {
            match load(uri.clone()) {
                // Only the percent-encoded one is a valid URI.
                Ok(c) => {
                    assert!(pw.starts_with("p%40"), "{uri}");
                    assert!(!c.mongo().unwrap().describe().contains("p%40"));
                }
                Err(e) => {
                    let e = e.to_string();
                    assert!(e.contains("percent-encoded"), "{e}");
                    for part in pw.split(['?', '/', '#', '@', ':', '%']) {
                        assert!(part.len() < 3 || !e.contains(part), "{part} in {e}");
                    }
                }
            }
        }
    }
}

#[test]
fn empty_or_multiline_secrets_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        Some(p)
    };
    let err = |s: Settings| Config::from_settings(s).unwrap_err().to_string();
    for blank in ["", " ", "\t\n"] {
        let e = err(Settings {
            api_token: Some(blank.into()),
            ..base()
        });
        assert!(
            e.contains("POWER_REVENUE_API_TOKEN is set but empty"),
            "{e}"
        );
        let e = err(Settings {
            slack_webhook_url: Some(blank.into()),
            ..base()
        });
        assert!(e.contains("SLACK_WEBHOOK_URL is set but empty"), "{e}");
        let e = err(Settings {
            mongodb_uri: Some(blank.into()),
            ..Default::default()
        });
        assert!(e.contains("MONGODB_URI is set but empty"), "{e}");
    }
    let e = err(Settings {
        api_token_file: file("token", "\n"),
        ..base()
    });
    assert!(
        e.contains("POWER_REVENUE_API_TOKEN_FILE") && e.contains("nothing but whitespace"),
        "{e}"
    );
    let e = err(Settings {
        mongodb_uri_file: file("uri", "mongodb://u:hunter2@h/db\nmongodb://second/line\n"),
        ..Default::default()
    });
    assert!(
        e.contains("more than one line") && !e.contains("hunter2"),
        "{e}"
    );
    let e = err(Settings {
        api_token_file: Some("/dev/zero".into()),
        ..base()
    });
    assert!(e.contains("larger than 64 KiB"), "{e}");
    let c = Config::from_settings(Settings {
        api_token_file: file("good", "  t0ken \n"),
        ..base()
    })
    .unwrap();
    assert_eq!(c.api_token.unwrap().expose_secret(), "t0ken");
}

/// Settings with one value set, the setting's name and its bound.
type BoundCase = (fn(String) -> Settings, &'static str, &'static str);

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
fn settings_files_are_bounded_and_errors_quote_no_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "api_token = 918273645\n").unwrap();
    let e = Config::load(base(), Some(&path)).unwrap_err().to_string();
    assert!(
        e.contains("c.toml: line 1: invalid type: integer, expected a string")
            && !e.contains("918273645"),
        "{e}"
    );
    let e = Config::load(base(), Some(Path::new("/dev/zero")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("larger than 1024 KiB"), "{e}");
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

mod alerts_and_summaries;

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
