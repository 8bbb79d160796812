//! Silence baselines by the reports' rules, through the real binary: the baselines come from
//! the sales the service counted (and the history it imported at its first start), so a
//! utility whose every amount is unreadable (`"abc"`, skipped by the rules) is never watched
//! however much it "sells"; and a utility whose usual sales at this hour fall below the
//! minimum leaves the watched set, its silence ended by one notice.

use crate::common::service::Service;
use crate::common::slack::FakeSlack;
use crate::common::{wait_for, TestDb};
use bson::{doc, Document};
use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;

fn sale(at: DateTime<Utc>, utility: &str, amount: &str) -> Document {
    doc! { "createdAt": bson::DateTime::from_chrono(at), "utility": utility, "amount": amount, "status": "fulfilled" }
}

/// One sale a second of `utility` at `amount`, on each of the last seven days, from `from` to
/// `to` seconds around this time of day.
fn history(now: DateTime<Utc>, utility: &str, amount: &str, from: i64, to: i64) -> Vec<Document> {
    (1..=7)
        .flat_map(|day| {
            let same_time = now - TimeDelta::days(day);
            (from..to).map(move |s| sale(same_time + TimeDelta::seconds(s), utility, amount))
        })
        .collect()
}

fn texts(slack: &FakeSlack) -> Vec<String> {
    slack
        .messages()
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect()
}

/// 5 s silences, 10 s windows.
fn watching(db: &TestDb, slack: &FakeSlack) -> Service {
    Service::start(
        &db.name,
        Some(&slack.url),
        &[
            ("POWER_REVENUE_WINDOW", "10s"),
            ("POWER_REVENUE_SILENCE", "5s"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_utility_whose_amounts_are_all_skipped_is_never_watched() {
    let db = TestDb::new("silence_skipped").await;
    let slack = FakeSlack::start().await;
    let now = Utc::now();
    // JED "sold" one a second every day and sells now, every amount unreadable; EKEDC sold
    // at this hour every day, and stops now.
    let mut docs = history(now, "JED", "abc", -30, 120);
    docs.extend(history(now, "EKEDC", "100", -30, 120));
    db.coll.insert_many(docs).await.unwrap();
    let svc = watching(&db, &slack);
    svc.wait_connected().await;
    let feed = async {
        for _ in 0..25 {
            db.coll
                .insert_one(sale(Utc::now(), "JED", "abc"))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    // EKEDC's alert shows the watcher is at work; JED is never named while it goes on.
    let (alert, ()) = tokio::join!(
        wait_for(
            Duration::from_secs(60),
            "EKEDC's silence alert",
            async || { texts(&slack).into_iter().find(|t| t.starts_with("🔕")) }
        ),
        feed
    );
    assert!(alert.starts_with("🔕 EKEDC: no sales for "), "{alert}");
    let all = texts(&slack).join("\n");
    assert!(!all.contains("JED"), "{all}");
    let status = svc.status().await.unwrap();
    let silent = status["silent"].as_array().expect("silent").clone();
    assert!(silent.iter().all(|s| s["utility"] != "JED"), "{status}");
    assert!(
        status["counters"]["skipped_by_reason"]
            .as_object()
            .is_some_and(|o| !o.is_empty()),
        "the live sales were skipped: {status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_utility_that_stops_being_usual_leaves_the_watched_set_once() {
    let db = TestDb::new("silence_retired").await;
    let slack = FakeSlack::start().await;
    // AEDC sold one a second until 15 s past this time of day on each of the last seven
    // days, never after; it sells nothing now.
    db.coll
        .insert_many(history(Utc::now(), "AEDC", "100", -30, 15))
        .await
        .unwrap();
    let svc = watching(&db, &slack);
    svc.wait_connected().await;
    let alert = wait_for(
        Duration::from_secs(60),
        "AEDC's silence alert",
        async || texts(&slack).into_iter().find(|t| t.starts_with("🔕")),
    )
    .await;
    assert!(
        alert.starts_with("🔕 AEDC: no sales for ")
            && alert.ends_with(" (usually 5 in 5s at this hour)"),
        "{alert}"
    );
    // Past 15 s after this time of day, AEDC's usual sales are none: one notice.
    let notice = wait_for(Duration::from_secs(60), "the notice", async || {
        texts(&slack).into_iter().find(|t| t.starts_with("ℹ️"))
    })
    .await;
    assert!(
        notice.starts_with(
            "ℹ️ AEDC: no longer watched: now usually fewer than 5 sales in 5s at this hour (silent for "
        ),
        "{notice}"
    );
    wait_for(Duration::from_secs(30), "AEDC out of the API", async || {
        let status = svc.status().await?;
        status["silent"]
            .as_array()?
            .iter()
            .all(|s| s["utility"] != "AEDC")
            .then_some(())
    })
    .await;
    // Some seconds on: nothing more about AEDC.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let about: Vec<String> = texts(&slack)
        .into_iter()
        .filter(|t| t.contains("AEDC"))
        .collect();
    assert_eq!(about.len(), 2, "{about:?}");
}
