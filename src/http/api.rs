//! What only the HTTP API computes: the readiness probe and the gauges published at scrape
//! time. The API's other JSON shapes are [`crate::views`], shared with the CLI.

use crate::source::Live;
use crate::telemetry;
use crate::views::millis;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::atomic::Ordering::Relaxed;

/// Readiness fails when the last checkpoint is older than this (an idle stream saves every
/// second, so this means the tailer is stuck or the disk is).
pub const MAX_CHECKPOINT_AGE_SECS: i64 = 60;
pub use crate::source::oplog::MIN_OPLOG_HEADROOM_SECS;

/// `GET /readyz`: 200 when every check passes, else 503 with the failing ones.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Readiness {
    pub ready: bool,
    pub stream_connected: bool,
    pub checkpoint_age_secs: Option<i64>,
    pub oplog_headroom_secs: Option<i64>,
    pub problems: Vec<String>,
}

impl Readiness {
    pub fn check(live: &Live, now: DateTime<Utc>) -> Readiness {
        let connected = live.connected.load(Relaxed);
        let age = millis(live.checkpoint_at_ms.load(Relaxed)).map(|t| (now - t).num_seconds());
        let headroom = *live.oplog_headroom_secs.lock().expect("not poisoned");
        let mut problems = vec![];
        if !connected {
            problems.push("change stream not connected".to_owned());
        }
        match age {
            None => problems.push("no checkpoint saved yet".to_owned()),
            Some(a) if a > MAX_CHECKPOINT_AGE_SECS => {
                problems.push(format!("last checkpoint {a} s ago"))
            }
            Some(_) => {}
        }
        if let Some(h) = headroom.filter(|_| live.oplog_headroom_low.load(Relaxed)) {
            problems.push(format!(
                "resume position only {h} s from falling out of the oplog"
            ));
        }
        Readiness {
            ready: problems.is_empty(),
            stream_connected: connected,
            checkpoint_age_secs: age,
            oplog_headroom_secs: headroom,
            problems,
        }
    }
}

/// Counters kept by the tailer as atomics, and gauges that depend on the clock, published to
/// the recorder just before each scrape.
pub fn export_gauges(live: &Live, now: DateTime<Utc>) {
    use metrics::{counter, gauge};
    counter!(telemetry::EVENTS_APPLIED_TOTAL).absolute(live.events_applied.load(Relaxed));
    counter!(telemetry::EVENTS_LATE_TOTAL).absolute(live.events_late.load(Relaxed));
    counter!(telemetry::CHECKPOINTS_TOTAL).absolute(live.checkpoints.load(Relaxed));
    counter!(telemetry::RECONNECTS_TOTAL).absolute(live.reconnects.load(Relaxed));
    for (reason, n) in live.skipped_by_reason() {
        counter!(telemetry::EVENTS_SKIPPED_TOTAL, "reason" => reason).absolute(n);
    }
    gauge!(telemetry::STREAM_CONNECTED).set(f64::from(u8::from(live.connected.load(Relaxed))));
    gauge!(telemetry::LAG_SECONDS).set(live.lag_ms.load(Relaxed) as f64 / 1000.0);
    if let Some(at) = millis(live.checkpoint_at_ms.load(Relaxed)) {
        gauge!(telemetry::TOKEN_AGE_SECONDS).set((now - at).num_milliseconds() as f64 / 1000.0);
    }
    if let Some(h) = *live.oplog_headroom_secs.lock().expect("not poisoned") {
        gauge!(telemetry::OPLOG_HEADROOM_SECONDS).set(h as f64);
    }
}
