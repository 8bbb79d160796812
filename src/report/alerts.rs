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
    /// Utilities fallen silent together (one step of the watcher): each has sold nothing for
    /// its `silent_for`, where it usually makes `usual_sales` sales per `period` at this time
    /// of day. One post however many there are, so an upstream outage is one message.
    Silent {
        silences: Vec<Silenced>,
        period: Duration,
    },
    /// Alerted silent utilities that sell again (one step of the watcher), in one post.
    Resumed { resumptions: Vec<Resumption> },
    /// Alerted silent utilities no longer watched (one step of the watcher): their average
    /// fell below `min_sales` per `period` at this time of day; each silence lasted `lasted`.
    Unwatched {
        endings: Vec<Resumption>,
        min_sales: u64,
        period: Duration,
    },
}

/// One silent utility in an [`Alert::Silent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silenced {
    /// The stored name.
    pub utility: String,
    /// How long it has sold nothing.
    pub silent_for: Duration,
    /// Its average sales per silence period at this time of day.
    pub usual_sales: u64,
}

/// One utility selling again in an [`Alert::Resumed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumption {
    /// The stored name.
    pub utility: String,
    /// How long its silence lasted.
    pub lasted: Duration,
}

/// A grouped alert names this many utilities at most, and counts the rest: a post stays
/// readable (and far below Slack's message size) however many utilities fall silent.
const MAX_NAMES: usize = 20;

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
    Unwatched,
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
            Self::Unwatched { .. } => AlertKind::Unwatched,
        }
    }
}

/// `30m`, `1h 5m`, `45s`: whole seconds, as the settings are written.
fn span(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_secs(d.as_secs()))
}

/// `, and 3 more` for the names left out of a grouped alert.
fn more(f: &mut fmt::Formatter<'_>, total: usize) -> fmt::Result {
    match total.checked_sub(MAX_NAMES) {
        Some(rest) if rest > 0 => write!(f, ", and {rest} more"),
        _ => Ok(()),
    }
}

/// The message as posted: "🚨 power-revenue: …", and for utilities "🔕 IKEDC: no sales for
/// 30m (usually 42 in 30m at this hour)", "🔔 IKEDC: sales resumed after 47m 12s of silence";
/// several at once "🔕 2 utilities: no sales for 30m — IKEDC (usually 42), EKEDC (usually
/// 30)" and "🔔 2 utilities: sales resumed — IKEDC after 47m 12s, EKEDC after 31m".
impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Silent { silences, period } => {
                return match silences.as_slice() {
                    [one] => write!(
                        f,
                        "🔕 {}: no sales for {} (usually {} in {} at this hour)",
                        super::display_name(&one.utility),
                        span(one.silent_for),
                        one.usual_sales,
                        span(*period)
                    ),
                    many => {
                        // Every one of them has been silent at least the shortest silence.
                        let shortest = many.iter().map(|s| s.silent_for.as_secs()).min();
                        let longest = many.iter().map(|s| s.silent_for.as_secs()).max();
                        let shortest = Duration::from_secs(shortest.unwrap_or_default());
                        let or_more = if longest > Some(shortest.as_secs()) {
                            " or more"
                        } else {
                            ""
                        };
                        write!(
                            f,
                            "🔕 {} utilities: no sales for {}{or_more} —",
                            many.len(),
                            span(shortest)
                        )?;
                        for (i, s) in many.iter().take(MAX_NAMES).enumerate() {
                            let sep = if i == 0 { " " } else { ", " };
                            write!(
                                f,
                                "{sep}{} (usually {})",
                                super::display_name(&s.utility),
                                s.usual_sales
                            )?;
                        }
                        more(f, many.len())
                    }
                };
            }
            Self::Resumed { resumptions } => {
                return match resumptions.as_slice() {
                    [one] => write!(
                        f,
                        "🔔 {}: sales resumed after {} of silence",
                        super::display_name(&one.utility),
                        span(one.lasted)
                    ),
                    many => {
                        write!(f, "🔔 {} utilities: sales resumed —", many.len())?;
                        for (i, r) in many.iter().take(MAX_NAMES).enumerate() {
                            let sep = if i == 0 { " " } else { ", " };
                            write!(
                                f,
                                "{sep}{} after {}",
                                super::display_name(&r.utility),
                                span(r.lasted)
                            )?;
                        }
                        more(f, many.len())
                    }
                };
            }
            Self::Unwatched {
                endings,
                min_sales,
                period,
            } => {
                let why = format!(
                    "no longer watched: now usually fewer than {min_sales} sales in {} at this hour",
                    span(*period)
                );
                return match endings.as_slice() {
                    [one] => write!(
                        f,
                        "ℹ️ {}: {why} (silent for {})",
                        super::display_name(&one.utility),
                        span(one.lasted)
                    ),
                    many => {
                        write!(f, "ℹ️ {} utilities: {why} —", many.len())?;
                        for (i, r) in many.iter().take(MAX_NAMES).enumerate() {
                            let sep = if i == 0 { " " } else { ", " };
                            write!(
                                f,
                                "{sep}{} (silent for {})",
                                super::display_name(&r.utility),
                                span(r.lasted)
                            )?;
                        }
                        more(f, many.len())
                    }
                };
            }
            _ => {}
        }
        f.write_str("🚨 power-revenue: ")?;
        match self {
            Self::Silent { .. } | Self::Resumed { .. } | Self::Unwatched { .. } => Ok(()),
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

    fn silenced(utility: &str, silent_ms: u64, usual_sales: u64) -> Silenced {
        Silenced {
            utility: utility.into(),
            silent_for: Duration::from_millis(silent_ms),
            usual_sales,
        }
    }

    fn resumption(utility: &str, lasted_secs: u64) -> Resumption {
        Resumption {
            utility: utility.into(),
            lasted: Duration::from_secs(lasted_secs),
        }
    }

    #[test]
    fn several_utilities_at_once_are_one_message() {
        let silent = Alert::Silent {
            silences: vec![
                silenced("IKEDC", 1_800_000, 42),
                silenced("EKEDC", 1_800_400, 30),
            ],
            period: Duration::from_secs(1800),
        };
        assert_eq!(
            silent.to_string(),
            "🔕 2 utilities: no sales for 30m — IKEDC (usually 42), EKEDC (usually 30)"
        );
        let longer = Alert::Silent {
            silences: vec![
                silenced("IKEDC", 1_800_000, 42),
                silenced("EKEDC", 2_700_000, 30),
            ],
            period: Duration::from_secs(1800),
        };
        assert!(longer
            .to_string()
            .starts_with("🔕 2 utilities: no sales for 30m or more — IKEDC"));
        let resumed = Alert::Resumed {
            resumptions: vec![resumption("IKEDC", 2832), resumption("EKEDC", 1860)],
        };
        assert_eq!(
            resumed.to_string(),
            "🔔 2 utilities: sales resumed — IKEDC after 47m 12s, EKEDC after 31m"
        );
    }

    #[test]
    fn a_grouped_alert_names_twenty_and_counts_the_rest() {
        let silences: Vec<Silenced> = (0..25)
            .map(|i| silenced(&format!("U{i:02}"), 1_800_000, 10))
            .collect();
        let text = Alert::Silent {
            silences,
            period: Duration::from_secs(1800),
        }
        .to_string();
        assert!(text.starts_with("🔕 25 utilities: no sales for 30m — U00 (usually 10), "));
        assert!(text.contains("U19 (usually 10), and 5 more"), "{text}");
        assert!(!text.contains("U20"), "{text}");
        let resumptions: Vec<Resumption> = (0..21)
            .map(|i| resumption(&format!("U{i:02}"), 60))
            .collect();
        let text = Alert::Resumed { resumptions }.to_string();
        assert!(text.ends_with("U19 after 1m, and 1 more"), "{text}");
    }

    #[test]
    fn silence_alerts_name_the_utility_and_the_spans() {
        let silent = Alert::Silent {
            silences: vec![silenced("IKEDC", 1_800_900, 42)],
            period: Duration::from_secs(1800),
        };
        assert_eq!(
            silent.to_string(),
            "🔕 IKEDC: no sales for 30m (usually 42 in 30m at this hour)"
        );
        let resumed = Alert::Resumed {
            resumptions: vec![resumption("IKEDC", 2832)],
        };
        assert_eq!(
            resumed.to_string(),
            "🔔 IKEDC: sales resumed after 47m 12s of silence"
        );
        let unwatched = Alert::Unwatched {
            endings: vec![resumption("IKEDC", 7200)],
            min_sales: 5,
            period: Duration::from_secs(1800),
        };
        assert_eq!(
            unwatched.to_string(),
            "ℹ️ IKEDC: no longer watched: now usually fewer than 5 sales in 30m at this hour (silent for 2h)"
        );
        let unwatched = Alert::Unwatched {
            endings: vec![resumption("IKEDC", 7200), resumption("<!here>", 60)],
            min_sales: 5,
            period: Duration::from_secs(1800),
        };
        assert_eq!(
            unwatched.to_string(),
            "ℹ️ 2 utilities: no longer watched: now usually fewer than 5 sales in 30m at this hour — IKEDC (silent for 2h), &lt;!here&gt; (silent for 1m)"
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
                    silences: vec![silenced(&name, 60_000, 5)],
                    period: Duration::from_secs(60),
                },
                Alert::Resumed {
                    resumptions: vec![resumption(&name, 60)],
                },
                Alert::Silent {
                    silences: vec![silenced(&name, 60_000, 5), silenced("IKEDC", 60_000, 5)],
                    period: Duration::from_secs(60),
                },
                Alert::Resumed {
                    resumptions: vec![resumption(&name, 60), resumption("IKEDC", 60)],
                },
            ] {
                let text = alert.to_string();
                assert!(!text.contains('<') && !text.contains('>'), "{text}");
                assert!(!text.chars().any(crate::display::is_hidden), "{text:?}");
            }
        }
    }
}
