//! Logs and metrics. Logs: `tracing` to stderr, filtered by `RUST_LOG` (default `info`); stdout
//! is kept for reports and command output. Metrics: the `metrics` facade with a Prometheus
//! recorder, rendered at `/metrics`; every name is `power_revenue_<name>_<unit>[_total]`, and
//! every metric is listed once in [`METRICS`] with its `# HELP` text.

use metrics::Unit;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

pub(crate) const EVENTS_APPLIED_TOTAL: &str = "power_revenue_events_applied_total";
pub(crate) const EVENTS_SKIPPED_TOTAL: &str = "power_revenue_events_skipped_total";
pub(crate) const EVENTS_LATE_TOTAL: &str = "power_revenue_events_late_total";
pub(crate) const CHECKPOINTS_TOTAL: &str = "power_revenue_checkpoint_writes_total";
pub(crate) const CHECKPOINT_SECONDS: &str = "power_revenue_checkpoint_duration_seconds";
pub(crate) const RECONNECTS_TOTAL: &str = "power_revenue_stream_reconnects_total";
pub(crate) const STREAM_CONNECTED: &str = "power_revenue_stream_connected_bool";
pub(crate) const LAG_SECONDS: &str = "power_revenue_stream_lag_seconds";
pub(crate) const TOKEN_AGE_SECONDS: &str = "power_revenue_resume_token_age_seconds";
pub(crate) const OPLOG_HEADROOM_SECONDS: &str = "power_revenue_oplog_headroom_seconds";
pub(crate) const REPORTS_POSTED_TOTAL: &str = "power_revenue_reports_posted_total";
pub(crate) const REPORTS_FAILED_TOTAL: &str = "power_revenue_report_post_failures_total";
pub(crate) const MISMATCHES_TOTAL: &str = "power_revenue_reconciliation_mismatches_total";
pub(crate) const COMPARISON_FAILURES_TOTAL: &str = "power_revenue_comparison_query_failures_total";
pub(crate) const IMPORTED_WINDOWS_TOTAL: &str = "power_revenue_ledger_imports_total";
pub(crate) const SALES_READ_TOTAL: &str = "power_revenue_query_sales_read_total";
pub(crate) const RECHECK_QUERIES_TOTAL: &str = "power_revenue_recheck_queries_total";
pub(crate) const CORRECTIONS_TOTAL: &str = "power_revenue_corrections_posted_total";
pub(crate) const CHANGES_UNREPORTED_TOTAL: &str = "power_revenue_changes_unreported_total";
pub(crate) const CHANGES_BEYOND_HORIZON_TOTAL: &str = "power_revenue_changes_beyond_horizon_total";
pub(crate) const SLACK_SECONDS: &str = "power_revenue_slack_post_duration_seconds";
pub(crate) const SILENT_UTILITIES: &str = "power_revenue_silent_utilities";
pub(crate) const SILENCE_ALERTS_TOTAL: &str = "power_revenue_silence_alerts_total";
pub(crate) const SILENCE_RESUMED_TOTAL: &str = "power_revenue_silence_resumed_total";
pub(crate) const IMPORT_FAILURES_TOTAL: &str = "power_revenue_history_import_failures_total";
pub(crate) const SUMMARIES_POSTED_TOTAL: &str = "power_revenue_summaries_posted_total";
/// `summaries_`, not `summary_`: promtool refuses a name with a metric type (`summary`) in it.
pub(crate) const SUMMARY_QUERY_FAILURES_TOTAL: &str =
    "power_revenue_summaries_query_failures_total";

/// What a metric is: its `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric: its name, `# TYPE`, unit, label names and `# HELP` text.
struct Metric {
    name: &'static str,
    kind: Kind,
    unit: Option<Unit>,
    labels: &'static [&'static str],
    help: &'static str,
}

/// Every metric. Described when the recorder is installed, so a metric has its HELP line from
/// its first sample on; counters and histograms without labels are also registered then, so
/// they are scraped (at 0) before their first event. Labelled series and the gauges that are
/// only known later (token age, oplog headroom) appear when first set.
const METRICS: &[Metric] = &[
    Metric {
        name: EVENTS_APPLIED_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Change events applied to a window's totals.",
    },
    Metric {
        name: EVENTS_SKIPPED_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &["reason"],
        help: "Fulfilled sales not counted, by reason (amount_unparseable, time_not_date, ...).",
    },
    Metric {
        name: EVENTS_LATE_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Changes to windows already closed (late, refunded, edited, moved or deleted sales).",
    },
    Metric {
        name: CHECKPOINTS_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Checkpoints (resume token and open windows) written to the state directory.",
    },
    Metric {
        name: CHECKPOINT_SECONDS,
        kind: Kind::Histogram,
        unit: Some(Unit::Seconds),
        labels: &[],
        help: "Time to write and flush one checkpoint.",
    },
    Metric {
        name: RECONNECTS_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Times the change stream was reopened after an error.",
    },
    Metric {
        name: STREAM_CONNECTED,
        kind: Kind::Gauge,
        unit: None,
        labels: &[],
        help: "1 while the change stream is open, else 0.",
    },
    Metric {
        name: LAG_SECONDS,
        kind: Kind::Gauge,
        unit: Some(Unit::Seconds),
        labels: &[],
        help: "How far behind its commit time the last applied sale was applied.",
    },
    Metric {
        name: TOKEN_AGE_SECONDS,
        kind: Kind::Gauge,
        unit: Some(Unit::Seconds),
        labels: &[],
        help: "Age of the last durable checkpoint of the resume token.",
    },
    Metric {
        name: OPLOG_HEADROOM_SECONDS,
        kind: Kind::Gauge,
        unit: Some(Unit::Seconds),
        labels: &[],
        help: "How much older than the resume position the oldest oplog entry is (where the server exposes its oplog).",
    },
    Metric {
        name: REPORTS_POSTED_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Reports accepted by Slack (all their parts).",
    },
    Metric {
        name: REPORTS_FAILED_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &["kind"],
        help: "Failed Slack posts, by kind (retryable, permanent).",
    },
    Metric {
        name: MISMATCHES_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Closed windows whose streamed totals differed from the database's.",
    },
    Metric {
        name: COMPARISON_FAILURES_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Comparison queries (previous window, same window yesterday or last week) that failed after retries; the report said n/a.",
    },
    Metric {
        name: SALES_READ_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &["query"],
        help: "Counted sales the service's own queries read, by query (report: a closing window; recheck: a window whose sales changed; cited: a window the ledger lacked; import: the history before the first start). The change stream is not counted.",
    },
    Metric {
        name: IMPORTED_WINDOWS_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Windows a report or summary cited that the ledger lacked (never reported by this service), read from the database once and kept.",
    },
    Metric {
        name: RECHECK_QUERIES_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Reconciliation queries re-run for windows already reported, to restate them.",
    },
    Metric {
        name: CORRECTIONS_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Correction lines posted for windows already reported.",
    },
    Metric {
        name: CHANGES_UNREPORTED_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Changes to windows this service never reported (counted, not posted).",
    },
    Metric {
        name: CHANGES_BEYOND_HORIZON_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Changes to reported windows older than the restatement horizon (counted, not posted).",
    },
    Metric {
        name: SLACK_SECONDS,
        kind: Kind::Histogram,
        unit: Some(Unit::Seconds),
        labels: &[],
        help: "Time of one Slack webhook post.",
    },
    Metric {
        name: SILENT_UTILITIES,
        kind: Kind::Gauge,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Utilities that usually sell at this time of day and have sold nothing for POWER_REVENUE_SILENCE.",
    },
    Metric {
        name: SILENCE_ALERTS_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Silences alerted (one per utility, though utilities falling silent together share one post; held back by the rate limit: not counted).",
    },
    Metric {
        name: SILENCE_RESUMED_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Alerted silent utilities that sell again (one per utility, though those resuming together share one post).",
    },
    Metric {
        name: IMPORT_FAILURES_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "History import queries (a day of the week before the first start) that failed after retries; the import tries again with backoff, and silence baselines wait for it.",
    },
    Metric {
        name: SUMMARIES_POSTED_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Period summaries (POWER_REVENUE_SUMMARY) posted, every message accepted by Slack.",
    },
    Metric {
        name: SUMMARY_QUERY_FAILURES_TOTAL,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels: &[],
        help: "Period summaries whose preparation failed (the period's query failed or timed out); each is tried again later, with backoff.",
    },
];

/// HELP for every metric, and a first (zero) series for those without labels.
fn describe_all() {
    metrics::with_recorder(|recorder| {
        for m in METRICS {
            let (key, help) = (metrics::KeyName::from_const_str(m.name), m.help.into());
            match m.kind {
                Kind::Counter => recorder.describe_counter(key, m.unit, help),
                Kind::Gauge => recorder.describe_gauge(key, m.unit, help),
                Kind::Histogram => recorder.describe_histogram(key, m.unit, help),
            }
        }
    });
    for query in ReadBy::ALL {
        metrics::counter!(SALES_READ_TOTAL, "query" => query.as_str()).increment(0);
    }
    for m in METRICS.iter().filter(|m| m.labels.is_empty()) {
        match m.kind {
            Kind::Counter => metrics::counter!(m.name).increment(0),
            Kind::Histogram => drop(metrics::histogram!(m.name)),
            Kind::Gauge => {} // a gauge's 0 would be a claim; set when known
        }
    }
}

/// Which of the service's queries read sales ([`SALES_READ_TOTAL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadBy {
    /// A closing window's own `$facet`.
    Report,
    /// A reported window re-checked because its sales changed.
    Recheck,
    /// A window a message cites that the ledger lacked.
    Cited,
    /// The history import.
    Import,
}

impl ReadBy {
    const ALL: [ReadBy; 4] = [Self::Report, Self::Recheck, Self::Cited, Self::Import];

    fn as_str(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Recheck => "recheck",
            Self::Cited => "cited",
            Self::Import => "import",
        }
    }

    /// Counts `sales` read by this query.
    pub(crate) fn read(self, sales: u64) {
        metrics::counter!(SALES_READ_TOTAL, "query" => self.as_str()).increment(sales);
    }
}

pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,mongodb=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The process-wide Prometheus recorder, installed on first use.
pub(crate) fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            .expect("static, non-empty buckets")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first (a test harness); then this
        // handle renders nothing, which the metrics test would notice.
        let _ = metrics::set_global_recorder(recorder);
        describe_all();
        handle
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `power_revenue_<name>_<unit>[_total]`: counters end in `_total`, the rest in a unit.
    #[test]
    fn every_metric_is_named_by_the_convention_once() {
        let mut names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len(), "a metric is listed twice");
        for m in METRICS {
            let name = m.name;
            assert!(name.starts_with("power_revenue_"), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            match m.kind {
                Kind::Counter => assert!(name.ends_with("_total"), "{name}"),
                // A gauge counting things is named for them, in the plural.
                Kind::Gauge | Kind::Histogram => assert!(
                    ["_seconds", "_bool", "_utilities"]
                        .iter()
                        .any(|u| name.ends_with(u)),
                    "{name}"
                ),
            }
            assert!(m.help.ends_with('.') && !m.help.contains('\n'), "{name}");
        }
    }
}
