//! The live, readable state: open windows with their running totals, and counters. Written
//! only by the tailer; read by `status`, the HTTP API and tests.

use crate::rules::SkipReason;
use crate::window::{OpenWindow, WindowId};
use dashmap::DashMap;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tracing::warn;

/// How far behind its commit time an applied event may be for the stream to count as caught up.
pub const CAUGHT_UP_LAG: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct Live {
    /// Keyed by a plain integer hashed per event: Fx, not SipHash (no untrusted keys here).
    pub windows: DashMap<WindowId, OpenWindow, rustc_hash::FxBuildHasher>,
    pub events_applied: AtomicU64,
    pub events_skipped: AtomicU64,
    pub skipped_by_reason: DashMap<SkipReason, u64>,
    pub events_late: AtomicU64,
    pub reconnects: AtomicU64,
    pub checkpoints: AtomicU64,
    pub connected: AtomicBool,
    /// The stream has shown every sale committed until recently: its last batch ended at the
    /// end of the oplog (two empty batches in a row), or its last event was applied within
    /// [`CAUGHT_UP_LAG`] of its commit. False while disconnected and after each (re)open until
    /// then. Silence alerts wait for it.
    pub caught_up: AtomicBool,
    /// Set once the first attempt to open the stream has ended, opened or not. Slow queries
    /// at start wait for it (see [`Live::first_open_attempt`]).
    pub open_attempted: tokio::sync::watch::Sender<bool>,
    /// Unix ms of the last durable checkpoint (0: none yet).
    pub checkpoint_at_ms: AtomicI64,
    /// Unix ms at which the last applied event was committed (0: none yet).
    pub last_event_ms: AtomicI64,
    /// How far behind the last applied event was: apply time minus commit time, ms.
    pub lag_ms: AtomicI64,
    /// How much older than our resume position the oldest oplog entry is, s; `None` until
    /// measured or where the server does not expose its oplog.
    pub oplog_headroom_secs: std::sync::Mutex<Option<i64>>,
    /// The oplog is rolling over (its oldest entry advances) and the headroom is low.
    pub oplog_headroom_low: AtomicBool,
    /// How restatements are found, as last read from the collection (`None` until read).
    pub restatement_mode: std::sync::Mutex<Option<crate::setup::RestatementMode>>,
}

impl Live {
    /// Open windows, oldest first.
    pub fn snapshot(&self) -> Vec<OpenWindow> {
        let mut v: Vec<_> = self.windows.iter().map(|e| e.value().clone()).collect();
        v.sort_by_key(|w| w.window.start);
        v
    }

    /// Waits until the first attempt to open the stream has ended, at most `bound`. Queries
    /// that can wait (a report's `$facet`, the oplog headroom) wait for this at start: on a busy
    /// server the stream opens first, not behind them (a restart in a crash loop used to start
    /// its pending report's `$facet` alongside the stream, and each killed process left one
    /// running on the server).
    pub(crate) async fn first_open_attempt(&self, bound: Duration) {
        let mut attempted = self.open_attempted.subscribe();
        let _ = tokio::time::timeout(bound, attempted.wait_for(|done| *done)).await;
    }

    pub(crate) fn count_skip(&self, reason: SkipReason) {
        self.events_skipped.fetch_add(1, Relaxed);
        *self.skipped_by_reason.entry(reason).or_default() += 1;
    }

    pub fn skipped_by_reason(&self) -> BTreeMap<String, u64> {
        self.skipped_by_reason
            .iter()
            .map(|e| (e.key().as_str().to_owned(), *e.value()))
            .collect()
    }
}

/// Bounds how many skipped (or late) sales are logged one by one: a flood of them must not
/// flood the log. The rest are summarised once the interval ends; all are counted regardless.
#[derive(Debug)]
pub struct LogLimiter {
    /// What is being logged, for the summary line ("skipped", "late").
    what: &'static str,
    interval: Duration,
    max: u32,
    started: Instant,
    logged: u32,
    suppressed: u64,
}

impl LogLimiter {
    pub fn new(what: &'static str, max: u32, interval: Duration) -> LogLimiter {
        LogLimiter {
            what,
            interval,
            max,
            started: Instant::now(),
            logged: 0,
            suppressed: 0,
        }
    }

    /// Whether this one may be logged now.
    pub fn allow(&mut self) -> bool {
        if self.started.elapsed() >= self.interval {
            if self.suppressed > 0 {
                warn!(
                    count = self.suppressed,
                    kind = self.what,
                    "More such sales than logged one by one (see the counters)."
                );
            }
            self.started = Instant::now();
            self.logged = 0;
            self.suppressed = 0;
        }
        if self.logged < self.max {
            self.logged += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}
