//! Corrections per utility, through the real binary and a real server, in both restatement
//! modes: a sale moved between utilities, a refund and a late sale in one reported window (the
//! window's total unchanged), and a move alone in another (net zero). Each window's line is
//! followed by one `↳` line per utility whose figures changed, so that for every window and
//! every utility, report + corrections = the database; the history CSV says the same.

use crate::common::service::{run_cli, Service};
use crate::common::slack::FakeSlack;
use crate::common::{report_of, spec, upcoming, wait_for, TestDb};
use bson::{doc, Document};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;
use power_revenue::report::{time_line, window_label};
use power_revenue::window::Window;
use regex::Regex;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::time::Duration;

const TOKEN: &str = "utility-corrections-token";

/// Utility → (revenue, count).
type PerUtility = BTreeMap<String, (Decimal, i64)>;

fn sale(id: i32, at: DateTime<Utc>, utility: &str, naira: i64) -> Document {
    doc! { "_id": id, "createdAt": bson::DateTime::from_chrono(at), "utility": utility,
    "amount": naira, "status": "fulfilled" }
}

fn naira(s: &str) -> Decimal {
    s.replace(['₦', ','], "").parse().unwrap()
}

/// The database's figures for `w` now, per utility (the history test's own aggregation).
async fn database_now(db: &TestDb, w: &Window) -> PerUtility {
    crate::history::database_rows(db, &[*w])
        .await
        .into_iter()
        .map(|((_, utility), (revenue, count))| (utility, (revenue, count as i64)))
        .collect()
}

fn add(into: &mut PerUtility, name: &str, revenue: Decimal, count: i64) {
    let e = into.entry(name.to_owned()).or_default();
    *e = (e.0 + revenue, e.1 + count);
    if *e == (Decimal::ZERO, 0) {
        into.remove(name);
    }
}

/// What the channel was told of `w` per utility: its report's breakdown plus every `↳` line
/// under a line for `w`; also checks that each window line is the sum of its `↳` lines.
fn posted(slack: &FakeSlack, w: &Window) -> Option<PerUtility> {
    let reports = slack.messages_about(&time_line(w, Tz::UTC));
    let report = reports.first()?;
    let breakdown = Regex::new(r"(?m)^• ([A-Z]+): (₦[0-9,.]+) \((\d+) transactions?\)$").unwrap();
    let mut told = PerUtility::new();
    for c in breakdown.captures_iter(report) {
        add(&mut told, &c[1], naira(&c[2]), c[3].parse().unwrap());
    }
    let label = regex::escape(&window_label(w, Tz::UTC));
    let head = Regex::new(&format!(
        r"^(?:Late|Correction) for {label}: \+?(-?₦[0-9,.]+), ([+-]?\d+) transactions?$"
    ))
    .unwrap();
    let under = Regex::new(r"^↳ ([A-Z]+): \+?(-?₦[0-9,.]+), ([+-]?\d+) transactions?$").unwrap();
    for message in slack.messages() {
        let text = message["text"].as_str().unwrap_or_default();
        let mut open: Option<(Decimal, i64, Decimal, i64)> = None;
        for line in text.lines().chain([""]) {
            if let Some(c) = under.captures(line) {
                if let Some((_, _, r, n)) = open.as_mut() {
                    let (revenue, count) = (naira(&c[2]), c[3].parse::<i64>().unwrap());
                    add(&mut told, &c[1], revenue, count);
                    (*r, *n) = (*r + revenue, *n + count);
                }
                continue;
            }
            if let Some((want_r, want_n, r, n)) = open.take() {
                assert_eq!(
                    (r, n),
                    (want_r, want_n),
                    "window line = its ↳ lines: {text}"
                );
            }
            if let Some(c) = head.captures(line) {
                open = Some((naira(&c[1]), c[2].parse().unwrap(), Decimal::ZERO, 0));
            }
        }
    }
    Some(told)
}

/// The history CSV's rows for `w`, per utility.
async fn csv_of(svc: &Service, w: &Window) -> PerUtility {
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let body = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/windows?from={}&to={}",
            svc.http(),
            at(w.start),
            at(w.end)
        ))
        .bearer_auth(TOKEN)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut rows = PerUtility::new();
    for record in csv::Reader::from_reader(body.as_bytes()).records() {
        let r = record.unwrap();
        add(
            &mut rows,
            &r[2],
            r[3].parse().unwrap(),
            r[4].parse().unwrap(),
        );
    }
    rows
}

/// Window `a`: IKEDC ₦1,500, AEDC ₦700, EKEDC ₦300 reported; then the IKEDC sale moved to
/// EKEDC, the AEDC sale refunded and a late EKEDC ₦700 (total unchanged). Window `b`: one
/// sale moved from IKEDC to EKEDC (net zero). Per window and utility, posts = database.
async fn moved_refunded_and_late(svc: &Service, db: &TestDb, slack: &FakeSlack) {
    let a = upcoming(5, 1);
    let b = spec(5).next(&a);
    let at = |w: &Window, ms: i64| w.start + TimeDelta::milliseconds(ms);
    db.coll
        .insert_many([
            sale(1, at(&a, 100), "IKEDC", 1_500),
            sale(2, at(&a, 200), "AEDC", 700),
            sale(3, at(&a, 300), "EKEDC", 300),
            sale(4, at(&b, 100), "IKEDC", 1_000),
            sale(5, at(&b, 200), "EKEDC", 500),
        ])
        .await
        .unwrap();
    report_of(slack, &a, 30).await;
    report_of(slack, &b, 30).await;
    let set = |id: i32, fields: Document| async move {
        db.coll
            .update_one(doc! { "_id": id }, doc! { "$set": fields })
            .await
            .unwrap();
    };
    set(1, doc! { "utility": "EKEDC" }).await;
    set(2, doc! { "status": "refunded" }).await;
    db.coll
        .insert_one(sale(6, at(&a, 400), "EKEDC", 700))
        .await
        .unwrap();
    set(4, doc! { "utility": "EKEDC" }).await;

    let ekedc = |revenue: i64, count: i64| (Decimal::from(revenue), count);
    assert_eq!(
        database_now(db, &a).await,
        PerUtility::from([("EKEDC".to_owned(), ekedc(2_500, 3))])
    );
    assert_eq!(
        database_now(db, &b).await,
        PerUtility::from([("EKEDC".to_owned(), ekedc(1_500, 2))])
    );
    for w in [a, b] {
        let want = database_now(db, &w).await;
        wait_for(
            Duration::from_secs(60),
            &format!("per-utility corrections for {}", w.start),
            async || (posted(slack, &w)? == want).then_some(()),
        )
        .await;
        assert_eq!(csv_of(svc, &w).await, want, "history CSV for {}", w.start);
    }
    let all: String = slack
        .messages()
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("\n");
    for line in [
        format!(
            "Correction for {}: +₦0.00, 0 transactions\n↳ AEDC: -₦700.00, -1 transaction\n↳ EKEDC: +₦2,200.00, +2 transactions\n↳ IKEDC: -₦1,500.00, -1 transaction",
            window_label(&a, Tz::UTC)
        ),
        format!(
            "Correction for {}: +₦0.00, 0 transactions\n↳ EKEDC: +₦1,000.00, +1 transaction\n↳ IKEDC: -₦1,000.00, -1 transaction",
            window_label(&b, Tz::UTC)
        ),
    ] {
        assert!(all.contains(&line), "missing:\n{line}\nin:\n{all}");
    }
    // One more report: nothing is posted twice, and the posts still add up.
    let next = spec(5).next(&spec(5).window_of(Utc::now()));
    report_of(slack, &next, 60).await;
    for w in [a, b] {
        assert_eq!(posted(slack, &w), Some(database_now(db, &w).await));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn per_utility_corrections_with_pre_images() {
    let db = TestDb::new("utility_pre").await;
    let uri = crate::common::server_uri();
    let (code, out, err) = run_cli(
        &["setup"],
        &[
            ("MONGODB_URI", uri.as_str()),
            ("POWER_REVENUE_DATABASE", db.name.as_str()),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let slack = FakeSlack::start().await;
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[("POWER_REVENUE_API_TOKEN", TOKEN)],
    );
    svc.wait_connected().await;
    moved_refunded_and_late(&svc, &db, &slack).await;
    let status = svc.status().await.unwrap();
    assert_eq!(status["restatements"]["mode"], "pre_images", "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn per_utility_corrections_without_pre_images() {
    let db = TestDb::new("utility_recheck").await;
    let slack = FakeSlack::start().await;
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[("POWER_REVENUE_API_TOKEN", TOKEN)],
    );
    svc.wait_connected().await;
    moved_refunded_and_late(&svc, &db, &slack).await;
    let status = svc.status().await.unwrap();
    assert_eq!(status["restatements"]["mode"], "recheck", "{status}");
}
