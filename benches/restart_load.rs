//! Restart under load, measured: 20 `kill -9` in 70 s under 1,000 inserts/s on the Python
//! SecantusDB (which runs a dead client's query to its end), then a fresh process; prints where
//! its start spent its time. A measurement, not a test: `cargo bench --bench restart_load`
//! (harness off; about two minutes). Figures in benches/README.md.

#[path = "../tests/it/common/mod.rs"]
mod common;

use bson::{doc, Document};
use chrono::{DateTime, Utc};
use common::service::Service;
use common::slack::FakeSlack;
use common::{wait_for, TestDb};
use power_revenue::devserver::DevServer;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(measure_restart_after_a_kill_storm_under_load());
}

/// The timestamp of the first log line containing `needle` (the log's RFC 3339 prefix).
fn logged_at(log: &str, needle: &str) -> Option<DateTime<Utc>> {
    let line = log.lines().find(|l| l.contains(needle))?;
    DateTime::parse_from_rfc3339(line.split_whitespace().next()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Inserts `per_sec` fulfilled sales a second, `per_insert` a command, until `stop`.
fn insert_load(
    db: &TestDb,
    per_sec: u64,
    per_insert: u64,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    let coll = db.coll.clone();
    tokio::spawn(async move {
        let mut n = 0u64;
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let docs: Vec<Document> = (0..per_insert)
                .map(|i| {
                    doc! { "createdAt": bson::DateTime::now(), "utility": "IKEDC",
                    "amount": format!("₦1,{:03}.50", i % 1000), "status": "fulfilled" }
                })
                .collect();
            coll.insert_many(docs).await.unwrap();
            n += per_insert;
            let due = Duration::from_secs_f64(n as f64 / per_sec as f64);
            tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
        }
        n
    })
}

/// The observation, replayed: 20 `kill -9` in 70 s under 1,000 inserts/s, then a fresh
/// process; prints where its start spent its time. Not an assertion: a measurement
/// (`cargo bench --bench restart_load`).
async fn measure_restart_after_a_kill_storm_under_load() {
    let server = DevServer::start(None, &["--oplog-max-entries", "1000000"]).unwrap();
    let uri = server.uri();
    let db = TestDb::on(&uri, "storm").await;
    let slack = FakeSlack::start().await;
    let window_secs = env_u64("STORM_WINDOW_SECS", 60);
    let window = format!("{window_secs}s");
    let mut svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[("MONGODB_URI", &uri), ("POWER_REVENUE_WINDOW", &window)],
    );
    svc.wait_connected().await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = insert_load(
        &db,
        env_u64("STORM_RATE", 1000),
        env_u64("STORM_PER_INSERT", 100),
        stop.clone(),
    );
    let ops = watch_ops(db.client.clone(), stop.clone());
    // The storm begins 6 s before a window ends, with sales in it since at least 40 s: the
    // window closes early in the storm, and every restart after that has its report pending.
    let spec = common::spec(window_secs);
    let mut boundary = spec.window_of(Utc::now()).end;
    while (boundary - Utc::now()).num_seconds() < 46 {
        boundary += chrono::TimeDelta::seconds(window_secs as i64);
    }
    let begin = (boundary - Utc::now() - chrono::TimeDelta::seconds(6))
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(begin).await;
    eprintln!("storm begins; the window ending {boundary} is due 1 s after it ends");
    let storm = Instant::now();
    let mut opened_in = Vec::new();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(env_u64("STORM_KILL_MS", 3500))).await;
        let log = svc.current_log();
        opened_in.push(
            logged_at(&log, "Change stream open.")
                .zip(logged_at(&log, "Configured."))
                .map(|(open, start)| (open - start).num_milliseconds()),
        );
        svc.kill9();
        svc.restart();
    }
    eprintln!(
        "storm: 20 kill -9 in {:?}; per run, start → stream open (ms): {opened_in:?}",
        storm.elapsed()
    );
    let spawned = Utc::now();
    let connected = wait_for(Duration::from_secs(240), "the stream", async || {
        let s = svc.status().await?;
        s["counters"]["stream_connected"].as_bool().filter(|c| *c)?;
        Some(Utc::now())
    })
    .await;
    eprintln!(
        "fresh process: stream_connected after {} ms",
        (connected - spawned).num_milliseconds()
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    stop.store(true, Ordering::Relaxed);
    let inserted = writer.await.unwrap();
    let max_ops = ops.await.unwrap();
    let log = svc.current_log();
    eprintln!("inserted {inserted}; most power-revenue connections busy at once: {max_ops}");
    for needle in [
        "Configured.",
        "Restored checkpoint.",
        "power-revenue running.",
        "Change stream open.",
        "Restatement mode.",
        "Window closed.",
        "closing by the clock",
        "Reconciliation query failed",
        "Report posted",
    ] {
        if let Some(t) = logged_at(&log, needle) {
            eprintln!("{:>8} ms  {needle}", (t - spawned).num_milliseconds());
        }
    }
    eprintln!("--- log of the fresh process ---\n{log}");
}

/// Samples the server's connections from `power-revenue` processes (a killed process's
/// connection stays until the command it was running ends) until `stop`; prints each second
/// how many there are per last command; returns the most seen at once.
fn watch_ops(client: mongodb::Client, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    let most = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let asked = Instant::now();
            if let Ok(reply) = client
                .database("admin")
                .run_command(doc! { "currentOp": 1 })
                .await
            {
                let mut by_op = std::collections::BTreeMap::<String, u64>::new();
                for o in reply.get_array("inprog").into_iter().flatten() {
                    let Some(o) = o.as_document() else { continue };
                    let ours = o
                        .get_document("clientMetadata")
                        .and_then(|m| m.get_document("application"))
                        .and_then(|a| a.get_str("name"))
                        .is_ok_and(|name| name.starts_with("power-revenue"));
                    if ours {
                        *by_op
                            .entry(o.get_str("op").unwrap_or("?").to_owned())
                            .or_default() += 1;
                    }
                }
                let total: u64 = by_op.values().sum();
                most.fetch_max(total, Ordering::Relaxed);
                eprintln!(
                    "ops t={:>5.1}s currentOp took {:>5} ms: {total} connections {by_op:?}",
                    started.elapsed().as_secs_f64(),
                    asked.elapsed().as_millis()
                );
            }
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
        most.load(Ordering::Relaxed)
    })
}
