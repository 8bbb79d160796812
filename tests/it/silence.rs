//! Silent-utility alerts through the real binary: a week of back-dated sales (written before
//! the service starts) gives IKEDC and EKEDC a baseline of 5 sales per 5 s at this time of day
//! (AEDC 2 or 3: below the minimum); IKEDC then stops selling while EKEDC goes on. Exactly one
//! "🔕 IKEDC" alert within the silence period plus one window (by the service's clock), shown
//! in the API meanwhile, not repeated by a crash and restart while it lasts, and exactly one
//! "🔔 IKEDC … resumed" once it sells again. All sales stopping at once (an upstream outage) is
//! one alert naming both, and one notice when they come back.

use crate::common::browser::Browser;
use crate::common::service::{run_cli, Service};
use crate::common::slack::FakeSlack;
use crate::common::{report_of, upcoming, wait_for, TestDb};
use bson::{doc, Document};
use chrono::{DateTime, TimeDelta, Utc};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Bits of [`Feeder::selling`].
const IKEDC: u8 = 1;
const EKEDC: u8 = 2;

/// Sales now, every 400 ms: of EKEDC and IKEDC while their bits are set.
struct Feeder {
    /// Who sells: one value, so that both stop (or start) in the same insert.
    selling: Arc<AtomicU8>,
    /// The time of the last IKEDC sale written.
    last_ikedc: Arc<Mutex<Option<DateTime<Utc>>>>,
    /// Set by [`Feeder::finish`].
    stop: Arc<AtomicBool>,
    /// The writing loop.
    task: tokio::task::JoinHandle<()>,
}

impl Feeder {
    fn start(coll: mongodb::Collection<Document>) -> Feeder {
        let selling = Arc::new(AtomicU8::new(IKEDC | EKEDC));
        let last_ikedc = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (selling, last_ikedc, stop) = (selling.clone(), last_ikedc.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Relaxed) {
                    let now = Utc::now();
                    let now_selling = selling.load(Relaxed);
                    let with_ikedc = now_selling & IKEDC != 0;
                    let mut docs = Vec::new();
                    if now_selling & EKEDC != 0 {
                        docs.push(sale(now, "EKEDC"));
                    }
                    if with_ikedc {
                        docs.push(sale(now, "IKEDC"));
                    }
                    if !docs.is_empty() {
                        coll.insert_many(docs).await.unwrap();
                    }
                    if with_ikedc {
                        *last_ikedc.lock().unwrap() = Some(now);
                    }
                    tokio::time::sleep(Duration::from_millis(400)).await;
                }
            })
        };
        Feeder {
            selling,
            last_ikedc,
            stop,
            task,
        }
    }

    async fn finish(self) {
        self.stop.store(true, Relaxed);
        self.task.await.unwrap();
    }
}

/// Waits until the service's live totals hold sales of `utility`.
/// A database with a week of baseline sales, sales going on now (from before the service
/// starts, so that no utility looks silent at start) and the service watching with 5 s
/// silences and 10 s windows.
struct Watched {
    db: TestDb,
    slack: FakeSlack,
    feeder: Feeder,
    svc: Service,
}

async fn watched(name: &str) -> Watched {
    let db = TestDb::new(name).await;
    let slack = FakeSlack::start().await;
    db.coll
        .insert_many(baseline_sales(Utc::now()))
        .await
        .unwrap();
    let feeder = Feeder::start(db.coll.clone());
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[
            ("POWER_REVENUE_WINDOW", "10s"),
            ("POWER_REVENUE_SILENCE", "5s"),
        ],
    );
    svc.wait_connected().await;
    Watched {
        db,
        slack,
        feeder,
        svc,
    }
}

async fn wait_live_sales(svc: &Service, utility: &str) {
    wait_for(Duration::from_secs(30), "live sales", async || {
        let cur = svc.get_json("/api/v1/windows/current").await?;
        let rows = cur["windows"].as_array()?.iter().flat_map(|w| {
            w["totals"]["by_utility"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        });
        rows.into_iter()
            .any(|u| u["utility"] == utility)
            .then_some(())
    })
    .await;
}

async fn metric_lines(svc: &Service) -> String {
    reqwest::get(format!("{}/metrics", svc.http()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_utility_that_stops_selling_alerts_once_and_resumes_once() {
    // Sales now: EKEDC throughout, IKEDC until it stops.
    // The database is kept for the test's life.
    let Watched {
        db: _db,
        slack,
        feeder,
        mut svc,
    } = watched("silence").await;
    // Both sell for a while, seen by the stream; then IKEDC stops.
    wait_live_sales(&svc, "IKEDC").await;
    feeder.selling.store(EKEDC, Relaxed);

    // The timeout only bounds a hung test; the property is checked on the service's clock.
    let alert = wait_for(Duration::from_secs(60), "the silence alert", async || {
        texts_starting(&slack, "🔕").first().cloned()
    })
    .await;
    assert!(
        alert.starts_with("🔕 IKEDC: no sales for ")
            && alert.ends_with(" (usually 5 in 5s at this hour)"),
        "{alert}"
    );
    // Shown in the API (both routes) while silent.
    let mut since = None;
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
        since = Some(s["silent_since"].as_str().unwrap().to_owned());
    }
    let since = since.unwrap();
    // Raised within the silence period plus one window of the last IKEDC sale, by the
    // service's own clock: the last sale it saw (`silent_since`) plus the silence the alert
    // states (whole seconds, so up to a second more), against the last sale's time. A slow
    // machine delays the test's polling, not these timestamps.
    let silent_since: DateTime<Utc> = since.parse().expect("silent_since");
    let stated = alert
        .strip_prefix("🔕 IKEDC: no sales for ")
        .and_then(|t| t.split(" (usually").next())
        .and_then(|t| humantime::parse_duration(t).ok())
        .expect("the silence in the alert");
    let last_sale = feeder.last_ikedc.lock().unwrap().expect("IKEDC sold");
    let raised = silent_since + TimeDelta::from_std(stated).unwrap() + TimeDelta::seconds(1);
    let took = (raised - last_sale).to_std().unwrap_or_default();
    let limit = Duration::from_secs(SILENCE_SECS + WINDOW_SECS);
    assert!(
        took <= limit,
        "raised {took:?} after the last sale ({last_sale}, seen {since}): {alert}"
    );
    assert!(stated >= Duration::from_secs(SILENCE_SECS), "{alert}");
    eprintln!("silence alert raised at most {took:?} after the last sale (bound {limit:?})");

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

    // A crash while it is silent: the restarted service restores the silence (same
    // `silent_since`) and, once its baseline is in (the gauge is set only then, after the step
    // that would have alerted), has said nothing more.
    svc.kill9();
    svc.restart();
    svc.wait_connected().await;
    wait_for(
        Duration::from_secs(30),
        "the restored silence",
        async || {
            let status = svc.status().await?;
            (status["silent"][0]["silent_since"] == since.as_str()).then_some(())
        },
    )
    .await;
    wait_for(
        Duration::from_secs(30),
        "the restarted baseline",
        async || {
            metric_lines(&svc)
                .await
                .lines()
                .any(|l| l == "power_revenue_silent_utilities 1")
                .then_some(())
        },
    )
    .await;

    // It sells again: one "resumed" notice, from the restarted service.
    feeder.selling.store(IKEDC | EKEDC, Relaxed);
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
    feeder.finish().await;
    assert_eq!(
        texts_starting(&slack, "🔕"),
        [alert],
        "one alert only, restart or not"
    );
    assert_eq!(
        texts_starting(&slack, "🔔"),
        [resumed],
        "one resumed notice only"
    );
    let status = svc.status().await.unwrap();
    assert_eq!(status["silent"], serde_json::json!([]), "{status}");
    let metrics = metric_lines(&svc).await;
    for line in [
        // Counted by the process that raised it: the restarted one alerted nothing.
        "power_revenue_silence_alerts_total 0",
        "power_revenue_silence_resumed_total 1",
        "power_revenue_silent_utilities 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn all_sales_stopping_at_once_is_one_alert_and_one_notice() {
    let Watched {
        db: _db,
        slack,
        feeder,
        svc,
    } = watched("silence_outage").await;
    wait_live_sales(&svc, "IKEDC").await;
    // Upstream stops: no utility sells (in the same moment: one insert held the last of both).
    feeder.selling.store(0, Relaxed);
    let alert = wait_for(Duration::from_secs(60), "the silence alert", async || {
        texts_starting(&slack, "🔕").first().cloned()
    })
    .await;
    assert!(
        alert.starts_with("🔕 2 utilities: no sales for ")
            && alert.ends_with(" — EKEDC (usually 5), IKEDC (usually 5)"),
        "{alert}"
    );
    wait_for(Duration::from_secs(20), "both silent", async || {
        let status = svc.status().await?;
        (status["silent"].as_array()?.len() == 2).then_some(())
    })
    .await;
    feeder.selling.store(IKEDC | EKEDC, Relaxed);
    let resumed = wait_for(Duration::from_secs(20), "the resumed notice", async || {
        texts_starting(&slack, "🔔").first().cloned()
    })
    .await;
    assert!(
        resumed.starts_with("🔔 2 utilities: sales resumed — "),
        "{resumed}"
    );
    let next = upcoming(WINDOW_SECS, 1);
    report_of(&slack, &next, 30).await;
    feeder.finish().await;
    assert_eq!(texts_starting(&slack, "🔕"), [alert], "one alert only");
    assert_eq!(texts_starting(&slack, "🔔"), [resumed], "one notice only");
    let metrics = metric_lines(&svc).await;
    for line in [
        "power_revenue_silence_alerts_total 2",
        "power_revenue_silence_resumed_total 2",
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
