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

mod alerts_and_summaries;
mod durations;
