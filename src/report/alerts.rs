//! The wording of error alerts (see [`crate::alert`], which sends them): the workers say what
//! happened as an [`Alert`], this module alone says it to people. Built from our own values
//! and error texts, never from a secret.

use crate::window::WindowId;
use chrono::{DateTime, Utc};
use std::fmt;

/// What went wrong, as facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// The change stream has been unavailable this long.
    StreamDown { down_secs: u64 },
    /// The stream could not resume (server `code`): open windows are rebuilt from the database.
    HistoryLost { code: i32 },
    /// Down since `down_since`: windows before `resume_at` are beyond the catch-up limit.
    CatchUpLimited {
        down_since: DateTime<Utc>,
        resume_at: DateTime<Utc>,
    },
    /// A window's reconciliation failed after retries (`error`): its report has stream totals.
    ReconcileFailed { window: WindowId, error: String },
    /// Slack refused a window's report for good.
    Undeliverable { window: WindowId, error: String },
}

/// Alerts of one kind are sent at most once per interval (see [`crate::alert`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    StreamDown,
    ReconcileFailed,
    HistoryLost,
    Undeliverable,
    CatchUpLimited,
}

impl Alert {
    pub fn kind(&self) -> AlertKind {
        match self {
            Self::StreamDown { .. } => AlertKind::StreamDown,
            Self::HistoryLost { .. } => AlertKind::HistoryLost,
            Self::CatchUpLimited { .. } => AlertKind::CatchUpLimited,
            Self::ReconcileFailed { .. } => AlertKind::ReconcileFailed,
            Self::Undeliverable { .. } => AlertKind::Undeliverable,
        }
    }
}

/// The message as posted: "🚨 power-revenue: …".
impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("🚨 power-revenue: ")?;
        match self {
            Self::StreamDown { down_secs } => write!(
                f,
                "the change stream has been down for {down_secs} s; retrying"
            ),
            Self::HistoryLost { code } => write!(
                f,
                "the change stream could not resume (code {code}, history lost); open windows are being recomputed from the database"
            ),
            Self::CatchUpLimited {
                down_since,
                resume_at,
            } => write!(
                f,
                "down since {}: windows before {} are beyond POWER_REVENUE_MAX_CATCHUP and will not be reported",
                down_since.to_rfc3339(),
                resume_at.to_rfc3339()
            ),
            Self::ReconcileFailed { window, error } => write!(
                f,
                "reconciliation of window {window} failed ({error}); its report shows the live stream totals"
            ),
            Self::Undeliverable { window, error } => write!(
                f,
                "the report for window {window} was refused by Slack: {error}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_keep_their_wording() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let window = WindowId(1_748_520_000_000);
        let cases = [
            (
                Alert::StreamDown { down_secs: 90 },
                "the change stream has been down for 90 s; retrying",
            ),
            (
                Alert::HistoryLost { code: 286 },
                "the change stream could not resume (code 286, history lost); open windows are being recomputed from the database",
            ),
            (
                Alert::CatchUpLimited {
                    down_since: at("2025-05-29T00:00:00Z"),
                    resume_at: at("2025-05-30T00:00:00Z"),
                },
                "down since 2025-05-29T00:00:00+00:00: windows before 2025-05-30T00:00:00+00:00 are beyond POWER_REVENUE_MAX_CATCHUP and will not be reported",
            ),
            (
                Alert::ReconcileFailed {
                    window,
                    error: "MongoDB: timed out".into(),
                },
                &format!("reconciliation of window {window} failed (MongoDB: timed out); its report shows the live stream totals"),
            ),
            (
                Alert::Undeliverable {
                    window,
                    error: "404 no_service".into(),
                },
                &format!("the report for window {window} was refused by Slack: 404 no_service"),
            ),
        ];
        for (alert, text) in cases {
            assert_eq!(alert.to_string(), format!("🚨 power-revenue: {text}"));
        }
    }
}
