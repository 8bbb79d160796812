//! The configuration against a careless operator, through the real binary: empty secrets,
//! passwords holding every character that ends a part of a URI (as written and
//! percent-encoded) fed through every command and error path that prints something, and
//! durations far out of bounds. Every byte of every run's output is searched.

use crate::common::service::{run_cli, spawn_cli, Service};
use crate::common::slack::url_on;
use crate::common::{wait_for, TestDb};
use bson::doc;
use chrono::Utc;
use power_revenue::devserver::DevServer;
use std::path::Path;
use std::time::{Duration, Instant};

/// What sits between the two halves of a password.
const SEPARATORS: &[&str] = &[
    "?",
    "/",
    "#",
    "@",
    ":",
    "%",
    "%zz",
    "?x@y/z#w:v%u", // as written: invalid URIs
    "%3F",
    "%2F",
    "%23",
    "%40",
    "%3A",
    "%25", // percent-encoded: valid URIs
];

/// A password built around two marker halves: any piece of it, in any case, as written,
/// encoded or decoded, contains one of them.
fn password(i: usize, sep: &str) -> String {
    format!("lEfTpw{i}{sep}rIgHtpw{i}")
}

fn assert_no_leak(what: &str, output: &str) {
    let lower = output.to_lowercase();
    assert!(
        !lower.contains("leftpw") && !lower.contains("rightpw"),
        "{what}: a password leaked:\n{output}"
    );
}

fn is_encoded(sep: &str) -> bool {
    sep.len() == 3 && sep.starts_with('%') && sep != "%zz"
}

/// Runs the binary until it exits, or until its output shows `until` (then it is killed).
/// Returns the exit code (`None` if killed) and everything it printed.
fn run_until(args: &[&str], env: &[(&str, &str)], until: &str) -> (Option<i32>, String) {
    let (dir, mut child) = spawn_cli(args, env);
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        let printed = read(&out) + &read(&err);
        assert!(
            Instant::now() < deadline,
            "{args:?}: neither exited nor printed {until:?}:\n{printed}"
        );
        if printed.contains(until) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (code, read(&out) + &read(&err))
}

/// Every command that takes the URI, on one URI; checks what it must and returns all output.
fn every_command(uri: &str, encoded: bool, serve_until: &str) -> String {
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join("state");
    let env = [
        ("MONGODB_URI", uri),
        ("POWER_REVENUE_STATE_DIR", state_dir.to_str().unwrap()),
        ("POWER_REVENUE_HTTP_ADDR", "127.0.0.1:0"),
        ("RUST_LOG", "info,mongodb=debug"),
    ];
    let mut printed = String::new();
    // Left running, these retry for long: stopped once they have logged a failure.
    for (args, until) in [
        (&["serve"][..], serve_until),
        (
            &[
                "report",
                "--window-start",
                "2025-05-29T12:00:00Z",
                "--dry-run",
            ],
            "Reconciliation query failed; retrying.",
        ),
    ] {
        let (code, out) = run_until(args, &env, until);
        if encoded {
            assert_ne!(code, Some(0), "{args:?} {uri}: {out}");
        } else {
            assert_eq!(code, Some(2), "{args:?} {uri}: {out}");
            assert!(out.contains("must be percent-encoded"), "{out}");
            assert_eq!(out.trim().lines().count(), 1, "one line: {out}");
        }
        printed += &out;
    }
    for args in [&["setup"][..], &["status"], &["status", "--json"]] {
        let (code, out, err) = run_cli(args, &env);
        match (encoded, args[0]) {
            (false, _) => assert_eq!(code, 2, "{args:?} {uri}: {err}"),
            (true, "status") => {
                assert_eq!(code, 0, "{args:?}: {err}");
                assert!(out.contains("ops:****@"), "redacted source: {out}");
            }
            (true, _) => assert_eq!(code, 1, "{args:?} {uri}: {out}{err}"),
        }
        printed += &(out + &err);
    }
    // The same URI from a file and from a flag.
    let file = state.path().join("uri.secret");
    std::fs::write(&file, format!("{uri}\n")).unwrap();
    let (_, out, err) = run_cli(
        &["status"],
        &[
            ("MONGODB_URI_FILE", file.to_str().unwrap()),
            ("POWER_REVENUE_STATE_DIR", state_dir.to_str().unwrap()),
        ],
    );
    printed += &(out + &err);
    let (_, out, err) = run_cli(
        &[
            "--mongodb-uri",
            uri,
            "--state-dir",
            state_dir.to_str().unwrap(),
            "status",
        ],
        &[],
    );
    printed += &(out + &err);
    printed
}

#[test]
fn hostile_passwords_never_appear_in_any_output() {
    // Unreachable hosts (nothing listens on ports 1 and 2), a short server selection, one and
    // several hosts, and an SRV name that does not resolve.
    std::thread::scope(|threads| {
        for (i, sep) in SEPARATORS.iter().enumerate() {
            threads.spawn(move || {
                let pw = password(i, sep);
                let encoded = is_encoded(sep);
                for uri in [
                    format!("mongodb://ops:{pw}@127.0.0.1:1/power?serverSelectionTimeoutMS=300"),
                    format!(
                        "mongodb://ops:{pw}@127.0.0.1:1,127.0.0.1:2/power?replicaSet=rs0&serverSelectionTimeoutMS=300"
                    ),
                    format!("mongodb+srv://ops:{pw}@cluster0.power-revenue.invalid/power"),
                ] {
                    let srv = uri.starts_with("mongodb+srv");
                    let until = if srv { "\u{0}never" } else { "unavailable; retrying" };
                    let printed = every_command(&uri, encoded, until);
                    assert_no_leak(&uri, &printed);
                    // The error paths were reached (the URI's own server selection timeout).
                    let reached: &[&str] = match (encoded, srv) {
                        (false, _) => &["must be percent-encoded"],
                        (true, false) => &[
                            "Change stream unavailable",
                            "Reconciliation query failed",
                            "creating the index failed",
                            "Server selection timeout",
                        ],
                        (true, true) => &["could not be resolved"],
                    };
                    for needle in reached {
                        assert!(printed.contains(needle), "{needle}: {printed}");
                    }
                }
            });
        }
    });
}

/// A server that requires SCRAM and has no such user: every valid password is wrong.
#[test]
fn wrong_hostile_passwords_against_a_real_server_never_appear() {
    let server = DevServer::start(None, &["--auth"]).expect("SecantusDB starts");
    let port = server.port;
    std::thread::scope(|threads| {
        for (i, sep) in SEPARATORS.iter().enumerate().filter(|(_, s)| is_encoded(s)) {
            threads.spawn(move || {
                let pw = password(i, sep);
                let uri = format!(
                    "mongodb://ops:{pw}@127.0.0.1:{port}/power?directConnection=true&authSource=admin&serverSelectionTimeoutMS=2000"
                );
                let printed = every_command(&uri, true, "unavailable; retrying");
                assert!(
                    printed.contains("SCRAM failure: authentication failed"),
                    "the authentication failure was reached: {printed}"
                );
                assert_no_leak(&uri, &printed);
            });
        }
    });
}

/// The webhook's path is its secret: a refused one and one that cannot be reached.
#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_path_token_never_appears() {
    const URI: &str = "mongodb://ops:x@127.0.0.1:1/power";
    for url in [
        "http://hooks.slack.com/services/T0/B0/lEfTpw1?rIgHtpw1",
        "ftp://hooks.slack.com/services/T0/B0/lEfTpw2",
        "https://[hooks.slack.com/services/T0/B0/lEfTpw3",
        "lEfTpw4",
    ] {
        let (code, out, err) = run_cli(
            &["serve"],
            &[("MONGODB_URI", URI), ("SLACK_WEBHOOK_URL", url)],
        );
        assert_eq!(code, 2, "{url}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert_no_leak(url, &(out + &err));
    }
    // A webhook nobody answers: the report's posts fail and are retried, and logged.
    let db = TestDb::new("hardening_webhook").await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "{}/lEfTpw5/rIgHtpw5",
        url_on(dead.local_addr().unwrap().port())
    );
    drop(dead);
    let svc = Service::start(&db.name, Some(&url), &[("POWER_REVENUE_WINDOW", "2s")]);
    svc.wait_connected().await;
    db.coll
        .insert_one(doc! { "createdAt": bson::DateTime::from_chrono(Utc::now()), "utility": "IKEDC", "amount": 100, "status": "fulfilled" })
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(30),
        "a failed Slack post in the log",
        async || svc.output().contains("Slack post failed").then_some(()),
    )
    .await;
    assert_no_leak(&url, &svc.output());
}

/// Empty secrets, inline or from a file holding only a newline: exit 2, one line, before
/// connecting. (An empty token used to open every HTTP route.)
#[test]
fn empty_secrets_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let newline = dir.path().join("newline.secret");
    std::fs::write(&newline, "\n").unwrap();
    let newline = newline.to_str().unwrap();
    const URI: &str = "mongodb://ops:lEfTpw0@127.0.0.1:1/power";
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("MONGODB_URI", URI), ("POWER_REVENUE_API_TOKEN", "")],
            "POWER_REVENUE_API_TOKEN is set but empty",
        ),
        (
            &[("MONGODB_URI", URI), ("POWER_REVENUE_API_TOKEN", " ")],
            "POWER_REVENUE_API_TOKEN is set but empty",
        ),
        (
            &[
                ("MONGODB_URI", URI),
                ("POWER_REVENUE_API_TOKEN_FILE", newline),
            ],
            "POWER_REVENUE_API_TOKEN_FILE",
        ),
        (
            &[("MONGODB_URI", URI), ("SLACK_WEBHOOK_URL", "")],
            "SLACK_WEBHOOK_URL is set but empty",
        ),
        (
            &[("MONGODB_URI", URI), ("SLACK_WEBHOOK_URL_FILE", newline)],
            "SLACK_WEBHOOK_URL_FILE",
        ),
        (&[("MONGODB_URI", " ")], "MONGODB_URI is set but empty"),
        (&[("MONGODB_URI_FILE", newline)], "MONGODB_URI_FILE"),
    ];
    for (env, expected) in cases {
        for command in ["serve", "status"] {
            let (code, out, err) = run_cli(&[command], env);
            assert_eq!(code, 2, "{env:?}: {err}");
            assert!(err.contains(expected), "{env:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
            assert!(out.is_empty() && !err.contains("Change stream"), "{err}");
            assert_no_leak("empty secret", &(out + &err));
        }
    }
}

/// Durations far out of bounds: exit 2 with the bound, never a start and a panic, never a
/// silent 0.
#[test]
fn durations_out_of_bounds_are_refused_with_the_bound() {
    const URI: &str = "mongodb://ops:x@127.0.0.1:1/power";
    let cases = [
        ("POWER_REVENUE_MAX_CATCHUP", "300000y", "at most 366d"),
        ("POWER_REVENUE_MAX_CATCHUP", "367d", "at most 366d"),
        (
            "POWER_REVENUE_RESTATE_HORIZON",
            "18446744073709551615s",
            "at most 366d",
        ),
        ("POWER_REVENUE_MAX_FUTURE", "400000000y", "at most 366d"),
        ("POWER_REVENUE_ALERT_STREAM_DOWN", "8d", "at most 7d"),
        ("POWER_REVENUE_RETENTION", "400000000y", "at most 3653d"),
        ("POWER_REVENUE_RETENTION", "3d", "use at least 9d"),
        (
            "POWER_REVENUE_GRACE",
            "300000y",
            "not shorter than the window (6h)",
        ),
        (
            "POWER_REVENUE_GRACE",
            "400000000y",
            "not shorter than the window (6h)",
        ),
        (
            "POWER_REVENUE_GRACE",
            "6h",
            "not shorter than the window (6h)",
        ),
        (
            "POWER_REVENUE_WINDOW",
            "99999999999999999999d",
            "at most 1d",
        ),
    ];
    for (var, value, expected) in cases {
        let (code, out, err) = run_cli(&["serve"], &[("MONGODB_URI", URI), (var, value)]);
        assert_eq!(code, 2, "{var}={value}: {err}");
        assert!(
            err.contains(var) && err.contains(value) && err.contains(expected),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!(out + &err).contains("panicked"));
    }
}

/// A TLS file the driver cannot read is found only when the client is built, still before any
/// connection: exit 2 with one line, the password never shown.
#[test]
fn an_unreadable_tls_file_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (code, out, err) = run_cli(
        &["serve"],
        &[
            (
                "MONGODB_URI",
                "mongodb://ops:Sup3rS3cretPW@127.0.0.1:1/power?tls=true&tlsCAFile=/nonexistent/ca.pem",
            ),
            ("POWER_REVENUE_STATE_DIR", state.to_str().unwrap()),
            ("POWER_REVENUE_HTTP_ADDR", "127.0.0.1:0"),
        ],
    );
    assert_eq!(code, 2, "{out}{err}");
    let line = err.trim();
    assert_eq!(line.lines().count(), 1, "{err}");
    assert!(
        line.contains("tlsCAFile") && line.contains("/nonexistent/ca.pem"),
        "{line}"
    );
    assert!(!(out + &err).contains("Sup3rS3cretPW"));
}
