//! What the insights cost per report: the comparisons' queries next to the report's own
//! `$facet`, side by side in one run.
//!
//! `cargo bench --bench insights` (harness off). Against `secantusd-rs` if installed, else the
//! Python SecantusDB with fewer sales (said in the output). `INSIGHTS_SALES` sets the sales per
//! window (default 1 M on `secantusd-rs`, 20 k on the Python server). Progress on stderr; the
//! last line on stdout is one JSON object with every figure.
//!
//! A 6 h window and the three it is compared with (the window before, the same window
//! yesterday and a week ago) each hold `INSIGHTS_SALES` sales, with the index `setup` creates.
//! Measured, alternating, twice: the report's `$facet` over its window, and
//! [`compare::query`] (the three comparison `$facet`s, run concurrently as a report runs them).

#[allow(dead_code)]
mod support;

use bson::{doc, Document};
use chrono::{TimeDelta, Utc};
use futures::future::join_all;
use mongodb::{Client, Collection};
use power_revenue::config::{Config, Settings};
use power_revenue::window::{Window, WindowSpec};
use power_revenue::{compare, reconcile, setup};
use serde_json::json;
use std::time::Instant;
use support::{sale, Server};

const COLLECTION: &str = "power_transaction_items";
const DATABASE: &str = "insights";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(run());
    eprintln!("{}", serde_json::to_string_pretty(&result).unwrap());
    println!("{}", serde_json::to_string(&result).unwrap());
}

async fn run() -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("db"), 50_000_000);
    let uri = server.uri();
    let rust = server.name().starts_with("secantusd-rs");
    let sales: i64 = std::env::var("INSIGHTS_SALES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if rust { 1_000_000 } else { 20_000 });
    eprintln!(
        "insights: server {}, {sales} sales per window",
        server.name()
    );
    let client = Client::with_uri_str(&uri).await.unwrap();
    let config = Config::from_settings(Settings {
        mongodb_uri: Some(uri.clone()),
        database: Some(DATABASE.to_owned()),
        // A 1 M-sale `$facet` takes minutes on the test server: measure it, do not cut it off.
        query_timeout: Some("1d".to_owned()),
        ..Default::default()
    })
    .unwrap();
    let coll: Collection<Document> = client.database(DATABASE).collection(COLLECTION);
    coll.insert_one(doc! { "seed": true }).await.unwrap();
    setup::run(&config, &coll).await.unwrap();

    let spec = WindowSpec::new(6 * 3600, chrono_tz::Tz::UTC).unwrap();
    let w = spec.window_of(Utc::now() - TimeDelta::days(1));
    let windows = [
        w.clone(),
        spec.previous(&w),
        spec.days_before(&w, 1),
        spec.days_before(&w, 7),
    ];
    let began = Instant::now();
    for (i, window) in windows.iter().enumerate() {
        fill(&coll, window, i as i64 * sales, sales).await;
    }
    let insert_secs = began.elapsed().as_secs_f64();
    eprintln!(
        "insights: inserted {} sales in {insert_secs:.1} s",
        sales * windows.len() as i64
    );

    let (mut report, mut comparisons) = (vec![], vec![]);
    for round in 0..2 {
        let began = Instant::now();
        let totals = reconcile::query(&coll, &config, &w).await.unwrap();
        report.push(began.elapsed().as_secs_f64());
        assert_eq!(totals.total().count, sales as u64);

        let began = Instant::now();
        let c = compare::query(&coll, &config, &w).await;
        comparisons.push(began.elapsed().as_secs_f64());
        for compared in [&c.previous, &c.yesterday, &c.last_week] {
            let t = compared.totals.as_ref().expect("comparison query failed");
            assert_eq!(t.total().count, sales as u64);
        }
        eprintln!(
            "insights: round {round}: report $facet {:.1} s, comparisons {:.1} s",
            report[round], comparisons[round]
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (r, c) = (mean(&report), mean(&comparisons));
    eprintln!("\n| per report at {sales} sales/window | seconds | × the report's own $facet |");
    eprintln!("|---|---|---|");
    eprintln!("| report `$facet` | {r:.1} | 1.00 |");
    eprintln!(
        "| comparisons (3 `$facet`s, concurrent) | {c:.1} | {:.2} |",
        c / r
    );
    json!({
        "server": server.name(),
        "sales_per_window": sales,
        "insert_secs": round1(insert_secs),
        "report_facet_secs": report.iter().copied().map(round1).collect::<Vec<_>>(),
        "comparisons_secs": comparisons.iter().copied().map(round1).collect::<Vec<_>>(),
        "comparisons_over_report": (c / r * 100.0).round() / 100.0,
    })
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// `n` sales spread over `w`, ids from `first`, inserted 4 × 10 k at a time.
async fn fill(coll: &Collection<Document>, w: &Window, first: i64, n: i64) {
    const BATCH: i64 = 10_000;
    let span_ms = (w.end - w.start).num_milliseconds();
    let batches: Vec<i64> = (0..(n + BATCH - 1) / BATCH).collect();
    for chunk in batches.chunks(4) {
        join_all(chunk.iter().map(|b| {
            let docs: Vec<Document> = (b * BATCH..((b + 1) * BATCH).min(n))
                .map(|i| {
                    sale(
                        first + i,
                        w.start + TimeDelta::milliseconds(i * 7919 % span_ms),
                    )
                })
                .collect();
            async move { coll.insert_many(docs).await.unwrap() }
        }))
        .await;
    }
}
