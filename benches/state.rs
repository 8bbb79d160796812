//! A year of state: 10-minute windows with 30 utilities each, every report sent, written
//! through the store as the service writes it, once kept for ever and once pruned daily at the
//! default retention (90 days). Then the service itself on the year-long state: `/healthz`
//! latency while 8 clients poll `/api/v1/status` and `/api/v1/windows?last=1000`.
//!
//! `cargo bench --bench state` (harness off). `STATE_DAYS` days (default 365); `STATE_POLL_SECS`
//! seconds of polling (default 10). Progress on stderr; the last line on stdout is one JSON
//! object with every figure.

#[allow(dead_code)]
mod support;

use chrono::{DateTime, TimeDelta, Utc};
use power_revenue::activity::Activity;
use power_revenue::change::Marks;
use power_revenue::store::Outboxed;
use power_revenue::store::{Checkpoint, Messages, Reconciled, ReportRecord, Settlement, Store};
use power_revenue::window::{ClosedBy, OpenWindow, Window, WindowSpec};
use rust_decimal::Decimal;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::Server;

const UTILITIES: usize = 30;
const RETENTION_DAYS: i64 = 90;

fn main() {
    support::print_figures(run());
}

async fn run() -> serde_json::Value {
    let days: i64 = support::env_number("STATE_DAYS", 365);
    let poll_secs: u64 = support::env_number("STATE_POLL_SECS", 10);
    let dir = tempfile::tempdir().unwrap();
    let kept = simulate(&dir.path().join("kept"), days, None).await;
    let pruned = simulate(&dir.path().join("pruned"), days, Some(RETENTION_DAYS)).await;
    eprintln!("\n| day | state kept for ever (MiB) | pruned at 90 days (MiB) |");
    eprintln!("|---|---|---|");
    for ((day, k), (_, p)) in kept.iter().zip(&pruned) {
        eprintln!("| {day} | {:.1} | {:.1} |", mib(*k), mib(*p));
    }

    // The service on the year kept for ever (the worst case for every read).
    let server = Server::start(&dir.path().join("db"), 1_000_000);
    let state = dir.path().join("kept");
    let svc = support::Service(
        Command::new(env!("CARGO_BIN_EXE_power-revenue"))
            .arg("serve")
            .env("MONGODB_URI", server.uri())
            .env("POWER_REVENUE_DATABASE", "state")
            .env("POWER_REVENUE_WINDOW", "10m")
            .env("POWER_REVENUE_RETENTION", "3653d")
            .env("POWER_REVENUE_STATE_DIR", &state)
            .env("POWER_REVENUE_HTTP_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let file = state.join("power-revenue.http");
    support::wait_until(Duration::from_secs(60), "the HTTP address", || {
        file.exists()
    });
    let base = format!("http://{}", std::fs::read_to_string(&file).unwrap().trim());
    let idle = healthz(&base, Duration::from_secs(2), None).await;
    let busy = healthz(&base, Duration::from_secs(poll_secs), Some(8)).await;
    drop(svc);
    eprintln!("\n| /healthz | p50 ms | p99 ms | max ms |");
    eprintln!("|---|---|---|---|");
    for (what, l) in [("idle", &idle), ("8 clients polling", &busy)] {
        eprintln!("| {what} | {:.2} | {:.2} | {:.2} |", l.p50, l.p99, l.max);
    }
    json!({
        "days": days,
        "utilities": UTILITIES,
        "state_mib_kept": kept.iter().map(|(d, b)| json!({"day": d, "mib": round1(mib(*b))})).collect::<Vec<_>>(),
        "state_mib_pruned": pruned.iter().map(|(d, b)| json!({"day": d, "mib": round1(mib(*b))})).collect::<Vec<_>>(),
        "healthz_idle_ms": idle.json(),
        "healthz_polled_ms": busy.json(),
        "polls_answered": busy.polls,
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Writes `days` of windows ending now as the service does (closed with a checkpoint, made
/// ready, sent with its ledger figures), pruning once a simulated day when `retention` is set;
/// the directory's size at a few days.
async fn simulate(dir: &Path, days: i64, retention: Option<i64>) -> Vec<(i64, u64)> {
    let spec = WindowSpec::new(600, chrono_tz::Tz::UTC).unwrap();
    let start = Utc::now() - TimeDelta::days(days);
    let mut w = spec.window_of(start);
    let store = Store::open(dir).unwrap();
    let began = Instant::now();
    let mut sizes = vec![];
    for day in 1..=days {
        let mut closed = vec![];
        let mut activity = Activity::default();
        while w.end <= start + TimeDelta::days(day) {
            closed.push(record(w));
            for u in 0..UTILITIES {
                for m in 0..10 {
                    let at = w.start + TimeDelta::minutes(m);
                    activity.add(at.timestamp_millis(), &format!("UTILITY{u:02}"), 4);
                }
            }
            w = spec.next(&w);
        }
        let cp = Checkpoint {
            token: None,
            open: vec![OpenWindow::new(w, w.start)],
            next_close: w,
            saved_at: w.start,
        };
        store
            .save_checkpoint(&cp, &closed, &Marks::default(), &activity)
            .await
            .unwrap();
        for mut r in closed {
            let messages = Messages::new(json!({ "text": "report" }), vec![]);
            let at = r.window.end;
            r.ready(
                Reconciled::Database(r.streamed.clone()),
                messages,
                Settlement::default(),
                at,
            )
            .unwrap();
            r.part_accepted(at).unwrap();
            r.sent(at).unwrap();
            store.mark_delivered_then(&r, None).await.unwrap();
        }
        if let Some(keep) = retention {
            let now = start + TimeDelta::days(day);
            let before: DateTime<Utc> = now - TimeDelta::days(keep);
            store.prune(before, now - TimeDelta::days(8)).unwrap();
        }
        if [30, 90, 180, 270, 365].contains(&day) || day == days {
            let size = dir_size(dir);
            eprintln!(
                "state: day {day}, {} MiB ({}), {:.0} s",
                round1(mib(size)),
                if retention.is_some() {
                    "pruned"
                } else {
                    "kept"
                },
                began.elapsed().as_secs_f64()
            );
            sizes.push((day, size));
        }
    }
    sizes
}

/// A closed window's record with 30 utilities' figures.
fn record(w: Window) -> ReportRecord {
    let mut open = OpenWindow::new(w, w.start);
    for u in 0..UTILITIES {
        for _ in 0..40 {
            open.totals
                .add(&format!("UTILITY{u:02}"), Decimal::new(150_050, 2))
                .unwrap();
        }
    }
    ReportRecord::closed(open, ClosedBy::Stream, w.end)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                dir_size(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

struct Latency {
    p50: f64,
    p99: f64,
    max: f64,
    polls: u64,
}

impl Latency {
    fn json(&self) -> serde_json::Value {
        json!({ "p50": round2(self.p50), "p99": round2(self.p99), "max": round2(self.max) })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `/healthz` one request at a time for `secs`, while `pollers` clients (if any) poll the
/// status and the last 1,000 windows as fast as they are answered.
async fn healthz(base: &str, secs: Duration, pollers: Option<usize>) -> Latency {
    let stop = Arc::new(AtomicBool::new(false));
    let polls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..pollers.unwrap_or(0))
        .map(|i| {
            let (stop, polls) = (stop.clone(), polls.clone());
            let url = if i % 2 == 0 {
                format!("{base}/api/v1/status")
            } else {
                format!("{base}/api/v1/windows?last=1000")
            };
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                while !stop.load(Relaxed) {
                    let r = http.get(&url).send().await.unwrap();
                    assert!(r.status().is_success(), "{url}: {}", r.status());
                    r.bytes().await.unwrap();
                    polls.fetch_add(1, Relaxed);
                }
            })
        })
        .collect();
    let http = reqwest::Client::new();
    let mut ms = vec![];
    let until = Instant::now() + secs;
    while Instant::now() < until {
        let began = Instant::now();
        let r = http.get(format!("{base}/healthz")).send().await.unwrap();
        assert!(r.status().is_success());
        r.bytes().await.unwrap();
        ms.push(began.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Latency {
        p50: at(0.5),
        p99: at(0.99),
        max: *ms.last().unwrap(),
        polls: polls.load(Relaxed),
    }
}
