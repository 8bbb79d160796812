//! Faults against the real binary and a real server; each checks the money afterwards.

use crate::common::service::Service;
use crate::common::slack::FakeSlack;
use crate::common::{report_of, spec, upcoming, wait_for, TestDb};
use bson::{doc, Bson, Document};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use power_revenue::devserver::DevServer;
use power_revenue::report::time_line;
use power_revenue::window::Window;
use std::time::Duration;

fn sale(at: DateTime<Utc>, utility: &str, amount: impl Into<Bson>) -> Document {
    doc! { "createdAt": bson::DateTime::from_chrono(at), "utility": utility, "amount": amount.into(), "status": "fulfilled" }
}

fn messages_for(slack: &FakeSlack, w: &Window) -> Vec<String> {
    slack.messages_about(&time_line(w, Tz::UTC))
}

async fn wait_applied(svc: &Service, n: u64) {
    wait_for(
        Duration::from_secs(30),
        &format!("{n} events applied"),
        async || {
            let s = svc.status().await?;
            (s["counters"]["events_applied"].as_u64()? >= n).then_some(())
        },
    )
    .await;
}

/// A connected service with 30 s windows on a dedicated server, and a time inside the next
/// window to date sales at.
async fn on_own_server(
    server: &DevServer,
    tag: &str,
) -> (TestDb, FakeSlack, Service, Window, DateTime<Utc>) {
    let db = TestDb::on(&server.uri(), tag).await;
    let slack = FakeSlack::start().await;
    let uri = server.uri();
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[("MONGODB_URI", &uri), ("POWER_REVENUE_WINDOW", "30s")],
    );
    svc.wait_connected().await;
    let w = upcoming(30, 1);
    let at = w.start + TimeDelta::seconds(1);
    (db, slack, svc, w, at)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_sale_is_carried_by_the_next_report() {
    let db = TestDb::new("late").await;
    let slack = FakeSlack::start().await;
    let svc = Service::start(&db.name, Some(&slack.url), &[]);
    svc.wait_connected().await;
    let w = upcoming(5, 1);
    db.coll
        .insert_one(sale(w.start, "IKEDC", 100))
        .await
        .unwrap();
    let first = report_of(&slack, &w, 30).await;
    assert!(first.contains("📊 Total Transactions: 1"), "{first}");

    // A sale for W, arriving after W was reported.
    db.coll
        .insert_one(sale(w.start + TimeDelta::seconds(1), "EKEDC", "1,500"))
        .await
        .unwrap();
    let status = wait_for(
        Duration::from_secs(20),
        "status showing the late sale",
        async || {
            let s = svc.status().await?;
            (s["late_awaiting_report"].as_array()?.len() == 1).then_some(s)
        },
    )
    .await;
    assert_eq!(
        status["late_awaiting_report"][0][1]["revenue"], "1500.00",
        "{status}"
    );
    let label = power_revenue::report::window_label(&w, Tz::UTC);
    let needle = format!("Late for {label}: +₦1,500.00, 1 transaction");
    let carrier = wait_for(
        Duration::from_secs(30),
        "a report carrying the correction",
        async || slack.messages_about(&needle).first().cloned(),
    )
    .await;
    assert!(
        !carrier.contains(&time_line(&w, Tz::UTC)),
        "the correction rides on a later window's report"
    );
    // Carried once only.
    let later = spec(5).next(&spec(5).next(&spec(5).window_of(Utc::now())));
    wait_for(Duration::from_secs(30), "a later report", async || {
        messages_for(&slack, &later).first().cloned()
    })
    .await;
    assert_eq!(slack.messages_about(&needle).len(), 1);
    assert_eq!(messages_for(&slack, &w).len(), 1);
    // The window's record now holds the database's figures at the re-check: report + correction.
    let windows = svc.get_json("/api/v1/windows?last=50").await.unwrap();
    let record = windows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["start"].as_str().and_then(|s| s.parse().ok()) == Some(w.start))
        .unwrap_or_else(|| panic!("no record for {}: {windows}", w.start));
    assert_eq!(record["reconciled"]["count"], 1, "{record}");
    let revenue: rust_decimal::Decimal = record["rechecked"]["revenue"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{record}"));
    assert_eq!(revenue, rust_decimal::Decimal::from(1600), "{record}");
    assert_eq!(record["rechecked"]["count"], 2, "{record}");
}

#[tokio::test(flavor = "multi_thread")]
async fn history_lost_rebuilds_the_open_windows_from_the_database() {
    // A server that forgets quickly: 50 oplog entries, 1 s.
    let server = DevServer::start(
        None,
        &[
            "--oplog-max-entries",
            "50",
            "--oplog-retention-seconds",
            "1",
        ],
    )
    .unwrap();
    let (db, slack, mut svc, w, at) = on_own_server(&server, "lost").await;
    db.coll
        .insert_many((0..5).map(|_| sale(at, "IKEDC", 100)))
        .await
        .unwrap();
    wait_applied(&svc, 5).await;
    assert!(svc.terminate().success());

    // While it is down: 3 more sales, then enough other writes to roll the oplog past its token.
    db.coll
        .insert_many((0..3).map(|_| sale(at, "AEDC", "₦2,000")))
        .await
        .unwrap();
    for _ in 0..4 {
        db.coll
            .insert_many((0..40).map(|i| doc! { "filler": i, "status": "pending" }))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    // SecantusDB prunes its oplog lazily; force the sweep a real oplog would have made.
    db.client
        .database("admin")
        .run_command(doc! { "secantusAdmin.pruneOplog": 1 })
        .await
        .unwrap();
    svc.restart();
    wait_for(
        Duration::from_secs(60),
        "the history-lost alert",
        async || {
            slack
                .messages_about("🚨 power-revenue: the change stream could not resume")
                .first()
                .cloned()
        },
    )
    .await;
    svc.wait_connected().await;
    // Sales after the rebuild are streamed on top of the recomputed totals.
    db.coll.insert_one(sale(at, "IKEDC", 1)).await.unwrap();

    let text = report_of(&slack, &w, 60).await;
    assert!(
        text.contains("₦6,501.00") && text.contains("📊 Total Transactions: 9"),
        "{text}"
    );
    assert!(text.contains("♻️ Recomputed"), "{text}");
    assert!(
        !text.contains("⚠️"),
        "rebuilt + streamed must equal the database: {text}"
    );
    assert!(svc.output().contains("history lost"), "{}", svc.output());
}

#[tokio::test(flavor = "multi_thread")]
async fn missed_windows_are_reported_oldest_first_after_downtime() {
    let db = TestDb::new("downtime").await;
    let slack = FakeSlack::start().await;
    let mut svc = Service::start(&db.name, Some(&slack.url), &[]);
    svc.wait_connected().await;
    assert!(svc.terminate().success());

    // Three windows pass while it is down; each gets a different number of sales.
    let first = upcoming(5, 1);
    let windows: Vec<Window> = std::iter::successors(Some(first), |w| Some(spec(5).next(w)))
        .take(3)
        .collect();
    for (i, w) in windows.iter().enumerate() {
        db.coll
            .insert_many((0..=i).map(|_| sale(w.start, "IKEDC", 10)))
            .await
            .unwrap();
    }
    let wait_until = windows[2].end + TimeDelta::seconds(2);
    tokio::time::sleep((wait_until - Utc::now()).to_std().unwrap_or_default()).await;
    svc.restart();

    let mut order = vec![];
    for (i, w) in windows.iter().enumerate() {
        let text = report_of(&slack, w, 60).await;
        assert!(
            text.contains(&format!("📊 Total Transactions: {}", i + 1)),
            "{text}"
        );
        order.push(
            slack
                .messages()
                .iter()
                .position(|m| m["text"].as_str().unwrap().contains(&time_line(w, Tz::UTC)))
                .unwrap(),
        );
    }
    assert!(
        order.windows(2).all(|p| p[0] < p[1]),
        "oldest first: {order:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_catch_up_limit_skips_old_windows_and_says_so() {
    let db = TestDb::new("catchup").await;
    let slack = FakeSlack::start().await;
    let mut svc = Service::start(&db.name, Some(&slack.url), &[]);
    svc.wait_connected().await;
    let old = spec(5).window_of(Utc::now());
    assert!(svc.terminate().success());
    tokio::time::sleep(Duration::from_secs(17)).await;
    svc.restart_with(&[("POWER_REVENUE_MAX_CATCHUP", "5s")]);
    wait_for(Duration::from_secs(30), "the catch-up alert", async || {
        slack
            .messages_about("beyond POWER_REVENUE_MAX_CATCHUP")
            .first()
            .cloned()
    })
    .await;
    let recent = spec(5).window_of(Utc::now());
    report_of(&slack, &recent, 30).await;
    let next_after_old = spec(5).next(&old);
    assert!(
        messages_for(&slack, &next_after_old).is_empty(),
        "a window beyond the limit was reported"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_dies_and_comes_back() {
    let storage = tempfile::tempdir().unwrap();
    let mut server = DevServer::start(Some(storage.path()), &["--sync-on-commit"]).unwrap();
    let port = server.port;
    let (db, slack, svc, w, at) = on_own_server(&server, "dbdown").await;
    db.coll
        .insert_many((0..4).map(|_| sale(at, "IKEDC", "250.50")))
        .await
        .unwrap();
    wait_applied(&svc, 4).await;

    server.shutdown();
    wait_for(
        Duration::from_secs(40),
        "the service to notice",
        async || {
            let s = svc.status().await?;
            (s["counters"]["stream_connected"] == false).then_some(())
        },
    )
    .await;
    assert!(
        svc.output().contains("retrying with backoff"),
        "{}",
        svc.output()
    );

    let _server = DevServer::start_on(port, Some(storage.path()), &["--sync-on-commit"]).unwrap();
    wait_for(
        Duration::from_secs(60),
        "the stream to reconnect",
        async || {
            let s = svc.status().await?;
            (s["counters"]["stream_connected"] == true
                && s["counters"]["reconnects"].as_u64()? >= 1)
                .then_some(())
        },
    )
    .await;
    let db2 = TestDb::on(&_server.uri(), "unused").await;
    let coll = db2
        .client
        .database(&db.name)
        .collection::<Document>("power_transaction_items");
    coll.insert_many((0..2).map(|_| sale(at, "EKEDC", 1000)))
        .await
        .unwrap();

    let text = report_of(&slack, &w, 60).await;
    assert!(
        text.contains("₦3,002.00") && text.contains("📊 Total Transactions: 6"),
        "{text}"
    );
    assert!(
        !text.contains("⚠️"),
        "nothing lost or doubled in the stream: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_down_for_a_while_then_every_report_arrives_once() {
    let db = TestDb::new("slackdown").await;
    let reserved = FakeSlack::reserve();
    let mut svc = Service::start(&db.name, Some(&reserved.url), &[]);
    svc.wait_connected().await;
    let w = upcoming(5, 1);
    db.coll
        .insert_one(sale(w.start, "IKEDC", 777))
        .await
        .unwrap();
    // Connection refused: the report stays pending, visibly, across a restart.
    let status = wait_for(
        Duration::from_secs(40),
        "a pending report with an error",
        async || {
            let s = svc.status().await?;
            let p = s["pending_reports"].as_array()?.first()?.clone();
            p["last_error"]
                .as_str()?
                .contains("cannot reach Slack")
                .then_some(s)
        },
    )
    .await;
    assert!(!status.to_string().contains("SECRETWEBHOOKTOKEN"));
    assert!(svc.terminate().success());
    svc.restart();
    tokio::time::sleep(Duration::from_secs(6)).await;

    let slack = reserved.open();
    let text = report_of(&slack, &w, 60).await;
    assert!(text.contains("• IKEDC: ₦777.00 (1 transaction)"), "{text}");
    // Every window that closed meanwhile arrives once, in order.
    let next = spec(5).next(&w);
    report_of(&slack, &next, 30).await;
    let starts: Vec<String> = slack
        .messages()
        .iter()
        .filter_map(|m| {
            m["blocks"].as_array()?.last()?["elements"]
                .as_array()?
                .last()?["text"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let mut sorted = starts.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(starts, sorted, "each window once, oldest first");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_documents_are_skipped_counted_and_logged_at_a_bounded_rate() {
    let db = TestDb::new("corpus").await;
    let slack = FakeSlack::start().await;
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[("POWER_REVENUE_WINDOW", "10s")],
    );
    svc.wait_connected().await;
    let w = upcoming(10, 1);
    let at = bson::DateTime::from_chrono(w.start);
    let mut nested = Bson::Int32(1);
    for _ in 0..90 {
        nested = Bson::Document(doc! { "x": nested });
    }
    let bad_amounts: Vec<Bson> = vec![
        "abc".into(),
        "1,2,3".into(),
        "--5".into(),
        "NaN".into(),
        "1e400".into(),
        "".into(),
        "9".repeat(40).into(),
        "x".repeat(200_000).into(),
        Bson::Double(f64::NAN),
        Bson::Double(1e300),
        Bson::Double(-5.0),
        Bson::Boolean(true),
        Bson::Null,
        nested.clone(),
        Bson::Array(vec![1.into()]),
        Bson::Decimal128("NaN".parse().unwrap()),
        Bson::Decimal128("-1".parse().unwrap()),
        Bson::Int64(i64::MIN),
    ];
    let mut docs: Vec<Document> = vec![];
    for round in 0..3 {
        for a in &bad_amounts {
            docs.push(doc! { "createdAt": at, "utility": "IKEDC", "amount": a.clone(), "status": "fulfilled" });
        }
        docs.push(doc! { "utility": "IKEDC", "amount": 5, "status": "fulfilled" }); // no time
        docs.push(doc! { "createdAt": "2025-05-29", "utility": "IKEDC", "amount": 5, "status": "fulfilled" });
        docs.push(doc! { "createdAt": at, "utility": nested.clone(), "amount": "₦100", "status": "fulfilled" }); // good: UNKNOWN
        docs.push(doc! { "createdAt": at, "utility": "x".repeat(10_000), "amount": 100, "status": "fulfilled" }); // good
        for i in 0..10 {
            docs.push(doc! { "createdAt": at, "utility": "EKEDC", "amount": format!("{}.25", round * 10 + i), "status": "fulfilled" });
        }
    }
    let bad = 3 * (bad_amounts.len() + 2);
    db.coll.insert_many(docs).await.unwrap();

    // Good: 3 × (100 + 100) + Σ_{k=0}^{29} (k + 0.25) = 600 + 435 + 7.50 = 1042.50, 36 sales.
    let text = report_of(&slack, &w, 40).await;
    assert!(
        text.contains("₦1,042.50") && text.contains("📊 Total Transactions: 36"),
        "{text}"
    );
    assert!(
        text.contains("• UNKNOWN: ₦300.00 (3 transactions)"),
        "{text}"
    );
    assert!(
        text.chars().count() < 4000,
        "a huge utility name is cut: {}",
        text.chars().count()
    );
    let status = svc.status().await.unwrap();
    assert_eq!(status["counters"]["events_skipped"], bad as u64, "{status}");
    assert!(
        status["counters"]["skipped_by_reason"]["amount_unparseable"]
            .as_u64()
            .unwrap()
            >= 3
    );
    let out = svc.output();
    let logged = out.matches("Sale skipped.").count();
    assert!(
        (1..=20).contains(&logged),
        "skip logs are bounded: {logged}"
    );
    assert!(!out.contains("panicked"), "{out}");
}
