//! The live view through the real binary against the real server: the totals API, readiness,
//! Prometheus metrics, the bearer token, and the dashboard in headless Chromium.

use crate::common::browser::Browser;
use crate::common::service::Service;
use crate::common::slack::FakeSlack;
use crate::common::{wait_for, TestDb};
use bson::doc;
use chrono::Utc;
use serde_json::Value;
use std::time::Duration;

const TOKEN: &str = "api-token-for-tests";

async fn get(svc: &Service, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", svc.http()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(resp) => (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        ),
        Err(_) => (0, String::new()), // not listening yet
    }
}

async fn json(svc: &Service, path: &str) -> Value {
    let (code, body) = get(svc, path, Some(TOKEN)).await;
    assert!(code == 200 || code == 503, "{path}: {code} {body}");
    serde_json::from_str(&body).unwrap()
}

/// The value of one sample line, e.g. `power_revenue_events_applied_total 2`.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn totals_api_readiness_and_metrics_behind_a_token() {
    let db = TestDb::new("api").await;
    let slack = FakeSlack::start().await;
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[("POWER_REVENUE_API_TOKEN", TOKEN)],
    );
    wait_for(Duration::from_secs(60), "readiness", async || {
        let (code, _) = get(&svc, "/readyz", Some(TOKEN)).await;
        (code == 200).then_some(())
    })
    .await;

    // Only /healthz is open.
    assert_eq!(get(&svc, "/healthz", None).await.0, 200);
    for path in [
        "/",
        "/readyz",
        "/metrics",
        "/api/v1/status",
        "/api/v1/windows/current",
        "/api/v1/windows",
    ] {
        assert_eq!(get(&svc, path, None).await.0, 401, "{path}");
        assert_eq!(get(&svc, path, Some("wrong")).await.0, 401, "{path}");
    }

    let now = bson::DateTime::from_chrono(Utc::now());
    db.coll
        .insert_many([
            doc! { "createdAt": now, "utility": "ikedc", "amount": "₦1,000.25", "status": "fulfilled" },
            doc! { "createdAt": now, "utility": "IKEDC", "amount": 500, "status": "fulfilled" },
            doc! { "createdAt": now, "utility": "AEDC", "amount": "abc", "status": "fulfilled" },
        ])
        .await
        .unwrap();
    let cur = wait_for(
        Duration::from_secs(20),
        "the sales in the current window",
        async || {
            let cur = json(&svc, "/api/v1/windows/current").await;
            let count: u64 = cur["windows"]
                .as_array()?
                .iter()
                .map(|w| w["totals"]["count"].as_u64().unwrap_or(0))
                .sum();
            (count == 2).then_some(cur)
        },
    )
    .await;
    assert_eq!(cur["time_zone"], "UTC");
    assert_eq!(cur["stream_connected"], true);
    assert!(
        cur["last_event_at"].is_string() && cur["lag_secs"].is_number(),
        "{cur}"
    );
    let w = cur["windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["totals"]["count"] == 2)
        .unwrap();
    assert_eq!(
        w["totals"]["revenue"], "1500.25",
        "amounts are decimal strings: {w}"
    );
    assert_eq!(w["totals"]["by_utility"][0]["utility"], "IKEDC");
    assert!(
        w["start"].is_string() && w["end"].is_string() && w["events_applied"] == 2,
        "{w}"
    );

    let (code, metrics) = get(&svc, "/metrics", Some(TOKEN)).await;
    assert_eq!(code, 200);
    assert_eq!(
        sample(&metrics, "power_revenue_events_applied_total"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "power_revenue_events_skipped_total{reason=\"amount_unparseable\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "power_revenue_stream_connected_bool"),
        Some(1.0)
    );
    assert!(sample(&metrics, "power_revenue_checkpoint_writes_total").unwrap() >= 1.0);
    assert!(sample(&metrics, "power_revenue_resume_token_age_seconds").unwrap() < 60.0);
    assert!(
        metrics.contains("power_revenue_checkpoint_duration_seconds_bucket"),
        "{metrics}"
    );

    // After the window closes: reconciled, matched, sent; and counted in the metrics.
    let closed = wait_for(Duration::from_secs(30), "the closed window", async || {
        let list = json(&svc, "/api/v1/windows?last=5").await;
        list.as_array()?
            .iter()
            .find(|w| w["reconciled"]["count"] == 2 && w["delivery"] == "sent")
            .cloned()
    })
    .await;
    assert_eq!(closed["matched_stream"], true, "{closed}");
    assert_eq!(closed["reconciled"]["revenue"], "1500.25");
    assert!(closed["sent_at"].is_string());
    // Counted right after the `Sent` mark the API shows: wait for it.
    let metrics = wait_for(Duration::from_secs(10), "the report counted", async || {
        let (_, metrics) = get(&svc, "/metrics", Some(TOKEN)).await;
        (sample(&metrics, "power_revenue_reports_posted_total")? >= 1.0).then_some(metrics)
    })
    .await;
    assert!(
        metrics.contains("power_revenue_slack_post_duration_seconds_bucket"),
        "{metrics}"
    );
    assert_eq!(
        get(&svc, "/api/v1/windows?last=zero", Some(TOKEN)).await.0,
        400
    );
    assert!(
        !svc.output().contains(TOKEN),
        "the API token leaked into the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_a_new_sale_within_seconds() {
    let db = TestDb::new("dashboard").await;
    let svc = Service::start(
        &db.name,
        None,
        &[
            ("POWER_REVENUE_API_TOKEN", TOKEN),
            ("POWER_REVENUE_WINDOW", "1h"),
        ],
    );
    svc.wait_connected().await;
    let browser = Browser::start(1280, 800).await;
    browser
        .goto(&format!("{}/?token={TOKEN}", svc.http()))
        .await;
    wait_for(Duration::from_secs(20), "the page to report health", async || {
        let t = browser.eval("return document.getElementById('health').textContent + ' | ' + document.getElementById('error').textContent").await;
        t.as_str().filter(|t| t.contains("live")).map(str::to_owned)
    })
    .await;
    // The token was swapped for a cookie the page's script cannot read, and left the URL.
    let (url, cookies) = (
        browser.eval("return location.href").await,
        browser.eval("return document.cookie").await,
    );
    assert_eq!(url, format!("{}/", svc.http()), "the token left the URL");
    assert_eq!(cookies, "", "the session cookie is HttpOnly");

    let inserted = std::time::Instant::now();
    db.coll
        .insert_one(doc! { "createdAt": bson::DateTime::now(), "utility": "EKEDC", "amount": "₦45,750.00", "status": "fulfilled" })
        .await
        .unwrap();
    let total = wait_for(
        Duration::from_secs(10),
        "the sale on the page",
        async || {
            let t = browser
                .eval("return document.getElementById('total').textContent")
                .await;
            t.as_str().filter(|t| *t == "₦45,750.00").map(str::to_owned)
        },
    )
    .await;
    eprintln!(
        "dashboard showed {total} {} ms after the insert",
        inserted.elapsed().as_millis()
    );
    let bar = browser
        .eval("return document.querySelector('#bars li[data-utility=EKEDC]').textContent")
        .await;
    assert!(
        bar.as_str().unwrap().contains("₦45,750.00 · 1 transaction"),
        "{bar}"
    );

    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(out.join("dashboard-laptop.png"), browser.screenshot().await).unwrap();
    browser.resize(390, 844).await;
    // On a phone the layout is one column and nothing scrolls sideways.
    let overflow = browser
        .eval("return document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(overflow, true);
    std::fs::write(out.join("dashboard-phone.png"), browser.screenshot().await).unwrap();
    eprintln!(
        "screenshots: {}/dashboard-{{laptop,phone}}.png",
        out.display()
    );

    // A name with a line break, a bidi override and markup is printed as inert text.
    db.coll
        .insert_one(doc! { "createdAt": bson::DateTime::now(), "utility": "<b>x</b>\n• FORGED\u{202e}", "amount": 1, "status": "fulfilled" })
        .await
        .unwrap();
    let names = wait_for(Duration::from_secs(10), "the hostile name on the page", async || {
        let t = browser
            .eval("return [...document.querySelectorAll('#bars strong')].map((s) => s.textContent).join('|')")
            .await;
        t.as_str().filter(|t| t.contains("FORGED")).map(str::to_owned)
    })
    .await;
    assert_eq!(names, "EKEDC|<B>X</B>�• FORGED�");
    let bold = browser
        .eval("return document.querySelectorAll('#bars b').length")
        .await;
    assert_eq!(bold, 0, "no markup from a name");
}
