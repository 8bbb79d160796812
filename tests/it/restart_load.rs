//! Bounded queries and a restart under load: every command the service sends carries
//! `maxTimeMS`; one the server stops at its limit is retried; and a restart opens its change
//! stream first, whatever queries are still running. Each test has a server of its own: the
//! failpoints they arm are server-wide.

use crate::common::service::{run_cli, Service};
use crate::common::slack::FakeSlack;
use crate::common::{report_of, wait_for, TestDb};
use bson::{doc, Document};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use power_revenue::app::QUERIES_APP;
use power_revenue::devserver::DevServer;
use power_revenue::report::time_line;
use power_revenue::window::Window;
use std::time::{Duration, Instant};

/// How long the server holds every query of the service in the slow-query test.
const QUERY_BLOCK_SECS: u64 = 40;

fn sale(at: DateTime<Utc>, amount: &str) -> Document {
    doc! { "createdAt": bson::DateTime::from_chrono(at), "utility": "IKEDC", "amount": amount, "status": "fulfilled" }
}

async fn fail_point(client: &mongodb::Client, command: Document) {
    client
        .database("admin")
        .run_command(command)
        .await
        .expect("the server takes the failpoint");
}

/// The report's total line and transaction count: `("₦1,500.50", 2)`.
fn total_of(text: &str) -> (String, u64) {
    let mut lines = text.lines().skip_while(|l| !l.starts_with("💰"));
    let revenue = lines.nth(1).unwrap_or_default().to_owned();
    let count = text
        .lines()
        .find_map(|l| l.strip_prefix("📊 Total Transactions: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (revenue, count)
}

/// A pending report whose `$facet` the server is still running (held by a failpoint, as a busy
/// server would hold it) when the process is killed and restarted: the new process opens its
/// stream while that query still runs, waits before sending it again, and the report still
/// comes out exact.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_opens_its_stream_while_a_slow_report_query_is_still_running() {
    let server = DevServer::start(None, &["--enable-test-commands"]).unwrap();
    let uri = server.uri();
    let db = TestDb::on(&uri, "slow_query").await;
    let slack = FakeSlack::start().await;
    let mut svc = Service::start(&db.name, Some(&slack.url), &[("MONGODB_URI", &uri)]);
    svc.wait_connected().await;
    // From now on the server answers every query of the service only after 40 s; the stream's
    // own client (another application name) is not held.
    fail_point(
        &db.client,
        doc! {
            "configureFailPoint": "failCommand",
            "mode": "alwaysOn",
            "data": {
                "failCommands": ["aggregate", "find", "listCollections"],
                "appName": QUERIES_APP,
                "blockConnection": true,
                "blockTimeMS": (QUERY_BLOCK_SECS * 1000) as i64,
            },
        },
    )
    .await;
    let now = Utc::now();
    let w = crate::common::spec(5).window_of(now);
    db.coll
        .insert_many([sale(now, "1,500.50"), sale(now, "₦2,000")])
        .await
        .unwrap();
    // The window closes, and its report's query is sent and held.
    wait_for(
        (w.end - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(30),
        "the window's report query",
        async || {
            let log = svc.current_log();
            let closed = log
                .lines()
                .any(|l| l.contains("Window closed.") && l.contains(&w.id().to_string()));
            closed.then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    svc.kill9();
    svc.restart();
    let restarted = Instant::now();
    wait_for(
        Duration::from_secs(QUERY_BLOCK_SECS / 2),
        "the stream to open while the queries are held",
        async || {
            let s = svc.status().await?;
            s["counters"]["stream_connected"].as_bool().filter(|c| *c)
        },
    )
    .await;
    let connected_in = restarted.elapsed();
    // Causality, not only the clock: the report, which needs the held query, is not out yet.
    let line = time_line(&w, Tz::UTC);
    assert!(
        slack.messages_about(&line).is_empty(),
        "the report was posted before the stream opened"
    );
    eprintln!("stream open {connected_in:?} after the restart, the report's query still held");
    // The query the killed process left running is not doubled at once.
    assert!(
        svc.current_log()
            .contains("The last process stopped during this report's queries"),
        "{}",
        svc.current_log()
    );
    fail_point(
        &db.client,
        doc! { "configureFailPoint": "failCommand", "mode": "off" },
    )
    .await;
    // The stream counts what comes after the restart; both reports are exact.
    let later = Utc::now();
    let next = crate::common::spec(5).window_of(later);
    db.coll.insert_one(sale(later, "700")).await.unwrap();
    let text = report_of(&slack, &w, QUERY_BLOCK_SECS + 60).await;
    assert_eq!(total_of(&text), ("₦3,500.50".to_owned(), 2), "{text}");
    assert!(!text.contains("⚠️"), "{text}");
    let text = report_of(&slack, &next, 60).await;
    assert_eq!(total_of(&text), ("₦700.00".to_owned(), 1), "{text}");
    assert!(!text.contains("⚠️") && !text.contains("ℹ️"), "{text}");
}

/// The server stops the window's query at its limit (`MaxTimeMSExpired`, code 50) twice: each
/// time is logged once and retried, and the report is the database's, exact. Every command the
/// service and `setup` sent meanwhile carried `maxTimeMS` (the server's profiler says).
#[tokio::test(flavor = "multi_thread")]
async fn every_command_carries_max_time_and_a_query_stopped_at_its_limit_is_retried() {
    let server = DevServer::start(None, &["--enable-test-commands"]).unwrap();
    let uri = server.uri();
    let db = TestDb::on(&uri, "max_time").await;
    for name in [db.name.as_str(), "admin", "local"] {
        let _ = db
            .client
            .database(name)
            .run_command(doc! { "profile": 2 })
            .await;
    }
    let (code, _, err) = run_cli(
        &["setup"],
        &[("MONGODB_URI", &uri), ("POWER_REVENUE_DATABASE", &db.name)],
    );
    assert_eq!(code, 0, "{err}");
    fail_point(
        &db.client,
        doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 2 },
            "data": { "failCommands": ["aggregate"], "appName": QUERIES_APP, "errorCode": 50 },
        },
    )
    .await;
    let slack = FakeSlack::start().await;
    let svc = Service::start(&db.name, Some(&slack.url), &[("MONGODB_URI", &uri)]);
    svc.wait_connected().await;
    let now = Utc::now();
    let w: Window = crate::common::spec(5).window_of(now);
    db.coll
        .insert_many([sale(now, "100"), sale(now, "250.25")])
        .await
        .unwrap();
    let text = report_of(&slack, &w, 60).await;
    assert_eq!(total_of(&text), ("₦350.25".to_owned(), 2), "{text}");
    assert!(!text.contains("⚠️"), "not posted from the stream: {text}");
    let log = svc.current_log();
    let limit_hits = log
        .lines()
        .filter(|l| l.contains("ran past its 300 s limit"))
        .count();
    assert_eq!(limit_hits, 2, "each stop logged once:\n{log}");
    // The oplog headroom is read 20 s after the stream opened.
    let local = db.client.database("local");
    wait_for(Duration::from_secs(60), "the oplog read", async || {
        let profile = local.collection::<Document>("system.profile");
        (profile.count_documents(doc! { "op": "query" }).await.ok()? > 0).then_some(())
    })
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for name in [db.name.as_str(), "admin", "local"] {
        let profile = db
            .client
            .database(name)
            .collection::<Document>("system.profile");
        let mut entries = profile.find(doc! {}).await.unwrap();
        while entries.advance().await.unwrap() {
            let entry = entries.deserialize_current().unwrap();
            let Ok(command) = entry.get_document("command") else {
                continue;
            };
            let Some(name) = command.keys().next().cloned() else {
                continue;
            };
            // The test's own inserts and failpoints; the driver's handshakes and sessions.
            if [
                "insert",
                "configureFailPoint",
                "profile",
                "hello",
                "isMaster",
                "endSessions",
            ]
            .contains(&name.as_str())
            {
                continue;
            }
            assert!(
                command.get("maxTimeMS").is_some(),
                "{name} sent without maxTimeMS: {command}"
            );
            seen.insert(name);
        }
    }
    // The `$facet` and the stream, the restatement mode, the oplog read, and setup's index and
    // pre-images (this server's profiler leaves out `ping`, the cluster time read).
    for name in [
        "aggregate",
        "listCollections",
        "find",
        "createIndexes",
        "collMod",
    ] {
        assert!(seen.contains(name), "no {name} profiled: {seen:?}");
    }
}
