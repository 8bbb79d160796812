//! What the service's own queries read (not the change stream), per reported window, at the
//! defaults' proportions: silence = window / 12, a summary every 4 windows, a week of
//! history before the first start. Through the release binary.
//!
//! `cargo bench --bench reads` (harness off). `READS_WINDOWS` windows are reported after the
//! import (default 8: two summaries), with `READS_RATE` sales a second (default 4) and a week
//! of history at one sale every `READS_HISTORY_SECS` (default 20). Progress on stderr; the last
//! line on stdout is one JSON object with every figure.
//!
//! Counted from the service's own metric `power_revenue_query_sales_read_total{query}`: the
//! sales each query of the service read (report, recheck, cited, import). Before the ledger,
//! the same run's queries are computed from the old code's schedule (each report: its window
//! and three compared windows; a silence baseline of seven periods every sixth of the silence
//! period, at least every 2 s; each summary: a `$facet` over its period and one over the
//! period before) at the same sales density as the live windows, as a week of such windows
//! would hold.

#[allow(dead_code)]
mod support;

use bson::{doc, Document};
use chrono::{TimeDelta, Utc};
use mongodb::{Client, Collection};
use power_revenue::config::{Config, Settings};
use power_revenue::setup;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{sale, Server};

const DATABASE: &str = "reads";
const WINDOW_SECS: i64 = 24;
const SILENCE: &str = "2s";
const SUMMARY: &str = "96s";

fn main() {
    support::print_figures(run());
}

async fn run() -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("db"), 50_000_000);
    let uri = server.uri();
    let windows: i64 = support::env_number("READS_WINDOWS", 8);
    let rate: i64 = support::env_number("READS_RATE", 4);
    let history_every: i64 = support::env_number("READS_HISTORY_SECS", 20);
    eprintln!(
        "reads: server {}, {windows} windows of {WINDOW_SECS} s at {rate}/s",
        server.name()
    );
    let client = Client::with_uri_str(&uri).await.unwrap();
    let coll: Collection<Document> = client
        .database(DATABASE)
        .collection("power_transaction_items");
    let config = Config::from_settings(Settings {
        mongodb_uri: Some(uri.clone()),
        database: Some(DATABASE.to_owned()),
        ..Default::default()
    })
    .unwrap();
    coll.insert_one(doc! { "seed": true }).await.unwrap();
    setup::run(&config, &coll).await.unwrap();

    // A week and two summary periods of history, up to a few seconds before the start.
    let now = Utc::now();
    let from = now - TimeDelta::days(7) - TimeDelta::seconds(4 * 96);
    let history: Vec<Document> = (0..)
        .map(|i| (i, from + TimeDelta::seconds(i * history_every)))
        .take_while(|(_, at)| *at < now - TimeDelta::seconds(5))
        .map(|(i, at)| sale(i + 1, at))
        .collect();
    let history_sales = history.len() as u64;
    let began = Instant::now();
    for chunk in history.chunks(10_000) {
        coll.insert_many(chunk.to_vec()).await.unwrap();
    }
    eprintln!(
        "reads: {history_sales} history sales in {:.1} s",
        began.elapsed().as_secs_f64()
    );

    let state = dir.path().join("state");
    let log = dir.path().join("service.log");
    let svc = support::Service(
        Command::new(env!("CARGO_BIN_EXE_power-revenue"))
            .arg("serve")
            .env("MONGODB_URI", &uri)
            .env("POWER_REVENUE_DATABASE", DATABASE)
            .env("POWER_REVENUE_WINDOW", format!("{WINDOW_SECS}s"))
            .env("POWER_REVENUE_GRACE", "2s")
            .env("POWER_REVENUE_SILENCE", SILENCE)
            .env("POWER_REVENUE_SUMMARY", SUMMARY)
            .env("POWER_REVENUE_STATE_DIR", &state)
            .env("POWER_REVENUE_HTTP_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info,mongodb=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let logged = |what: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches(what)
            .count()
    };
    let began = Instant::now();
    wait(Duration::from_secs(600), "the history import", || {
        logged("History imported") > 0
    })
    .await;
    let import_secs = began.elapsed().as_secs_f64();
    let http = http_of(&state).await;
    let import_read = sales_read(&http, "import").await;
    eprintln!("reads: import read {import_read} sales in {import_secs:.1} s");

    // Steady state: sales at `rate` until `windows` more reports are posted after the first
    // one after the import (which may hold a part of a window the stream saw).
    let reports_before = logged("Report posted.");
    let before: Vec<f64> =
        futures::future::join_all(["report", "recheck", "cited"].map(|q| sales_read(&http, q)))
            .await;
    let mut id = 10_000_000;
    let target = reports_before + 1 + windows as usize;
    let feeding = Instant::now();
    while logged("Report posted.") < target {
        let docs: Vec<Document> = (0..rate)
            .map(|_| {
                id += 1;
                sale(id, Utc::now())
            })
            .collect();
        coll.insert_many(docs).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            feeding.elapsed() < Duration::from_secs(60 * 60),
            "reports stopped"
        );
    }
    let after: Vec<f64> =
        futures::future::join_all(["report", "recheck", "cited"].map(|q| sales_read(&http, q)))
            .await;
    drop(svc);
    let [report, recheck, cited] = [0, 1, 2].map(|i| after[i] - before[i]);
    let reported = report.max(1.0);
    let steady = (report + recheck + cited) / reported;

    // The old schedule, per reported window, at the live density: its own window, three
    // compared windows, baselines of 7 silence periods every max(silence / 6, 2 s), and per
    // summary (every 4 windows) the period and the period before.
    let silence_secs = 2.0;
    let refreshes_per_window = WINDOW_SECS as f64 / (silence_secs / 6.0_f64).max(2.0);
    let baseline = refreshes_per_window * 7.0 * silence_secs / WINDOW_SECS as f64;
    let old = 1.0 + 3.0 + baseline + (4.0 + 4.0) / 4.0;
    eprintln!("\n| per reported window | sales read ÷ the windows' sales |");
    eprintln!("|---|---|");
    eprintln!("| before (the old schedule at this density) | {old:.2} |");
    eprintln!(
        "| after (measured): report {report}, recheck {recheck}, cited {cited} | {steady:.3} |"
    );
    eprintln!(
        "| import: sales read ÷ history sales | {:.3} |",
        import_read / history_sales as f64
    );
    json!({
        "server": server.name(),
        "windows_reported": windows,
        "window_secs": WINDOW_SECS,
        "live_sales_per_sec": rate,
        "history_sales": history_sales,
        "import_sales_read": import_read,
        "import_over_history": ratio(import_read, history_sales as f64),
        "import_secs": (import_secs * 10.0).round() / 10.0,
        "steady_sales_read": { "report": report, "recheck": recheck, "cited": cited },
        "steady_over_reported": ratio(report + recheck + cited, reported),
        "before_over_reported": ratio(old, 1.0),
    })
}

fn ratio(a: f64, b: f64) -> f64 {
    (a / b * 1000.0).round() / 1000.0
}

async fn wait(timeout: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The service's HTTP address, once it has written it to its state directory.
async fn http_of(state: &std::path::Path) -> String {
    let file = state.join("power-revenue.http");
    wait(Duration::from_secs(30), "the HTTP address", || {
        file.exists()
    })
    .await;
    format!("http://{}", std::fs::read_to_string(file).unwrap().trim())
}

async fn sales_read(http: &str, query: &str) -> f64 {
    let text = reqwest::get(format!("{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("power_revenue_query_sales_read_total{{query=\"{query}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
        .unwrap_or(0.0)
}
