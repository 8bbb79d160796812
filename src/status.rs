//! The status as text for the terminal (`power-revenue status`). The shape itself, and its
//! JSON form (`status --json`, `/api/v1/status`), are [`crate::views::StatusView`]. Utility
//! names and error texts go through [`crate::display`], so no name can steer the operator's
//! terminal.

use crate::display;
use crate::money::format_naira;
use crate::report::transactions;
use crate::setup::RestatementMode;
use crate::store::DeliveryStatus;
use crate::views::{ReportStatus, StatusView};
use std::fmt::Write;

impl StatusView {
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
        for u in &self.silent {
            // `display` came over JSON from the service: made inert again, never trusted.
            let _ = writeln!(
                s,
                "Silent: {}: no sales for {} (usually {} per silence period at this hour)",
                display::utility_name(&u.utility),
                humantime::format_duration(std::time::Duration::from_secs(
                    u64::try_from(u.silent_for_secs).unwrap_or(0)
                )),
                u.usual_sales
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
                if w.open.partial {
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
        if let Some(summary) = &self.last_summary {
            let total = summary
                .total
                .map(|t| format!(", {} ({})", format_naira(t.revenue), transactions(t.count)))
                .unwrap_or_default();
            let state = match &summary.delivery {
                DeliveryStatus::Closed => "queued".to_owned(),
                DeliveryStatus::Ready => "posting".to_owned(),
                DeliveryStatus::Sent { at } => format!("sent {}", at.to_rfc3339()),
                DeliveryStatus::Undeliverable { reason } => {
                    format!("undeliverable: {}", display::escaped(reason))
                }
            };
            let _ = writeln!(
                s,
                "Last summary: {} – {}: {state}{total}",
                summary.period.start.to_rfc3339(),
                summary.period.end.to_rfc3339()
            );
        }
        let _ = writeln!(s, "Pending reports: {}", self.pending_reports.len());
        for r in &self.pending_reports {
            // Error texts can quote a server's answer: escaped, like the names.
            let err = r
                .record
                .last_error
                .as_deref()
                .map(|e| format!(", last error: {}", display::escaped(e)))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  {} ({} attempts{err})",
                r.window.start.to_rfc3339(),
                r.record.attempts
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
                    display::escaped(r.record.last_error.as_deref().unwrap_or("?"))
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
