//! Restatements against the real binary and a real server: sales that change after their
//! window was reported (refund, delete, amount edit, moved time, back-dated insert, re-fulfil,
//! replace) reach later reports as signed corrections, with and without pre-images, so that
//! for every window report + corrections = what the database holds now.

use crate::common::service::{run_cli, Service};
use crate::common::slack::FakeSlack;
use crate::common::{report_of, spec, upcoming, wait_for, TestDb};
use bson::{doc, Document};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use futures::TryStreamExt;
use power_revenue::report::{time_line, window_label};
use power_revenue::window::Window;
use regex::Regex;
use rust_decimal::Decimal;
use std::time::Duration;

fn sale(id: i32, at: DateTime<Utc>, utility: &str, naira: i64) -> Document {
    doc! { "_id": id, "createdAt": bson::DateTime::from_chrono(at), "utility": utility,
    "amount": naira, "status": "fulfilled" }
}

/// Revenue and count of window `w` in the database now, computed here from the documents
/// (independently of the service's rules: these tests use whole-naira integer amounts).
async fn database_now(db: &TestDb, w: &Window) -> (Decimal, i64) {
    let filter = doc! { "status": "fulfilled", "createdAt": {
    "$gte": bson::DateTime::from_chrono(w.start), "$lt": bson::DateTime::from_chrono(w.end) } };
    let docs: Vec<Document> = db
        .coll
        .find(filter)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let revenue = docs
        .iter()
        .map(|d| {
            Decimal::from(
                d.get_i64("amount")
                    .or_else(|_| d.get_i32("amount").map(i64::from))
                    .unwrap(),
            )
        })
        .sum();
    (revenue, docs.len() as i64)
}

fn naira(s: &str) -> Decimal {
    s.replace(['₦', ','], "").parse().unwrap()
}

/// What the posts so far say window `w` holds: its report plus every correction for it.
fn posted(slack: &FakeSlack, w: &Window) -> Option<(Decimal, i64)> {
    let reports = slack.messages_about(&time_line(w, Tz::UTC));
    let report = reports.first()?;
    let total = Regex::new(r"Total Revenue Generated:\n(₦[0-9,.]+)").unwrap();
    let count = Regex::new(r"Total Transactions: (\d+)").unwrap();
    let (mut revenue, mut n) = match (total.captures(report), count.captures(report)) {
        (Some(t), Some(c)) => (naira(&t[1]), c[1].parse::<i64>().unwrap()),
        _ => (Decimal::ZERO, 0),
    };
    let label = regex::escape(&window_label(w, Tz::UTC));
    let line = Regex::new(&format!(
        r"(?:Late|Correction) for {label}: ([+-])(₦[0-9,.]+), ([+-]?\d+) transactions?"
    ))
    .unwrap();
    for message in slack.messages() {
        let text = message["text"].as_str().unwrap_or_default();
        for c in line.captures_iter(text) {
            let amount = naira(&c[2]);
            revenue += if &c[1] == "-" { -amount } else { amount };
            n += c[3].parse::<i64>().unwrap();
        }
    }
    Some((revenue, n))
}

/// Waits until the posts for every window in `windows` add up to the database, then for one
/// more report, and checks they still do (nothing posted twice).
async fn posts_match_database(slack: &FakeSlack, db: &TestDb, windows: &[Window]) {
    for w in windows {
        let want = database_now(db, w).await;
        wait_for(
            Duration::from_secs(60),
            &format!("report + corrections = database for {}", w.start),
            async || (posted(slack, w)? == want).then_some(()),
        )
        .await;
    }
    let next = spec(5).next(&spec(5).window_of(Utc::now()));
    // Without pre-images this report re-checks every reported window: on a busy machine the
    // test server takes a while over those queries.
    report_of(slack, &next, 60).await;
    for w in windows {
        assert_eq!(
            posted(slack, w),
            Some(database_now(db, w).await),
            "{}",
            w.start
        );
    }
}

/// The mutations of the issue, on a window already reported: refund, delete, amount edit,
/// time moved out (into a later, open window), back-dated insert, re-fulfil, replace.
async fn mutate_after_report(db: &TestDb, slack: &FakeSlack) -> Vec<Window> {
    let w = upcoming(5, 1);
    let at = |s: i64| w.start + TimeDelta::milliseconds(s);
    let docs: Vec<Document> = (1..=8)
        .map(|i| {
            sale(
                i,
                at(i64::from(i) * 100),
                ["IKEDC", "EKEDC"][i as usize % 2],
                1_000 * i64::from(i),
            )
        })
        .collect();
    db.coll.insert_many(docs).await.unwrap();
    let first = report_of(slack, &w, 30).await;
    assert!(first.contains("📊 Total Transactions: 8"), "{first}");

    let later = spec(5).next(&spec(5).next(&spec(5).window_of(Utc::now())));
    let set = |id: i32, fields: Document| async move {
        db.coll
            .update_one(doc! { "_id": id }, doc! { "$set": fields })
            .await
            .unwrap();
    };
    set(1, doc! { "status": "refunded" }).await;
    db.coll.delete_one(doc! { "_id": 2 }).await.unwrap();
    set(3, doc! { "amount": 3_500 }).await;
    let moved = bson::DateTime::from_chrono(later.start + TimeDelta::seconds(1));
    set(4, doc! { "createdAt": moved }).await;
    db.coll
        .insert_one(sale(9, at(900), "AEDC", 700))
        .await
        .unwrap();
    set(5, doc! { "status": "pending" }).await;
    set(5, doc! { "status": "fulfilled" }).await;
    db.coll
        .replace_one(doc! { "_id": 6 }, sale(6, at(600), "IKEDC", 6_000))
        .await
        .unwrap();
    vec![w, later]
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_after_a_report_are_restated_with_pre_images() {
    let db = TestDb::new("restate_pre").await;
    let uri = crate::common::server_uri();
    let (code, out, err) = run_cli(
        &["setup"],
        &[
            ("MONGODB_URI", uri.as_str()),
            ("POWER_REVENUE_DATABASE", db.name.as_str()),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("pre-images are on"), "{out}");
    let slack = FakeSlack::start().await;
    let svc = Service::start(&db.name, Some(&slack.url), &[]);
    svc.wait_connected().await;
    let windows = mutate_after_report(&db, &slack).await;
    posts_match_database(&slack, &db, &windows).await;
    let status = svc.status().await.unwrap();
    assert_eq!(status["restatements"]["mode"], "pre_images", "{status}");
    // With pre-images the re-fulfilled and the replaced sale changed nothing: the corrections
    // net the refund, the delete, the edit, the move and the back-dated sale only.
    let (w, _) = (windows[0], ());
    let want = database_now(&db, &w).await;
    assert_eq!(
        want,
        (Decimal::from(36_000 - 1_000 - 2_000 + 500 - 4_000 + 700), 6)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_after_a_report_are_restated_without_pre_images() {
    let db = TestDb::new("restate_recheck").await;
    let slack = FakeSlack::start().await;
    let svc = Service::start(&db.name, Some(&slack.url), &[]);
    svc.wait_connected().await;
    let windows = mutate_after_report(&db, &slack).await;
    posts_match_database(&slack, &db, &windows).await;
    let status = svc.status().await.unwrap();
    assert_eq!(status["restatements"]["mode"], "recheck", "{status}");
    // No stream tally is ever posted: the replaced and re-fulfilled sales (counted again by
    // the stream) did not inflate any line.
    let everything = slack
        .messages()
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!everything.contains("+₦11,000.00"), "{everything}");
}

/// Twelve reported windows, each losing a sale at once: one report carries twelve correction
/// lines, and Slack (the loopback server refuses what Slack refuses) takes it.
#[tokio::test(flavor = "multi_thread")]
async fn twelve_windows_corrected_in_one_report_are_delivered() {
    let db = TestDb::new("restate_twelve").await;
    let slack = FakeSlack::start().await;
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[
            ("POWER_REVENUE_WINDOW", "2s"),
            ("POWER_REVENUE_GRACE", "1s"),
        ],
    );
    svc.wait_connected().await;
    let two = spec(2);
    let first = {
        let w = two.window_of(Utc::now() + TimeDelta::seconds(2));
        two.next(&w)
    };
    let mut windows = vec![first];
    while windows.len() < 12 {
        windows.push(two.next(windows.last().unwrap()));
    }
    let docs: Vec<Document> = windows
        .iter()
        .enumerate()
        .flat_map(|(i, w)| {
            let i = i as i32;
            [
                sale(2 * i + 1, w.start, "IKEDC", 1_000),
                sale(2 * i + 2, w.start, "EKEDC", 500),
            ]
        })
        .collect();
    db.coll.insert_many(docs).await.unwrap();
    for w in &windows {
        let text = report_of(&slack, w, 30).await;
        assert!(text.contains("📊 Total Transactions: 2"), "{text}");
    }
    // One sale of each window refunded in one go.
    let ids: Vec<i32> = (0..12).map(|i| 2 * i + 1).collect();
    db.coll
        .update_many(
            doc! { "_id": { "$in": ids } },
            doc! { "$set": { "status": "refunded" } },
        )
        .await
        .unwrap();
    let carrier = wait_for(
        Duration::from_secs(60),
        "a report with corrections",
        async || {
            slack.messages().into_iter().find(|m| {
                m["text"]
                    .as_str()
                    .is_some_and(|t| t.matches("Correction for ").count() >= 2)
            })
        },
    )
    .await;
    for w in &windows {
        let want = database_now(&db, w).await;
        assert_eq!(want, (Decimal::from(500), 1));
        wait_for(
            Duration::from_secs(60),
            "every window corrected",
            async || (posted(&slack, w)? == want).then_some(()),
        )
        .await;
    }
    assert!(
        slack.refusals().is_empty(),
        "Slack refused: {:?}",
        slack.refusals()
    );
    let text = carrier["text"].as_str().unwrap();
    assert!(text.contains("-₦1,000.00, -1 transaction"), "{text}");
}

/// Odd shapes: a nested status set through its dotted key, an array-valued time, a sale dated
/// in 2099. The first counts once; the others are skipped and counted by reason, in no window.
#[tokio::test(flavor = "multi_thread")]
async fn dotted_status_array_time_and_far_future_sales() {
    let db = TestDb::new("restate_shapes").await;
    let slack = FakeSlack::start().await;
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[("POWER_REVENUE_STATUS_FIELD", "meta.status")],
    );
    svc.wait_connected().await;
    let w = upcoming(5, 1);
    let at = |ms: i64| bson::DateTime::from_chrono(w.start + TimeDelta::milliseconds(ms));
    let c = &db.coll;
    c.insert_one(
        doc! { "_id": 1, "createdAt": at(100), "utility": "IKEDC", "amount": 1_500,
        "meta": { "status": "pending" } },
    )
    .await
    .unwrap();
    c.update_one(
        doc! { "_id": 1 },
        doc! { "$set": { "meta.status": "fulfilled" } },
    )
    .await
    .unwrap();
    let far = bson::DateTime::from_chrono("2099-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
    let spread = [bson::DateTime::from_millis(946_684_800_000), far];
    c.insert_many([
        doc! { "_id": 2, "createdAt": spread.to_vec(), "utility": "EKEDC", "amount": 700,
        "meta": { "status": "fulfilled" } },
        doc! { "_id": 3, "createdAt": far, "utility": "AEDC", "amount": 900,
        "meta": { "status": "fulfilled" } },
    ])
    .await
    .unwrap();
    let text = report_of(&slack, &w, 30).await;
    assert!(
        text.contains("₦1,500.00") && text.contains("📊 Total Transactions: 1"),
        "{text}"
    );
    assert!(
        !text.contains("differed"),
        "stream and database agree: {text}"
    );
    let status = svc.status().await.unwrap();
    let skipped = &status["counters"]["skipped_by_reason"];
    assert_eq!(skipped["time_not_date"], 1, "{status}");
    assert_eq!(skipped["time_in_future"], 1, "{status}");
    let current = svc.get_json("/api/v1/windows/current").await.unwrap();
    let starts: Vec<&str> = current["windows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["start"].as_str())
        .collect();
    assert!(starts.iter().all(|s| !s.starts_with("2099")), "{current}");
}

/// Changes no report carries: a sale back-dated into a window from before the service's first
/// start, and a refund in a reported window older than the horizon. Counted in `status` and
/// the metrics; no line is posted for either.
#[tokio::test(flavor = "multi_thread")]
async fn changes_to_unreported_and_old_windows_are_counted_not_posted() {
    let db = TestDb::new("restate_unposted").await;
    let slack = FakeSlack::start().await;
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[("POWER_REVENUE_RESTATE_HORIZON", "8s")],
    );
    svc.wait_connected().await;
    let w = upcoming(5, 1);
    db.coll
        .insert_one(sale(1, w.start, "IKEDC", 1_000))
        .await
        .unwrap();
    report_of(&slack, &w, 30).await;
    let beyond = w.end + TimeDelta::seconds(9);
    wait_for(
        Duration::from_secs(30),
        "the window to leave the horizon",
        async || (Utc::now() > beyond).then_some(()),
    )
    .await;
    db.coll
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "status": "refunded" } })
        .await
        .unwrap();
    let yesterday = Utc::now() - TimeDelta::days(1);
    db.coll
        .insert_one(sale(2, yesterday, "EKEDC", 500))
        .await
        .unwrap();
    let status = wait_for(
        Duration::from_secs(60),
        "both changes counted",
        async || {
            let s = svc.status().await?;
            let r = &s["restatements"];
            (r["unreported_windows"]["count"] == 1 && r["beyond_horizon"]["count"] == 1)
                .then_some(s)
        },
    )
    .await;
    assert_eq!(status["restatements"]["horizon_secs"], 8, "{status}");
    let metrics = reqwest::get(format!("{}/metrics", svc.http()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "power_revenue_changes_unreported_total 1",
        "power_revenue_changes_beyond_horizon_total 1",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    let label_now = window_label(&w, Tz::UTC);
    let label_then = window_label(&spec(5).window_of(yesterday), Tz::UTC);
    for message in slack.messages() {
        let text = message["text"].as_str().unwrap_or_default();
        assert!(
            !text.contains(&format!("for {label_now}:"))
                && !text.contains(&format!("for {label_then}:")),
            "posted: {text}"
        );
    }
}
