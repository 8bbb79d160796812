//! What restatements cost: re-check queries per report and time per report.
//!
//! `cargo bench --bench recheck` (harness off). Against `secantusd-rs` if installed, else the
//! Python SecantusDB with fewer sales (said in the output). Progress on stderr; the last line on
//! stdout is one JSON object with every figure.
//!
//! 1. One `$facet` over a 6 h window holding `RECHECK_SALES` sales (default 1 M; 20 k on the
//!    Python server), with the index `setup` creates: the price of one re-check.
//! 2. Through the release binary, with and without pre-images: 2 s windows with 100 sales
//!    each are reported, then one sale of a reported window is refunded, edited, deleted or
//!    moved; the `$facet`s the carrying report re-ran are read from
//!    `power_revenue_recheck_queries_total`, next to the number of reported windows within the
//!    horizon at that moment.
//!
//! Time per report at the measured size = queries × the time of one `$facet` (each re-check is
//! one such query over its window).

#[allow(dead_code)]
mod support;

use bson::{doc, Document};
use chrono::{DateTime, TimeDelta, Utc};
use futures::future::join_all;
use mongodb::{Client, Collection};
use power_revenue::config::{Config, Settings};
use power_revenue::window::{Window, WindowSpec};
use power_revenue::{reconcile, setup};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{sale, Server};

const COLLECTION: &str = "power_transaction_items";
/// Windows of the service runs and their horizon: 28 windows, as 6 h windows in the default
/// 7 d horizon.
const WINDOW: &str = "2s";
const HORIZON_SECS: i64 = 56;
const WINDOWS_FILLED: usize = 6;
const SALES_PER_SMALL_WINDOW: i64 = 100;

fn main() {
    support::print_figures(run());
}

async fn run() -> Value {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("db"), 50_000_000);
    let uri = server.uri();
    let rust = server.name().starts_with("secantusd-rs");
    let sales: i64 = support::env_number("RECHECK_SALES", if rust { 1_000_000 } else { 20_000 });
    eprintln!(
        "recheck: server {}, {sales} sales in the big window",
        server.name()
    );
    let client = Client::with_uri_str(&uri).await.unwrap();

    let facet_secs = one_facet(&client, &uri, sales).await;
    let mut runs = Vec::new();
    for pre_images in [true, false] {
        runs.extend(through_the_service(&client, &uri, pre_images, dir.path()).await);
    }
    let rows: Vec<Value> = runs
        .iter()
        .map(|r| {
            let queries = r["queries"].as_f64().unwrap();
            json!({
                "mode": r["mode"], "change": r["change"], "queries": r["queries"],
                "reported_windows_in_horizon": r["in_horizon"],
                "secs_per_report_at_size": (queries * facet_secs * 10.0).round() / 10.0,
            })
        })
        .collect();
    eprintln!("\nrecheck: one $facet over {sales} sales: {facet_secs:.1} s");
    eprintln!("| mode | change | re-check queries | reported windows in horizon | time per report at {sales} sales/window |");
    for r in &rows {
        eprintln!(
            "| {} | {} | {} | {} | {} s |",
            r["mode"].as_str().unwrap(),
            r["change"].as_str().unwrap(),
            r["queries"],
            r["reported_windows_in_horizon"],
            r["secs_per_report_at_size"]
        );
    }
    json!({
        "server": server.name(),
        "sales_per_window": sales,
        "facet_secs": (facet_secs * 1000.0).round() / 1000.0,
        "reports": rows,
        // With the defaults (6 h windows, 7 d horizon) a window-unknown change re-checks up to
        // this many windows.
        "default_windows_in_horizon": 7 * 24 / 6,
    })
}

fn config(uri: &str, database: &str) -> Config {
    Config::from_settings(Settings {
        mongodb_uri: Some(uri.to_owned()),
        database: Some(database.to_owned()),
        ..Default::default()
    })
    .unwrap()
}

/// The median of two runs of one window's `$facet` over `sales` sales.
async fn one_facet(client: &Client, uri: &str, sales: i64) -> f64 {
    let config = config(uri, "recheck_big");
    let coll: Collection<Document> = client.database("recheck_big").collection(COLLECTION);
    coll.insert_one(doc! { "seed": true }).await.unwrap();
    setup::run(&config, &coll).await.unwrap();
    let spec = WindowSpec::new(6 * 3600, chrono_tz::Tz::UTC).unwrap();
    let w = spec.window_of(Utc::now() - TimeDelta::days(1));
    let span_ms = (w.end - w.start).num_milliseconds();
    let began = Instant::now();
    const BATCH: i64 = 10_000;
    let batches: Vec<i64> = (0..(sales + BATCH - 1) / BATCH).collect();
    for chunk in batches.chunks(4) {
        join_all(chunk.iter().map(|b| {
            let coll = coll.clone();
            let docs: Vec<Document> = (b * BATCH..((b + 1) * BATCH).min(sales))
                .map(|i| sale(i, w.start + TimeDelta::milliseconds(i * 7919 % span_ms)))
                .collect();
            async move { coll.insert_many(docs).await.unwrap() }
        }))
        .await;
    }
    eprintln!(
        "recheck: inserted {sales} sales in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    let mut secs = Vec::new();
    for _ in 0..2 {
        let began = Instant::now();
        let totals = reconcile::query(&coll, &config, &w).await.unwrap();
        secs.push(began.elapsed().as_secs_f64());
        assert_eq!(totals.total().count, sales as u64);
    }
    eprintln!("recheck: $facet runs {secs:?}");
    secs.iter().sum::<f64>() / secs.len() as f64
}

struct Service {
    child: Child,
    http: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_service(uri: &str, database: &str, state: &std::path::Path) -> Service {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener); // the service binds it itself (a bench, not a test: no race worth a pass-on)
    let child = Command::new(env!("CARGO_BIN_EXE_power-revenue"))
        .arg("serve")
        .env("MONGODB_URI", uri)
        .env("POWER_REVENUE_DATABASE", database)
        .env("POWER_REVENUE_WINDOW", WINDOW)
        .env("POWER_REVENUE_GRACE", "1s")
        .env("POWER_REVENUE_RESTATE_HORIZON", format!("{HORIZON_SECS}s"))
        .env("POWER_REVENUE_STATE_DIR", state)
        .env("POWER_REVENUE_HTTP_ADDR", addr.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Service {
        child,
        http: format!("http://{addr}"),
    }
}

async fn get_json(http: &reqwest::Client, url: String) -> Option<Value> {
    http.get(url).send().await.ok()?.json().await.ok()
}

async fn counter(http: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = match http.get(format!("{base}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Re-check queries per change, through the release binary.
async fn through_the_service(
    client: &Client,
    uri: &str,
    pre_images: bool,
    dir: &std::path::Path,
) -> Vec<Value> {
    let mode = if pre_images { "pre_images" } else { "recheck" };
    let database = format!("recheck_{mode}");
    let coll: Collection<Document> = client.database(&database).collection(COLLECTION);
    coll.insert_one(doc! { "seed": true }).await.unwrap();
    if pre_images {
        setup::run(&config(uri, &database), &coll).await.unwrap();
    }
    let svc = start_service(uri, &database, &dir.join(mode));
    let http = reqwest::Client::new();
    wait_for("the service", async || {
        let s = get_json(&http, format!("{}/api/v1/status", svc.http)).await?;
        (s["counters"]["stream_connected"] == true).then_some(())
    })
    .await;
    // Reported windows fill the horizon (one report per window, empty ones included) before
    // the sales go in, so a window-unknown change meets the full horizon.
    let full = Utc::now() + TimeDelta::seconds(HORIZON_SECS);
    wait_for("the horizon full of reported windows", async || {
        (Utc::now() > full).then_some(())
    })
    .await;
    let spec = WindowSpec::new(2, chrono_tz::Tz::UTC).unwrap();
    let mut windows: Vec<Window> =
        vec![spec.next(&spec.window_of(Utc::now() + TimeDelta::seconds(1)))];
    while windows.len() < WINDOWS_FILLED {
        windows.push(spec.next(windows.last().unwrap()));
    }
    let docs: Vec<Document> = windows
        .iter()
        .enumerate()
        .flat_map(|(i, w)| {
            (0..SALES_PER_SMALL_WINDOW).map(move |j| {
                sale(
                    i as i64 * 1_000 + j,
                    w.start + TimeDelta::milliseconds(j * 10),
                )
            })
        })
        .collect();
    coll.insert_many(docs).await.unwrap();
    let last = *windows.last().unwrap();
    wait_for("the filled windows reported", async || {
        let s = get_json(&http, format!("{}/api/v1/status", svc.http)).await?;
        let reported: DateTime<Utc> = s["last_reported"]["window"]["start"]
            .as_str()?
            .parse()
            .ok()?;
        (reported >= last.start).then_some(())
    })
    .await;

    let moved_to = bson::DateTime::from_chrono(windows[4].start + TimeDelta::milliseconds(1_500));
    let changes: [(&str, i64); 4] = [
        ("refund", 1),
        ("amount edit", 1_001),
        ("delete", 2_001),
        ("time moved", 3_001),
    ];
    let mut rows = Vec::new();
    for (change, id) in changes {
        let before = counter(&http, &svc.http, "power_revenue_recheck_queries_total").await;
        let posted = counter(&http, &svc.http, "power_revenue_reports_posted_total").await;
        match change {
            "refund" => coll
                .update_one(
                    doc! { "_id": id },
                    doc! { "$set": { "status": "refunded" } },
                )
                .await
                .map(drop),
            "amount edit" => coll
                .update_one(doc! { "_id": id }, doc! { "$set": { "amount": 99_999 } })
                .await
                .map(drop),
            "delete" => coll.delete_one(doc! { "_id": id }).await.map(drop),
            _ => coll
                .update_one(
                    doc! { "_id": id },
                    doc! { "$set": { "createdAt": moved_to } },
                )
                .await
                .map(drop),
        }
        .unwrap();
        // Settled by a delivered report: nothing of it waits any more.
        let in_horizon = wait_for("the change settled", async || {
            let s = get_json(&http, format!("{}/api/v1/status", svc.http)).await?;
            let r = &s["restatements"];
            let settled = s["late_awaiting_report"].as_array()?.is_empty()
                && r["unknown_window_changes_awaiting_report"] == 0;
            let reported = counter(&http, &svc.http, "power_revenue_reports_posted_total").await;
            if !(settled && reported >= posted + 2.0) {
                return None;
            }
            let recent = get_json(&http, format!("{}/api/v1/windows?last=50", svc.http)).await?;
            let horizon_start = Utc::now() - TimeDelta::seconds(HORIZON_SECS);
            let n = recent
                .as_array()?
                .iter()
                .filter(|w| {
                    w["end"]
                        .as_str()
                        .and_then(|e| e.parse::<DateTime<Utc>>().ok())
                        > Some(horizon_start)
                })
                .count();
            Some(n)
        })
        .await;
        let queries =
            counter(&http, &svc.http, "power_revenue_recheck_queries_total").await - before;
        eprintln!("recheck: {mode}, {change}: {queries} re-check queries ({in_horizon} reported windows in the horizon)");
        rows.push(
            json!({ "mode": mode, "change": change, "queries": queries, "in_horizon": in_horizon }),
        );
    }
    rows
}
