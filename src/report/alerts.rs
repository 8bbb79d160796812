//! The wording of alerts (see [`crate::alert`], which sends them): the workers say what
//! happened as an [`Alert`], this module alone says it to people. Built from our own values
//! and error texts, never from a secret; utility names are data, made inert and escaped for
//! Slack ([`super::display_name`]).

use crate::window::WindowId;
use chrono::{DateTime, Utc};
use std::fmt;
use std::time::Duration;

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
    /// Slack refused a period's summary for good (its content: blocks, length), even as text.
    SummaryUndeliverable { period: WindowId, error: String },
    /// `utility` (the stored name) has sold nothing for `silent_for`, where it usually makes
    /// `usual_sales` sales per `period` at this time of day.
    Silent {
        utility: String,
        silent_for: Duration,
        usual_sales: u64,
        period: Duration,
    },
    /// A silent utility that was alerted sells again, after `lasted` without a sale.
    Resumed { utility: String, lasted: Duration },
}

/// Alerts of one kind are sent at most once per interval (see [`crate::alert`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    StreamDown,
    ReconcileFailed,
    HistoryLost,
    Undeliverable,
    /// Its own kind: a refused report must not hold back the alert of a refused summary.
    SummaryUndeliverable,
    CatchUpLimited,
    Silent,
    Resumed,
}

impl Alert {
    pub fn kind(&self) -> AlertKind {
        match self {
            Self::StreamDown { .. } => AlertKind::StreamDown,
            Self::HistoryLost { .. } => AlertKind::HistoryLost,
            Self::CatchUpLimited { .. } => AlertKind::CatchUpLimited,
            Self::ReconcileFailed { .. } => AlertKind::ReconcileFailed,
            Self::Undeliverable { .. } => AlertKind::Undeliverable,
            Self::SummaryUndeliverable { .. } => AlertKind::SummaryUndeliverable,
            Self::Silent { .. } => AlertKind::Silent,
            Self::Resumed { .. } => AlertKind::Resumed,
        }
    }

    /// The utility an alert is about, for alerts that are per utility.
    pub fn utility(&self) -> Option<&str> {
        match self {
            Self::Silent { utility, .. } | Self::Resumed { utility, .. } => Some(utility),
            _ => None,
        }
    }
}

/// `30m`, `1h 5m`, `45s`: whole seconds, as the settings are written.
fn span(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_secs(d.as_secs()))
}

/// The message as posted: "🚨 power-revenue: …", and for utilities "🔕 IKEDC: no sales for
/// 30m (usually 42 in 30m at this hour)", "🔔 IKEDC: sales resumed after 47m 12s of silence".
impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Silent {
                utility,
                silent_for,
                usual_sales,
                period,
            } => {
                return write!(
                    f,
                    "🔕 {}: no sales for {} (usually {usual_sales} in {} at this hour)",
                    super::display_name(utility),
                    span(*silent_for),
                    span(*period)
                )
            }
            Self::Resumed { utility, lasted } => {
                return write!(
                    f,
                    "🔔 {}: sales resumed after {} of silence",
                    super::display_name(utility),
                    span(*lasted)
                )
            }
            _ => {}
        }
        f.write_str("🚨 power-revenue: ")?;
        match self {
            Self::Silent { .. } | Self::Resumed { .. } => Ok(()),
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
            Self::SummaryUndeliverable { period, error } => write!(
                f,
                "Slack refused the summary for period {period}: {error}; it will not be posted"
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
            (
                Alert::SummaryUndeliverable {
                    period: window,
                    error: "400 invalid_blocks".into(),
                },
                &format!("Slack refused the summary for period {window}: 400 invalid_blocks; it will not be posted"),
            ),
        ];
        for (alert, text) in cases {
            assert_eq!(alert.to_string(), format!("🚨 power-revenue: {text}"));
        }
    }

    #[test]
    fn silence_alerts_name_the_utility_and_the_spans() {
        let silent = Alert::Silent {
            utility: "IKEDC".into(),
            silent_for: Duration::from_millis(1_800_900),
            usual_sales: 42,
            period: Duration::from_secs(1800),
        };
        assert_eq!(
            silent.to_string(),
            "🔕 IKEDC: no sales for 30m (usually 42 in 30m at this hour)"
        );
        let resumed = Alert::Resumed {
            utility: "IKEDC".into(),
            lasted: Duration::from_secs(2832),
        };
        assert_eq!(
            resumed.to_string(),
            "🔔 IKEDC: sales resumed after 47m 12s of silence"
        );
    }

    #[test]
    fn hostile_names_in_silence_alerts_are_inert() {
        for name in [
            "<!channel> x",
            "A\nFORGED: 1",
            "\u{1b}]0;PWNED\u{7}",
            "<@U123>&",
        ] {
            let name = name.to_owned();
            for alert in [
                Alert::Silent {
                    utility: name.clone(),
                    silent_for: Duration::from_secs(60),
                    usual_sales: 5,
                    period: Duration::from_secs(60),
                },
                Alert::Resumed {
                    utility: name.clone(),
                    lasted: Duration::from_secs(60),
                },
            ] {
                let text = alert.to_string();
                assert!(!text.contains('<') && !text.contains('>'), "{text}");
                assert!(!text.chars().any(crate::display::is_hidden), "{text:?}");
            }
        }
    }
}
