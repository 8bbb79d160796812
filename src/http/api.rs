//! JSON shapes of the HTTP API (documented in the README; field names are stable) and the
//! gauges computed at scrape time.

use crate::config::Config;
use crate::source::Live;
use crate::store::{Delivery, ReportRecord};
use crate::telemetry;
use crate::window::{OpenWindow, Tally, Totals};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use std::sync::atomic::Ordering::Relaxed;

/// Readiness fails when the last checkpoint is older than this (an idle stream saves every
/// second, so this means the tailer is stuck or the disk is).
pub const MAX_CHECKPOINT_AGE_SECS: i64 = 60;
pub use crate::source::oplog::MIN_OPLOG_HEADROOM_SECS;

#[derive(Debug, Serialize)]
pub struct UtilityView {
    /// The name as stored (the totals key): data, exact.
    pub utility: String,
    /// The name as shown ([`crate::display::utility_name`]): what the dashboard prints.
    pub display: String,
    /// Naira, as a decimal string with 2 places ("1500.50").
    pub revenue: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct TotalsView {
    pub revenue: String,
    pub count: u64,
    /// Highest revenue first.
    pub by_utility: Vec<UtilityView>,
}

impl TotalsView {
    pub fn of(totals: &Totals) -> TotalsView {
        let total = totals.total();
        TotalsView {
            revenue: total.revenue.to_string(),
            count: total.count,
            by_utility: totals
                .ranked()
                .into_iter()
                .map(|(u, t): (&str, Tally)| UtilityView {
                    utility: u.to_owned(),
                    display: crate::display::utility_name(u).into_owned(),
                    revenue: t.revenue.to_string(),
                    count: t.count,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct OpenWindowView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub totals: TotalsView,
    pub events_applied: u64,
    pub last_event_at: Option<DateTime<Utc>>,
    /// The stream began after the window did (first start): totals cover only part of it.
    pub partial: bool,
}

/// `GET /api/v1/windows/current`.
#[derive(Debug, Serialize)]
pub struct CurrentView {
    pub time_zone: String,
    pub now: DateTime<Utc>,
    pub stream_connected: bool,
    /// When the last applied sale was committed in the database.
    pub last_event_at: Option<DateTime<Utc>>,
    /// How far behind the stream was at the last applied sale.
    pub lag_secs: f64,
    /// Open windows, oldest first (usually one: the current window).
    pub windows: Vec<OpenWindowView>,
}

impl CurrentView {
    pub fn build(live: &Live, config: &Config, now: DateTime<Utc>) -> CurrentView {
        let window = |w: OpenWindow| OpenWindowView {
            start: w.window.start,
            end: w.window.end,
            totals: TotalsView::of(&w.totals),
            events_applied: w.events_applied,
            last_event_at: w.last_event_at,
            partial: w.is_partial(),
        };
        CurrentView {
            time_zone: config.window.tz().name().to_owned(),
            now,
            stream_connected: live.connected.load(Relaxed),
            last_event_at: millis(live.last_event_ms.load(Relaxed)),
            lag_secs: live.lag_ms.load(Relaxed) as f64 / 1000.0,
            windows: live.snapshot().into_iter().map(window).collect(),
        }
    }
}

/// One element of `GET /api/v1/windows?last=N` (newest first).
#[derive(Debug, Serialize)]
pub struct ClosedWindowView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The database's figures (what the report posts); `null` until reconciled, or if the
    /// query failed.
    pub reconciled: Option<TotalsView>,
    /// The database's figures when a later report last re-checked the window for late sales
    /// (the report's figures plus the corrections posted since); `null` if never re-checked.
    pub rechecked: Option<TotalsView>,
    /// The live stream's figures at close.
    pub streamed: TotalsView,
    /// Whether the two agreed; `null` until reconciled.
    pub matched_stream: Option<bool>,
    pub recomputed: bool,
    /// `closed` | `ready` | `sent` | `undeliverable`.
    pub delivery: &'static str,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl ClosedWindowView {
    pub fn from_record(r: &ReportRecord) -> ClosedWindowView {
        let db = r.reconciled().and_then(|x| x.database());
        ClosedWindowView {
            start: r.window.start,
            end: r.window.end,
            reconciled: db.map(TotalsView::of),
            rechecked: r.rechecked.as_ref().map(TotalsView::of),
            streamed: TotalsView::of(&r.streamed),
            matched_stream: db.map(|d| *d == r.streamed),
            recomputed: r.recomputed,
            delivery: r.stage().as_str(),
            sent_at: match r.delivery() {
                Delivery::Sent(sent) => Some(sent.at),
                _ => None,
            },
            attempts: r.attempts,
            last_error: r.last_error.clone(),
        }
    }
}

/// `GET /readyz`: 200 when every check passes, else 503 with the failing ones.
#[derive(Debug, Serialize)]
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

fn millis(ms: i64) -> Option<DateTime<Utc>> {
    (ms > 0)
        .then(|| Utc.timestamp_millis_opt(ms).single())
        .flatten()
}
