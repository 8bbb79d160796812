//! End-to-end benchmark: the release binary tailing a real server while sales pour in.
//!
//! `cargo bench --bench e2e` (harness off). Against `secantusd-rs` if it is installed (see
//! benches/README.md), else the Python SecantusDB with a smaller volume (said in the output).
//! Progress goes to stderr; the last line on stdout is one JSON object with every figure.
//!
//! Phases, all in one run so the ratios share the machine's mood:
//! 1. live: `serve` runs while `E2E_EVENTS` sales (default 1 M) are inserted as fast as the
//!    server takes them across several short windows; throughput, lag, CPU, RSS at 10 k /
//!    100 k / 1 M (/ 10 M) events, checkpoints, and every report checked against what was
//!    inserted, to the kobo;
//! 2. the seed's way: one `$facet` per window at report time, timed as windows grow, with and
//!    without the index `init-indexes` creates;
//! 3. restart: stopped, 100 k sales inserted, started: time and CPU to catch up;
//! 4. the obvious Python consumer (benches/peers/consumer.py) replays phase 1's stream.
//!
//! Knobs (environment): `E2E_EVENTS`, `E2E_WINDOW` (default 10s); `E2E_LATE_PERCENT` dates that
//! share of sales three windows back, into windows already reported (a late-sale flood: they
//! must come out as corrections, exact, with memory flat); `E2E_OPLOG_MAX` and
//! `E2E_SERVER_CACHE` bound the server's memory for runs of 10 M (`secantusd-rs` keeps its
//! oplog in memory); with the oplog capped below the run, phases 2 and 4 and the stream ceiling
//! (which replay phase 1 or rebuild its index) are skipped and say so. `E2E_LIVE_ONLY=1`: phase
//! 1 and the peer only, no reports (for profiling). `E2E_RATE` caps the insert rate (sales/s),
//! so a run far longer than the server's capped oplog keeps its stream within the oplog. `E2E_BIN`: run another build of the
//! service under the same harness.

mod load;
mod phases;
mod probe;
mod service;
#[allow(dead_code)]
#[path = "../../tests/it/common/slack.rs"]
mod slack;
#[allow(dead_code)] // each bench uses part of the shared support
#[path = "../support/mod.rs"]
mod support;

use bson::{doc, Bson, Document};
use chrono::{DateTime, Utc};
use load::*;
use mongodb::{Client, Collection};
use phases::*;
use power_revenue::config::{Config, Settings};
use power_revenue::devserver;
use power_revenue::reconcile;
use power_revenue::window::{Window, WindowId, WindowSpec};
use probe::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};
use service::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::Server;

/// The service under test: this build, or `E2E_BIN` (another build, to compare two in one run
/// of the same harness).
fn bin() -> PathBuf {
    std::env::var_os("E2E_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_power-revenue").into())
}
const UTILITIES: [&str; 10] = [
    "IKEDC", "EKEDC", "AEDC", "PHED", "IBEDC", "KEDCO", "JEDC", "EEDC", "BEDC", "KAEDCO",
];
const BATCH: usize = 1000;
const INSERTERS: usize = 4;
const RESTART_BACKLOG: u64 = 100_000;
const DATABASE: &str = "bench";
/// How often the service's applied count is read (the lag's resolution); each read costs the
/// service some CPU, measured at idle and subtracted. At 20 ms the reads were a quarter of the
/// service's CPU and the subtraction's error as large as the effects being measured; lags at
/// the server's maximum rate are seconds, so 100 ms resolves them.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

fn main() {
    support::print_figures(run());
}

/// What was inserted, per window: (kobo, count). Money the bench computed itself.
type Expected = BTreeMap<WindowId, (i64, u64)>;

async fn run() -> Value {
    let env_num = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let dir = tempfile::tempdir().unwrap();
    let oplog_max = env_num("E2E_OPLOG_MAX").unwrap_or(50_000_000);
    let server = Server::start(&dir.path().join("db"), oplog_max);
    let fallback = matches!(server, Server::Python(_));
    let default_events = if fallback { 100_000 } else { 1_000_000 };
    let events = env_num("E2E_EVENTS").unwrap_or(default_events);
    let late_percent = env_num("E2E_LATE_PERCENT").unwrap_or(0).min(100) as u32;
    let window = std::env::var("E2E_WINDOW").unwrap_or_else(|_| "10s".into());
    // Phase 1's stream can be replayed only while the server still holds all of it.
    let replays = oplog_max >= events + RESTART_BACKLOG;
    eprintln!(
        "e2e: {} sales ({late_percent} % late) against {}, {window} windows, oplog {oplog_max} entries{}",
        events,
        server.name(),
        if replays { "" } else { " (replay phases skipped)" }
    );
    let uri = server.uri();
    let config = Config::from_settings(Settings {
        mongodb_uri: Some(uri.clone()),
        database: Some(DATABASE.into()),
        window: Some(window.clone()),
        ..Settings::default()
    })
    .unwrap();
    let spec = config.window;
    let client = Client::with_uri_str(&uri).await.unwrap();
    let coll: Collection<Document> = client
        .database(DATABASE)
        .collection("power_transaction_items");
    coll.insert_one(doc! { "status": "pending" }).await.unwrap();
    let status = Command::new(bin())
        .arg("init-indexes")
        .env("MONGODB_URI", &uri)
        .env("POWER_REVENUE_DATABASE", DATABASE)
        .status()
        .unwrap();
    assert!(status.success(), "init-indexes failed");

    let slack = slack::FakeSlack::start().await;
    let state = dir.path().join("state");
    let service = Service::start(&uri, &state, &slack.url, &window);
    let http = reqwest::Client::new();
    let base = service.http.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    while applied(&http, &base).await.is_none() {
        assert!(Instant::now() < deadline, "service did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the stream open (and save its starting token) before the first sale.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start_ts = cluster_time(&client).await;
    // What our own sampling costs the service: the same polling, for a while, with no sales.
    let polling_cpu_per_request = {
        let before = usage(service.pid());
        let began = Instant::now();
        let mut requests = 0u32;
        while began.elapsed() < Duration::from_secs(5) {
            applied(&http, &base).await;
            requests += 1;
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
        (usage(service.pid()).cpu_secs - before.cpu_secs) / f64::from(requests)
    };
    let idle = usage(service.pid());

    // Phase 1: live.
    let acks = Arc::new(Mutex::new(Vec::new()));
    let samples: Arc<Mutex<Vec<(Instant, u64, Usage)>>> = Arc::default();
    let sampling = {
        let (http, base, samples) = (http.clone(), base.clone(), samples.clone());
        let pid = service.pid();
        tokio::spawn(async move {
            loop {
                if let Some(n) = applied(&http, &base).await {
                    samples
                        .lock()
                        .unwrap()
                        .push((Instant::now(), n, usage(pid)));
                    if n >= events {
                        return;
                    }
                }
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
        })
    };
    let started = Instant::now();
    let expected = insert(&coll, spec, events, 1, late_percent, acks.clone()).await;
    let inserted_secs = started.elapsed().as_secs_f64();
    eprintln!("e2e: inserted {events} in {inserted_secs:.1} s");
    tokio::time::timeout(Duration::from_secs(600), sampling)
        .await
        .expect("the service applied every sale")
        .unwrap();
    let samples = samples.lock().unwrap().clone();
    let acks = acks.lock().unwrap().clone();
    let (caught_up_at, _, live_usage) = *samples.last().unwrap();
    let applied_secs = (caught_up_at - started).as_secs_f64();
    eprintln!("e2e: applied {events} in {applied_secs:.1} s");

    // Lag: from a batch's acknowledgement to the first sample showing it applied.
    let mut lags: Vec<f64> = acks
        .iter()
        .filter_map(|(at, count)| {
            samples
                .iter()
                .find(|(t, n, _)| t >= at && n >= count)
                .map(|(t, _, _)| (*t - *at).as_secs_f64() * 1000.0)
        })
        .collect();
    lags.sort_by(f64::total_cmp);

    // Cost at each scale: the first sample past each count.
    let scale: Vec<Value> = [10_000u64, 100_000, 1_000_000, 10_000_000]
        .into_iter()
        .filter(|n| *n <= events)
        .filter_map(|n| samples.iter().position(|(_, a, _)| *a >= n).map(|i| (n, i)))
        .map(|(n, i)| {
            let (_, a, u) = &samples[i];
            let cpu = u.cpu_secs - idle.cpu_secs - polling_cpu_per_request * (i + 1) as f64;
            json!({
                "events": n,
                "rss_mb": round(u.rss_mb, 1),
                "cpu_us_per_event": round(cpu.max(0.0) * 1e6 / *a as f64, 2),
            })
        })
        .collect();

    if std::env::var_os("E2E_LIVE_ONLY").is_some() {
        // For profiling: phase 1's cost and the peer's, without waiting for reports.
        let polling_cpu = polling_cpu_per_request * samples.len() as f64;
        let ours = (live_usage.cpu_secs - idle.cpu_secs - polling_cpu) * 1e6 / events as f64;
        let peer = python_peer(&uri, start_ts, events);
        let peer_per_m = peer["cpu_secs"].as_f64().unwrap_or(f64::NAN) * 1e6 / events as f64;
        return json!({
            "events": events,
            "applied_rate_per_s": round(events as f64 / applied_secs, 0),
            "lag_ms_p50": round(percentile(&lags, 0.5), 1),
            "cpu_secs_per_million": round(ours, 2),
            "peer_cpu_secs_per_million": round(peer_per_m, 2),
            "cpu_ratio_peer_to_ours": round(peer_per_m / ours, 1),
            "scale": scale,
        });
    }

    // Every window reported once, exact to the kobo: its reconciled figures, or (late sales)
    // the figures re-checked when a later report posted their correction.
    let organic_late = metric(&http, &base, "power_revenue_events_late_total")
        .await
        .is_some_and(|n| n > 0.0);
    let exact_window = |w: &Value| -> Option<bool> {
        let start = w["start"].as_str()?.parse::<DateTime<Utc>>().ok()?;
        let (kobo, count) = expected.get(&WindowId(start.timestamp_millis()))?;
        let want = format!("{}.{:02}", kobo / 100, kobo % 100);
        let got = if w["rechecked"].is_null() {
            &w["reconciled"]
        } else {
            &w["rechecked"]
        };
        Some(
            w["delivery"] == "sent"
                && got["revenue"] == want.as_str()
                && got["count"] == *count
                // The stream matches the database only in windows that got no late sales;
                // a run the server cannot stream fast enough makes some (closed by the clock).
                && (late_percent > 0 || organic_late || w["matched_stream"] == true),
        )
    };
    let last = expected.keys().next_back().copied().unwrap();
    let last_end = spec.window_of(last.start()).end;
    let reports = loop {
        let v: Value = http
            .get(format!("{base}/api/v1/windows?last=1000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let windows = v.as_array().cloned().unwrap_or_default();
        let sent = windows
            .iter()
            .filter(|w| w["delivery"] == "sent" && exact_window(w).is_some())
            .count();
        let exact = windows
            .iter()
            .filter(|w| exact_window(w) == Some(true))
            .count();
        if exact == expected.len() {
            break windows;
        }
        // Each window's `$facet` runs after it closes, one after another; allow for slow servers.
        let patience = chrono::TimeDelta::seconds(120 + (events / 2_500) as i64);
        if Utc::now() > last_end + patience {
            if sent < expected.len() {
                let log = std::fs::read_to_string(state.with_extension("log")).unwrap_or_default();
                eprintln!("{log}\n{}", serde_json::to_string_pretty(&windows).unwrap());
                panic!("reports did not all arrive ({sent} of {})", expected.len());
            }
            break windows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut exact = true;
    let mut report_delays = Vec::new();
    for w in &reports {
        let Some(ok) = exact_window(w) else {
            continue;
        };
        if !ok {
            eprintln!("e2e: MISMATCH: {w}");
        }
        exact &= ok;
        if let (Some(sent), Some(end)) = (
            w["sent_at"]
                .as_str()
                .and_then(|s| s.parse::<DateTime<Utc>>().ok()),
            w["end"]
                .as_str()
                .and_then(|s| s.parse::<DateTime<Utc>>().ok()),
        ) {
            report_delays.push((sent - end).num_milliseconds() as f64 / 1000.0);
        }
    }
    let reported_windows = expected.len();
    let slack_messages = slack.messages().len();
    let checkpoints = metric(&http, &base, "power_revenue_checkpoint_writes_total")
        .await
        .unwrap_or(0.0);
    let final_usage = usage(service.pid());
    eprintln!("e2e: {reported_windows} windows reported, exact: {exact}");

    let late_sales = metric(&http, &base, "power_revenue_events_late_total")
        .await
        .unwrap_or(0.0);
    let corrections = slack
        .messages()
        .iter()
        .filter_map(|m| m["text"].as_str().map(|t| t.matches("Late for ").count()))
        .sum::<usize>();
    eprintln!("e2e: {late_sales} late sales, {corrections} correction lines");

    // The server's own ceiling: a consumer that only counts, same pipeline, same stream.
    let ceiling = if replays {
        let c = stream_ceiling(&coll, &config, start_ts, events).await;
        eprintln!("e2e: a counting-only consumer reads the stream at {c:.0} events/s");
        json!(round(c, 0))
    } else {
        json!("skipped: oplog capped below the run")
    };

    // Phase 2: the seed's way, one $facet over a window at report time, as windows grow.
    let all_acks = acks.clone();
    let facet = if replays {
        facet_scaling(&coll, &config, &all_acks, started).await
    } else {
        json!("skipped: rebuilding the index over the whole run takes the server too long")
    };

    // Phase 3: restart with a backlog.
    service.stop();
    let backlog_acks = Arc::new(Mutex::new(Vec::new()));
    insert(&coll, spec, RESTART_BACKLOG, 2, 0, backlog_acks).await;
    let restart_started = Instant::now();
    let service = Service::start(&uri, &state, &slack.url, &window);
    let base = service.http.clone();
    loop {
        if applied(&http, &base).await.unwrap_or(0) >= RESTART_BACKLOG {
            break;
        }
        assert!(
            restart_started.elapsed() < Duration::from_secs(300),
            "restart did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let restart_wall = restart_started.elapsed().as_secs_f64();
    let restart_usage = usage(service.pid());
    eprintln!("e2e: restart caught up with {RESTART_BACKLOG} in {restart_wall:.2} s");
    service.stop();

    // Phase 4: the obvious Python consumer replays phase 1's stream.
    let peer = if replays {
        python_peer(&uri, start_ts, events)
    } else {
        json!({ "skipped": "oplog capped below the run" })
    };
    let ours_cpu = live_usage.cpu_secs - idle.cpu_secs;
    let polling_cpu = polling_cpu_per_request * samples.len() as f64;
    // The ratio uses the service's own work: the peer is not polled.
    let ours_per_m = (ours_cpu - polling_cpu).max(0.0) * 1e6 / events as f64;
    let peer_per_m = peer["cpu_secs"].as_f64().unwrap_or(f64::NAN) * 1e6 / events as f64;

    json!({
        "server": server.name(),
        "events": events,
        "window": window,
        "windows_reported": reported_windows,
        "slack_messages": slack_messages,
        "reports_exact": exact,
        "late_percent": late_percent,
        "late_sales": late_sales,
        "correction_lines": corrections,
        "server_oplog_max_entries": oplog_max,
        "insert_rate_per_s": round(events as f64 / inserted_secs, 0),
        "applied_rate_per_s": round(events as f64 / applied_secs, 0),
        "stream_ceiling_per_s": ceiling,
        "lag_ms_p50": round(percentile(&lags, 0.5), 1),
        "lag_ms_p99": round(percentile(&lags, 0.99), 1),
        "lag_ms_max": round(percentile(&lags, 1.0), 1),
        "lag_sample_interval_ms": SAMPLE_EVERY.as_millis() as u64,
        "cpu_secs": round(ours_cpu, 2),
        "cpu_secs_of_which_sampling": round(polling_cpu, 2),
        "cpu_secs_per_million": round(ours_per_m, 2),
        "peak_rss_mb": round(final_usage.peak_rss_mb, 1),
        "checkpoints": checkpoints,
        "scale": scale,
        "report_delay_secs_after_window_end": {
            "p50": round(percentile(&sorted(report_delays.clone()), 0.5), 2),
            "max": round(percentile(&sorted(report_delays), 1.0), 2),
        },
        "seed_facet": facet,
        "restart": {
            "backlog": RESTART_BACKLOG,
            "wall_secs": round(restart_wall, 2),
            "cpu_secs": round(restart_usage.cpu_secs, 2),
        },
        "python_peer": {
            "result": peer,
            "cpu_secs_per_million": round(peer_per_m, 2),
            "cpu_ratio_peer_to_ours": round(peer_per_m / ours_per_m, 1),
        },
    })
}
