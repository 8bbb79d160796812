//! The binary as an operator meets it: configuration errors, `report`, `status`, `init-indexes`.

use crate::common::service::{report_dry_run, run_cli, Service};
use crate::common::{server_uri, wait_for, TestDb};
use bson::doc;
use futures::TryStreamExt;
use std::time::Duration;

const URI: &str = "mongodb://ops:hunter2secret@127.0.0.1:1/power";

/// Bad settings: exit 2 before connecting, one line that names the problem, no secret.
#[test]
fn bad_configuration_is_one_clear_line() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("MONGODB_URI", URI), ("POWER_REVENUE_WINDOW", "7h")],
            "does not divide 24 h",
        ),
        (
            &[("MONGODB_URI", URI), ("POWER_REVENUE_TIMEZONE", "Lagos")],
            "IANA time zone",
        ),
        (
            &[("MONGODB_URI", URI), ("POWER_REVENUE_GRACE", "soon")],
            "not a duration",
        ),
        (
            &[
                ("MONGODB_URI", URI),
                (
                    "SLACK_WEBHOOK_URL",
                    "http://hooks.slack.com/services/T/B/hunter2secret",
                ),
            ],
            "must use https",
        ),
        (
            &[("MONGODB_URI", "mongodb://ops:hunter2secret@127.0.0.1:1/")],
            "POWER_REVENUE_DATABASE",
        ),
        (
            &[("MONGODB_URI", "postgres://ops:hunter2secret@h/db")],
            "not a valid MongoDB connection string",
        ),
        (
            &[("MONGODB_URI_FILE", "/nonexistent/mongo-uri")],
            "MONGODB_URI_FILE",
        ),
        (&[], "MONGODB_URI is not set"),
    ];
    for (env, expected) in cases {
        let (code, stdout, stderr) = run_cli(&["serve"], env);
        assert_eq!(code, 2, "{env:?}: {stderr}");
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(
            !stderr.contains("hunter2secret") && !stdout.contains("hunter2secret"),
            "secret leaked: {stderr}"
        );
    }
}

#[test]
fn help_does_not_print_secret_env_values() {
    let (code, stdout, _) = run_cli(
        &["serve", "--help"],
        &[
            ("MONGODB_URI", URI),
            ("SLACK_WEBHOOK_URL", "https://x/hunter2secret"),
        ],
    );
    assert_eq!(code, 0);
    assert!(
        stdout.contains("POWER_REVENUE_WINDOW") && !stdout.contains("hunter2secret"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn report_dry_run_prints_the_windows_message() {
    let db = TestDb::new("cli_report").await;
    let at = |h, m| {
        bson::DateTime::from_chrono(
            chrono::DateTime::parse_from_rfc3339(&format!("2025-05-29T{h:02}:{m:02}:00Z")).unwrap(),
        )
    };
    db.coll
        .insert_many([
            doc! { "createdAt": at(12, 0), "utility": "IKEDC", "amount": "₦25,500.00", "status": "fulfilled" },
            doc! { "createdAt": at(17, 59), "utility": "AEDC", "amount": 7500, "status": "fulfilled" },
            doc! { "createdAt": at(18, 0), "utility": "AEDC", "amount": 1, "status": "fulfilled" }, // next window
            doc! { "createdAt": at(11, 59), "utility": "AEDC", "amount": 1, "status": "fulfilled" }, // previous window
        ])
        .await
        .unwrap();
    let uri = server_uri();
    let env = [
        ("MONGODB_URI", uri.as_str()),
        ("POWER_REVENUE_DATABASE", db.name.as_str()),
    ];
    let (code, stdout, stderr) = report_dry_run("2025-05-29T12:00:00Z", &env);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("📅 Period: Afternoon Period (12:00 PM – 6:00 PM)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("₦33,000.00") && stdout.contains("📊 Total Transactions: 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("• IKEDC: ₦25,500.00 (1 transaction)"),
        "{stdout}"
    );

    let (code, _, stderr) = report_dry_run("2025-05-29T13:00:00Z", &env);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not a window start") && stderr.contains("2025-05-29T12:00:00+00:00"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reads_the_running_service_and_the_stopped_state() {
    let db = TestDb::new("cli_status").await;
    let mut svc = Service::start(&db.name, None, &[("POWER_REVENUE_WINDOW", "1h")]);
    svc.wait_connected().await;
    db.coll.insert_one(doc! { "createdAt": bson::DateTime::now(), "utility": "ekedc", "amount": "1,234.50", "status": "fulfilled" }).await.unwrap();
    let owned = svc.env().to_vec();
    let env: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // While it runs, the state directory is locked: status asks the service over HTTP.
    let stdout = wait_for(
        Duration::from_secs(20),
        "status showing the sale",
        async || {
            let (code, stdout, _) = run_cli(&["status"], &env);
            (code == 0 && stdout.contains("• EKEDC: ₦1,234.50 (1 transaction)")).then_some(stdout)
        },
    )
    .await;
    assert!(
        stdout.contains("Service: running") && stdout.contains("Stream: connected"),
        "{stdout}"
    );
    // A second service on the same state directory is refused with a clear message.
    let (code, _, stderr) = run_cli(
        &["serve"],
        &[
            env.as_slice(),
            &[("POWER_REVENUE_HTTP_ADDR", "127.0.0.1:0")],
        ]
        .concat(),
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("in use by another power-revenue process"),
        "{stderr}"
    );

    assert!(svc.terminate().success());
    let (code, stdout, stderr) = run_cli(&["status"], &env);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("not running") && stdout.contains("resume token saved"),
        "{stdout}"
    );
    assert!(
        stdout.contains("• EKEDC: ₦1,234.50 (1 transaction)"),
        "{stdout}"
    );
    let (code, json, _) = run_cli(&["status", "--json"], &env);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["open_windows"][0]["total"]["revenue"], "1234.50");
}

#[tokio::test(flavor = "multi_thread")]
async fn init_indexes_creates_the_window_index_idempotently() {
    let db = TestDb::new("cli_index").await;
    let uri = server_uri();
    let env = [
        ("MONGODB_URI", uri.as_str()),
        ("POWER_REVENUE_DATABASE", db.name.as_str()),
        ("POWER_REVENUE_TIME_FIELD", "soldAt"),
    ];
    for _ in 0..2 {
        let (code, stdout, stderr) = run_cli(&["init-indexes"], &env);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("power_revenue_status_time"), "{stdout}");
    }
    let indexes: Vec<_> = db
        .coll
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let ours: Vec<_> = indexes
        .iter()
        .filter(|i| i.keys == doc! { "status": 1, "soldAt": 1 })
        .collect();
    assert_eq!(ours.len(), 1, "{indexes:?}");
}
