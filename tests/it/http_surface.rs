//! The HTTP listener of the real binary as a client sees it: the dashboard takes `?token=` once
//! and swaps it for a cookie, every other route takes only the header or that cookie, and
//! `/metrics` is valid Prometheus exposition (HELP and TYPE for every series; `promtool check
//! metrics` clean, promtool provisioned by `common::promtool`).

use crate::common::promtool;
use crate::common::service::Service;
use crate::common::slack::FakeSlack;
use crate::common::{wait_for, TestDb};
use bson::doc;
use chrono::Utc;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "dashboard-token-for-tests";
const API_ROUTES: [&str; 5] = [
    "/readyz",
    "/metrics",
    "/api/v1/status",
    "/api/v1/windows/current",
    "/api/v1/windows",
];

/// A client that does not follow redirects, so the 303 itself can be read.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(svc: &Service, path: &str, headers: &[(&str, &str)]) -> (u16, HeaderMap, String) {
    let mut req = client().get(format!("{}{path}", svc.http()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("the service answers");
    let (code, h) = (resp.status().as_u16(), resp.headers().clone());
    (code, h, resp.text().await.unwrap_or_default())
}

async fn ready(svc: &Service) {
    let bearer = format!("Bearer {TOKEN}");
    wait_for(Duration::from_secs(60), "readiness", async || {
        let resp = client()
            .get(format!("{}/readyz", svc.http()))
            .header("authorization", &bearer)
            .send()
            .await
            .ok()?;
        (resp.status() == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_swaps_the_url_token_for_a_cookie_and_nothing_else_takes_it() {
    let db = TestDb::new("cookie").await;
    let svc = Service::start(&db.name, None, &[("POWER_REVENUE_API_TOKEN", TOKEN)]);
    ready(&svc).await;

    // The token in the URL, once: 303 to the same URL without it, other parameters kept.
    let (code, h, _) = get(&svc, &format!("/?view=phone&token={TOKEN}&x=%2F"), &[]).await;
    assert_eq!(code, 303);
    assert_eq!(h[LOCATION], "/?view=phone&x=%2F");
    let set_cookie = h[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");
    assert!(
        !set_cookie.contains(TOKEN),
        "the cookie is not the token: {set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let (code, h, _) = get(&svc, &format!("/?token={TOKEN}"), &[]).await;
    assert_eq!((code, h[LOCATION].to_str().unwrap()), (303, "/"));
    // Behind a TLS proxy the cookie is Secure.
    let (_, h, _) = get(
        &svc,
        &format!("/?token={TOKEN}"),
        &[("x-forwarded-proto", "https")],
    )
    .await;
    assert!(h[SET_COOKIE].to_str().unwrap().contains("; Secure"));
    // A wrong token in the URL: no cookie.
    let (code, h, _) = get(&svc, "/?token=wrong", &[]).await;
    assert_eq!(code, 401);
    assert!(h.get(SET_COOKIE).is_none());

    // The cookie opens the page and every route; the page asks for no token in its URLs.
    let (code, _, page) = get(&svc, "/", &[("cookie", &cookie)]).await;
    assert_eq!(code, 200);
    assert!(page.contains("<title>") && !page.contains("get(\"token\")"));
    for path in API_ROUTES {
        let (code, _, body) = get(&svc, path, &[("cookie", &cookie)]).await;
        assert_eq!(code, 200, "{path}: {body}");
    }
    // Among other cookies of the same host, and as the header.
    let jar = format!("other=1; {cookie}; power_revenue_session=stale");
    assert_eq!(
        get(&svc, "/api/v1/status", &[("cookie", &jar)]).await.0,
        200
    );
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        get(&svc, "/metrics", &[("authorization", &bearer)]).await.0,
        200
    );

    // The token in any other URL is refused, even the right one, even with the header.
    for path in API_ROUTES {
        let with_token = format!("{path}?token={TOKEN}");
        assert_eq!(get(&svc, &with_token, &[]).await.0, 401, "{with_token}");
        let both = [("authorization", bearer.as_str())];
        assert_eq!(get(&svc, &with_token, &both).await.0, 401, "{with_token}");
    }
    // A wrong cookie, the token itself as the cookie, or nothing: 401.
    let forged = format!("power_revenue_session={TOKEN}");
    for headers in [
        &[("cookie", "power_revenue_session=0123abcd")][..],
        &[("cookie", forged.as_str())][..],
        &[("authorization", "Bearer wrong")][..],
        &[][..],
    ] {
        for path in API_ROUTES.iter().chain(&["/"]) {
            assert_eq!(get(&svc, path, headers).await.0, 401, "{path} {headers:?}");
        }
    }
    // Liveness stays open.
    assert_eq!(get(&svc, "/healthz", &[]).await.0, 200);
    assert!(
        !svc.output().contains(TOKEN),
        "the token leaked into the log"
    );
}

/// What an exposition text says of one metric family.
#[derive(Debug, Clone, Default)]
pub(crate) struct Declared {
    pub(crate) help: bool,
    pub(crate) kind: Option<String>,
}

/// Metric families of an exposition text: what each declares, and each sample's family.
pub(crate) fn families(text: &str) -> (BTreeMap<String, Declared>, BTreeSet<String>) {
    let mut declared: BTreeMap<String, Declared> = BTreeMap::new();
    let mut samples = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("#"), Some("HELP"), Some(name)) => {
                declared.entry(name.into()).or_default().help = true;
            }
            (Some("#"), Some("TYPE"), Some(name)) => {
                declared.entry(name.into()).or_default().kind = words.next().map(str::to_owned);
            }
            (Some("#"), ..) => {}
            _ => {
                let name = line.split(['{', ' ']).next().unwrap();
                samples.insert(name.to_owned());
            }
        }
    }
    // A histogram's samples are `<family>_bucket`, `_sum` and `_count`.
    let family = |sample: &str| {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = sample.strip_suffix(suffix) {
                if declared
                    .get(base)
                    .is_some_and(|d| d.kind.as_deref() == Some("histogram"))
                {
                    return base.to_owned();
                }
            }
        }
        sample.to_owned()
    };
    let sample_families = samples.iter().map(|s| family(s)).collect();
    (declared, sample_families)
}

fn check_exposition(text: &str, when: &str) {
    let (declared, sample_families) = families(text);
    assert!(!sample_families.is_empty(), "{when}: no samples:\n{text}");
    for family in &sample_families {
        let Declared { help, kind } = declared.get(family).cloned().unwrap_or_default();
        assert!(help, "{when}: {family} has no # HELP:\n{text}");
        assert!(kind.is_some(), "{when}: {family} has no # TYPE:\n{text}");
        assert!(family.starts_with("power_revenue_"), "{family}");
        if kind.as_deref() == Some("counter") {
            assert!(family.ends_with("_total"), "{family}");
        }
    }
    let v = promtool::run(Path::new("."), &["check", "metrics"], text);
    assert!(
        v.ok && v.said.trim().is_empty(),
        "{when}: promtool check metrics:\n{}",
        v.said
    );
    eprintln!(
        "{when}: promtool check metrics: clean ({} families)",
        declared.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_has_help_and_type_and_promtool_finds_nothing() {
    let db = TestDb::new("metrics").await;
    let slack = FakeSlack::start().await;
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[("POWER_REVENUE_API_TOKEN", TOKEN)],
    );
    ready(&svc).await;
    let bearer = format!("Bearer {TOKEN}");
    let scrape = async || {
        let (code, _, text) = get(&svc, "/metrics", &[("authorization", &bearer)]).await;
        assert_eq!(code, 200);
        text
    };

    // Before any sale: the counters and histograms are there already, with their HELP.
    let first = scrape().await;
    check_exposition(&first, "at start");
    for name in [
        "power_revenue_reports_posted_total",
        "power_revenue_corrections_posted_total",
        "power_revenue_slack_post_duration_seconds_count",
    ] {
        assert!(
            first.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{first}"
        );
    }

    // Sales (one skipped, for a labelled series), a report posted to Slack.
    let now = bson::DateTime::from_chrono(Utc::now());
    db.coll
        .insert_many([
            doc! { "createdAt": now, "utility": "IKEDC", "amount": "₦1,000.25", "status": "fulfilled" },
            doc! { "createdAt": now, "utility": "AEDC", "amount": "abc", "status": "fulfilled" },
        ])
        .await
        .unwrap();
    wait_for(Duration::from_secs(40), "a report posted", async || {
        slack.messages_about("• IKEDC: ₦1,000.25").first().cloned()
    })
    .await;
    let text = wait_for(
        Duration::from_secs(20),
        "the report in the metrics",
        async || {
            let text = scrape().await;
            let posted = text
                .lines()
                .find_map(|l| l.strip_prefix("power_revenue_reports_posted_total "))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            (posted >= 1.0).then_some(text)
        },
    )
    .await;
    assert!(
        text.contains("power_revenue_events_skipped_total{reason=\"amount_unparseable\"} 1"),
        "{text}"
    );
    check_exposition(&text, "after a report");
}
