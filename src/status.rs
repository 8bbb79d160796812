//! The status view: checkpoint age, open windows with running totals, last report, pending
//! reports. Built from the store (and the live state when the service runs); printed by
//! `power-revenue status`, served as JSON at `/api/v1/status`. Never contains a secret. The
//! JSON carries utility names as stored (data); the text shows them through
//! [`crate::display`], so no name can steer the operator's terminal.

use crate::display;
use crate::money::format_naira;
use crate::report::transactions;
use crate::setup::RestatementMode;
use crate::source::Live;
use crate::store::{DeliveryStatus, ReportRecord, Stage, Store, StoreError};
use crate::window::{OpenWindow, Tally, Window, WindowId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusView {
    pub running: bool,
    /// Where sales are read from: the URI with its password redacted, database.collection.
    #[serde(default)]
    pub source: Option<String>,
    pub checkpoint_saved_at: Option<DateTime<Utc>>,
    pub checkpoint_age_secs: Option<i64>,
    pub has_resume_token: bool,
    pub next_window_to_close: Option<Window>,
    pub open_windows: Vec<WindowView>,
    pub last_reported: Option<ReportStatus>,
    pub pending_reports: Vec<ReportStatus>,
    pub undeliverable_reports: Vec<ReportStatus>,
    /// Changes to closed windows (late, refunded, deleted, edited, moved sales: how many, and
    /// the stream's estimate of the revenue moved) that the next report will check.
    pub late_awaiting_report: Vec<(WindowId, Tally)>,
    pub restatements: Restatements,
    pub counters: Option<Counters>,
}

/// How sales that change after their report reach later reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restatements {
    /// `pre_images` or `recheck`; `None` while the service is not running.
    pub mode: Option<RestatementMode>,
    /// Reported windows ending within this many seconds are corrected.
    pub horizon_secs: u64,
    /// Changes whose window is unknown (no pre-image): the next report re-checks every
    /// reported window within the horizon.
    pub unknown_window_changes_awaiting_report: u64,
    /// Back-dated sales and other changes to windows this service never reported (counted,
    /// not posted: there is no report to correct).
    pub unreported_windows: Tally,
    /// Changes to reported windows older than the horizon (counted and logged, not posted).
    pub beyond_horizon: Tally,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowView {
    pub window: Window,
    pub total: Tally,
    pub by_utility: Vec<(String, Tally)>,
    pub events_applied: u64,
    pub partial: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportStatus {
    pub window: Window,
    pub delivery: DeliveryStatus,
    /// What its posts add up to: the database's figures (as last re-checked after late
    /// sales), else the stream's.
    pub total: Option<Tally>,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Sales that arrived after the window closed…
    pub late: Tally,
    /// …of which the next report will carry these.
    pub late_not_yet_reported: Tally,
    pub recomputed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Counters {
    pub stream_connected: bool,
    pub events_applied: u64,
    pub events_skipped: u64,
    pub skipped_by_reason: std::collections::BTreeMap<String, u64>,
    pub events_late: u64,
    pub reconnects: u64,
    pub checkpoints: u64,
}

impl StatusView {
    pub fn build(
        store: &Store,
        live: Option<&Live>,
        horizon: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<StatusView, StoreError> {
        let cp = store.load_checkpoint()?;
        let open = match live {
            Some(l) => l.snapshot(),
            None => cp.as_ref().map(|c| c.open.clone()).unwrap_or_default(),
        };
        let reports = store.reports()?;
        let late = store.late()?;
        let unsettled = store.unsettled_late()?;
        let view = |r: &ReportRecord| ReportStatus {
            window: r.window,
            delivery: r.status(),
            total: Some(r.reported().total()),
            attempts: r.attempts,
            last_error: r.last_error.clone(),
            late: late.get(&r.window.id()).copied().unwrap_or_default(),
            late_not_yet_reported: unsettled.get(&r.window.id()).copied().unwrap_or_default(),
            recomputed: r.recomputed,
        };
        Ok(StatusView {
            running: live.is_some(),
            source: None,
            checkpoint_saved_at: cp.as_ref().map(|c| c.saved_at),
            checkpoint_age_secs: cp.as_ref().map(|c| (now - c.saved_at).num_seconds()),
            has_resume_token: cp.as_ref().is_some_and(|c| c.token.is_some()),
            next_window_to_close: cp.as_ref().map(|c| c.next_close),
            open_windows: open.iter().map(window_view).collect(),
            last_reported: reports
                .iter()
                .rev()
                .find(|r| r.stage() == Stage::Sent)
                .map(view),
            pending_reports: reports
                .iter()
                .filter(|r| r.is_pending())
                .map(view)
                .collect(),
            undeliverable_reports: reports
                .iter()
                .filter(|r| r.stage() == Stage::Undeliverable)
                .map(view)
                .collect(),
            late_awaiting_report: unsettled.clone().into_iter().collect(),
            restatements: {
                let (any_seen, any_settled) = store.changes_anywhere()?;
                let unposted = store.unposted()?;
                Restatements {
                    mode: live.and_then(|l| {
                        *l.restatement_mode
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                    }),
                    horizon_secs: horizon.as_secs(),
                    unknown_window_changes_awaiting_report: any_seen
                        .count
                        .saturating_sub(any_settled.count),
                    unreported_windows: unposted.unreported,
                    beyond_horizon: unposted.beyond_horizon,
                }
            },
            counters: live.map(|l| Counters {
                stream_connected: l.connected.load(Relaxed),
                events_applied: l.events_applied.load(Relaxed),
                events_skipped: l.events_skipped.load(Relaxed),
                skipped_by_reason: l.skipped_by_reason(),
                events_late: l.events_late.load(Relaxed),
                reconnects: l.reconnects.load(Relaxed),
                checkpoints: l.checkpoints.load(Relaxed),
            }),
        })
    }

    /// Human-readable form for the terminal.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Service: {}",
            if self.running {
                "running"
            } else {
                "not running (read from the state directory)"
            }
        );
        if let Some(source) = &self.source {
            let _ = writeln!(s, "Source: {source}");
        }
        match (self.checkpoint_saved_at, self.checkpoint_age_secs) {
            (Some(at), Some(age)) => {
                let _ = writeln!(
                    s,
                    "Checkpoint: saved {} ({age} s ago); resume token {}",
                    at.to_rfc3339(),
                    if self.has_resume_token {
                        "saved"
                    } else {
                        "not yet saved"
                    }
                );
            }
            _ => {
                let _ = writeln!(s, "Checkpoint: none yet");
            }
        }
        if let Some(c) = &self.counters {
            let _ = writeln!(
                s,
                "Stream: {}; {} applied, {} skipped, {} late, {} reconnects, {} checkpoints",
                if c.stream_connected {
                    "connected"
                } else {
                    "disconnected"
                },
                c.events_applied,
                c.events_skipped,
                c.events_late,
                c.reconnects,
                c.checkpoints
            );
        }
        let _ = writeln!(s, "Open windows: {}", self.open_windows.len());
        for w in &self.open_windows {
            let _ = writeln!(
                s,
                "  {} – {}: {} ({}){}",
                w.window.start.to_rfc3339(),
                w.window.end.to_rfc3339(),
                format_naira(w.total.revenue),
                transactions(w.total.count),
                if w.partial {
                    ", live totals began mid-window"
                } else {
                    ""
                }
            );
            for (u, t) in &w.by_utility {
                let _ = writeln!(
                    s,
                    "    • {}: {} ({})",
                    display::utility_name(u),
                    format_naira(t.revenue),
                    transactions(t.count)
                );
            }
        }
        match &self.last_reported {
            Some(r) => {
                let _ = writeln!(
                    s,
                    "Last reported window: {}{}",
                    r.window.start.to_rfc3339(),
                    total_text(r)
                );
            }
            None => {
                let _ = writeln!(s, "Last reported window: none yet");
            }
        }
        let _ = writeln!(s, "Pending reports: {}", self.pending_reports.len());
        for r in &self.pending_reports {
            // Error texts can quote a server's answer: escaped, like the names.
            let err = r
                .last_error
                .as_deref()
                .map(|e| format!(", last error: {}", display::escaped(e)))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  {} ({} attempts{err})",
                r.window.start.to_rfc3339(),
                r.attempts
            );
        }
        for (id, t) in &self.late_awaiting_report {
            let _ = writeln!(
                s,
                "Changes to window {id}: {} (stream's estimate {}), checked by the next report",
                t.count,
                format_naira(t.revenue),
            );
        }
        let r = &self.restatements;
        let _ = writeln!(
            s,
            "Restatements: {}; horizon {} days",
            r.mode
                .map_or("unknown (service not running)", RestatementMode::describe),
            r.horizon_secs / 86_400
        );
        if r.unknown_window_changes_awaiting_report > 0 {
            let _ = writeln!(
                s,
                "  {} changes of unknown window: the next report re-checks every reported window in the horizon",
                r.unknown_window_changes_awaiting_report
            );
        }
        for (what, t) in [
            ("windows never reported (not posted)", r.unreported_windows),
            ("windows beyond the horizon (not posted)", r.beyond_horizon),
        ] {
            if t.count > 0 {
                let _ = writeln!(s, "  Changes to {what}: {}", t.count);
            }
        }
        if !self.undeliverable_reports.is_empty() {
            let _ = writeln!(
                s,
                "Undeliverable reports: {}",
                self.undeliverable_reports.len()
            );
            for r in &self.undeliverable_reports {
                let _ = writeln!(
                    s,
                    "  {}: {}",
                    r.window.start.to_rfc3339(),
                    display::escaped(r.last_error.as_deref().unwrap_or("?"))
                );
            }
        }
        s
    }
}

fn total_text(r: &ReportStatus) -> String {
    r.total
        .map(|t| format!(": {} ({})", format_naira(t.revenue), transactions(t.count)))
        .unwrap_or_default()
}

fn window_view(w: &OpenWindow) -> WindowView {
    WindowView {
        window: w.window,
        total: w.totals.total(),
        by_utility: w
            .totals
            .ranked()
            .into_iter()
            .map(|(u, t)| (u.to_owned(), t))
            .collect(),
        events_applied: w.events_applied,
        partial: w.is_partial(),
    }
}
