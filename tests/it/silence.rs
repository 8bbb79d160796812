//! Silent-utility alerts through the real binary: a week of back-dated sales (written before
//! the service starts) gives IKEDC and EKEDC a baseline of 5 sales per 5 s at this time of day
//! (AEDC 2 or 3: below the minimum); IKEDC then stops selling while EKEDC goes on. Exactly one
//! "🔕 IKEDC" alert within the silence period plus one window, shown in the API meanwhile, and
//! exactly one "🔔 IKEDC … resumed" once it sells again.

use crate::common::browser::Browser;
use crate::common::service::{run_cli, Service};
use crate::common::slack::FakeSlack;
use crate::common::{report_of, upcoming, wait_for, TestDb};
use bson::{doc, Document};
use chrono::{DateTime, TimeDelta, Utc};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SILENCE_SECS: u64 = 5;
const WINDOW_SECS: u64 = 10;

fn sale(at: DateTime<Utc>, utility: &str) -> Document {
    doc! { "createdAt": bson::DateTime::from_chrono(at), "utility": utility, "amount": "100", "status": "fulfilled" }
}

/// Each of the last 7 days, around this time of day: IKEDC and EKEDC one sale a second,
/// AEDC one every 2 s (on average 2.5 per period: never watched).
fn baseline_sales(now: DateTime<Utc>) -> Vec<Document> {
    let mut docs = Vec::new();
    for day in 1..=7 {
        let same_time = now - TimeDelta::days(day);
        for s in -30..300 {
            let at = same_time + TimeDelta::seconds(s);
            docs.push(sale(at, "IKEDC"));
            docs.push(sale(at, "EKEDC"));
            if s % 2 == 0 {
                docs.push(sale(at, "AEDC"));
            }
        }
    }
    docs
}

fn texts_starting(slack: &FakeSlack, prefix: &str) -> Vec<String> {
    slack
        .messages()
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .filter(|t| t.starts_with(prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_utility_that_stops_selling_alerts_once_and_resumes_once() {
    let db = TestDb::new("silence").await;
    let slack = FakeSlack::start().await;
    db.coll
        .insert_many(baseline_sales(Utc::now()))
        .await
        .unwrap();

    // Sales now: EKEDC throughout, IKEDC while `ikedc` is set. From before the service starts,
    // so that neither looks silent at start.
    let ikedc = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (coll, ikedc, stop) = (db.coll.clone(), ikedc.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Relaxed) {
                let now = Utc::now();
                let mut docs = vec![sale(now, "EKEDC")];
                if ikedc.load(Relaxed) {
                    docs.push(sale(now, "IKEDC"));
                }
                coll.insert_many(docs).await.unwrap();
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        })
    };

    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[
            ("POWER_REVENUE_WINDOW", "10s"),
            ("POWER_REVENUE_SILENCE", "5s"),
        ],
    );
    svc.wait_connected().await;
    // Both sell for a while, seen by the stream; then IKEDC stops.
    wait_for(Duration::from_secs(30), "IKEDC's live sales", async || {
        let cur = svc.get_json("/api/v1/windows/current").await?;
        let rows = cur["windows"].as_array()?.iter().flat_map(|w| {
            w["totals"]["by_utility"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        });
        rows.into_iter()
            .any(|u| u["utility"] == "IKEDC")
            .then_some(())
    })
    .await;
    ikedc.store(false, Relaxed);
    let stopped = Instant::now();

    let limit = Duration::from_secs(SILENCE_SECS + WINDOW_SECS);
    let alert = wait_for(
        limit + Duration::from_secs(5),
        "the silence alert",
        async || texts_starting(&slack, "🔕").first().cloned(),
    )
    .await;
    let took = stopped.elapsed();
    assert!(took <= limit, "the alert took {took:?}: {alert}");
    assert!(
        alert.starts_with("🔕 IKEDC: no sales for ")
            && alert.ends_with(" (usually 5 in 5s at this hour)"),
        "{alert}"
    );

    // Shown in the API (both routes) while silent.
    for route in ["/api/v1/windows/current", "/api/v1/status"] {
        let body = svc.get_json(route).await.expect(route);
        let silent = body["silent"].as_array().expect("silent");
        assert_eq!(silent.len(), 1, "{route}: {body}");
        let s = &silent[0];
        assert_eq!(
            (&s["utility"], &s["display"]),
            (&"IKEDC".into(), &"IKEDC".into()),
            "{s}"
        );
        assert_eq!(s["usual_sales"], 5, "{s}");
        assert!(s["silent_for_secs"].as_i64().unwrap() >= 5, "{s}");
        assert!(
            s["silent_since"]
                .as_str()
                .unwrap()
                .parse::<DateTime<Utc>>()
                .is_ok(),
            "{s}"
        );
    }

    // And by `status`, which asks the running service.
    let env: Vec<(&str, &str)> = svc
        .env()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (code, out, err) = run_cli(&["status"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Silent: IKEDC: no sales for ")
            && out.contains("(usually 5 per silence period at this hour)"),
        "{out}"
    );

    // And on the dashboard, as text.
    let browser = Browser::start(1280, 800).await;
    browser.goto(&format!("{}/", svc.http())).await;
    let badge = wait_for(Duration::from_secs(20), "the silent badge", async || {
        let t = browser
            .eval("const li = document.querySelector('#silent li[data-utility=IKEDC]'); return li ? li.textContent : ''")
            .await;
        t.as_str().filter(|t| !t.is_empty()).map(str::to_owned)
    })
    .await;
    assert!(
        badge.starts_with("🔕 IKEDC: no sales for ") && badge.ends_with(" (usually 5)"),
        "{badge}"
    );

    // It sells again: one "resumed" notice.
    ikedc.store(true, Relaxed);
    let resumed = wait_for(Duration::from_secs(20), "the resumed notice", async || {
        texts_starting(&slack, "🔔").first().cloned()
    })
    .await;
    assert!(
        resumed.starts_with("🔔 IKEDC: sales resumed after ") && resumed.ends_with(" of silence"),
        "{resumed}"
    );
    // Settled: the next window's report is posted after it, and nothing more was said.
    let next = upcoming(WINDOW_SECS, 1);
    report_of(&slack, &next, 30).await;
    stop.store(true, Relaxed);
    feeder.await.unwrap();
    assert_eq!(texts_starting(&slack, "🔕"), [alert], "one alert only");
    assert_eq!(
        texts_starting(&slack, "🔔"),
        [resumed],
        "one resumed notice only"
    );
    let status = svc.status().await.unwrap();
    assert_eq!(status["silent"], serde_json::json!([]), "{status}");
    let metrics = reqwest::get(format!("{}/metrics", svc.http()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "power_revenue_silence_alerts_total 1",
        "power_revenue_silence_resumed_total 1",
        "power_revenue_silent_utilities 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
    }
}

#[test]
fn bad_silence_settings_are_one_line_and_exit_2_before_connecting() {
    let uri = "mongodb://127.0.0.1:1/power";
    for (var, value, expected) in [
        ("POWER_REVENUE_SILENCE", "25h", "use at most 1d"),
        ("POWER_REVENUE_SILENCE", "0s", "use at least 1s (or off)"),
        ("POWER_REVENUE_SILENCE", "soon", "not a duration"),
        ("POWER_REVENUE_SILENCE_MIN_SALES", "0", "from 1 to 1000000"),
        (
            "POWER_REVENUE_SILENCE_MIN_SALES",
            "lots",
            "from 1 to 1000000",
        ),
    ] {
        let (code, _, stderr) = run_cli(&["serve"], &[("MONGODB_URI", uri), (var, value)]);
        assert_eq!(code, 2, "{var}={value}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(var) && stderr.contains(expected),
            "{var}={value}: {stderr}"
        );
    }
}
