//! What the insights cost per report: the comparisons' queries next to the report's own
//! `$facet`, side by side in one run.
//!
//! `cargo bench --bench insights` (harness off). Against `secantusd-rs` if installed, else the
//! Python SecantusDB with fewer sales (said in the output). `INSIGHTS_SALES` sets the sales per
//! window (default 1 M on `secantusd-rs`, 20 k on the Python server), `INSIGHTS_ROUNDS` the
//! rounds (default 2). Progress on stderr; the
//! last line on stdout is one JSON object with every figure.
//!
//! A 6 h window and the three it is compared with (the window before, the same window
//! yesterday and a week ago) each hold `INSIGHTS_SALES` sales, with the index `setup` creates;
//! the 30 minutes before the same time of day on the five other days of the past week hold
//! their share (1/12 of it), as a week of such windows would. Measured, in turn, twice:
//! - the report's `$facet` over its window;
//! - [`compare::query`]: the three comparison `$facet`s, run concurrently as a report runs them;
//! - one silent-utility baseline ([`silence::baseline::query`], `30m`, seven days: 7/12 of a
//!   window's sales), which the service runs every 5 minutes.
//!
//! Summaries are built from the ledger (what the reports told) and query nothing; the
//! comparisons query only windows the ledger lacks, once (`compare::query` here is that cost,
//! paid at most once per window).

#[allow(dead_code)]
mod support;

use bson::{doc, Document};
use chrono::{TimeDelta, Utc};
use futures::future::join_all;
use mongodb::{Client, Collection};
use power_revenue::config::{Config, Settings};
use power_revenue::window::{Window, WindowSpec};
use power_revenue::{compare, reconcile, setup, silence};
use serde_json::json;
use std::time::Instant;
use support::{sale, Server};

const COLLECTION: &str = "power_transaction_items";
const DATABASE: &str = "insights";

fn main() {
    support::print_figures(run());
}

async fn run() -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("db"), 50_000_000);
    let uri = server.uri();
    let rust = server.name().starts_with("secantusd-rs");
    let sales: i64 = support::env_number("INSIGHTS_SALES", if rust { 1_000_000 } else { 20_000 });
    eprintln!(
        "insights: server {}, {sales} sales per window",
        server.name()
    );
    let rounds: usize = support::env_number("INSIGHTS_ROUNDS", 2);
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
        w,
        spec.previous(&w),
        spec.days_before(&w, 1),
        spec.days_before(&w, 7),
    ];
    let began = Instant::now();
    for (i, window) in windows.iter().enumerate() {
        fill(&coll, window, i as i64 * sales, sales).await;
    }
    // The baseline's other five days: [t − 30m, t) at the same time of day.
    let at = w.start + TimeDelta::hours(3);
    let period = std::time::Duration::from_secs(30 * 60);
    for d in 2..=6 {
        let end = at - TimeDelta::days(d);
        let slice = Window {
            start: end - TimeDelta::minutes(30),
            end,
        };
        fill(&coll, &slice, (3 + d) * sales, sales / 12).await;
    }
    let insert_secs = began.elapsed().as_secs_f64();
    eprintln!(
        "insights: inserted {} sales in {insert_secs:.1} s",
        sales * windows.len() as i64
    );

    let (mut report, mut comparisons, mut baseline) = (vec![], vec![], vec![]);
    let mut baseline_sales = 0;
    for round in 0..rounds {
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

        let began = Instant::now();
        let b = silence::baseline::query(&coll, &config, at, period)
            .await
            .unwrap();
        baseline.push(began.elapsed().as_secs_f64());
        baseline_sales = b.sales.values().sum::<u64>();
        assert!(baseline_sales >= 5 * (sales as u64 / 12));
        eprintln!(
            "insights: round {round}: report $facet {:.1} s, comparisons {:.1} s, baseline {:.1} s",
            report[round], comparisons[round], baseline[round]
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (r, c, b) = (mean(&report), mean(&comparisons), mean(&baseline));
    eprintln!("\n| per report at {sales} sales/window | seconds | × the report's own $facet |");
    eprintln!("|---|---|---|");
    eprintln!("| report `$facet` | {r:.1} | 1.00 |");
    eprintln!(
        "| comparisons (3 `$facet`s, concurrent) | {c:.1} | {:.2} |",
        c / r
    );
    eprintln!("| one silence baseline (7 × 30m) | {b:.1} | {:.2} |", b / r);
    json!({
        "server": server.name(),
        "sales_per_window": sales,
        "insert_secs": round1(insert_secs),
        "report_facet_secs": report.iter().copied().map(round1).collect::<Vec<_>>(),
        "comparisons_secs": comparisons.iter().copied().map(round1).collect::<Vec<_>>(),
        "baseline_sales_counted": baseline_sales,
        "baseline_secs": baseline.iter().copied().map(round1).collect::<Vec<_>>(),
        "comparisons_over_report": ratio(c, r),
        "baseline_over_report": ratio(b, r),
    })
}

fn ratio(a: f64, b: f64) -> f64 {
    (a / b * 100.0).round() / 100.0
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
