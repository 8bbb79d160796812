//! Logs and metrics. Logs: `tracing` to stderr, filtered by `RUST_LOG` (default `info`); stdout
//! is kept for reports and command output. Metrics: the `metrics` facade with a Prometheus
//! recorder, rendered at `/metrics`; every name is `power_revenue_<name>_<unit>[_total]`.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

pub const EVENTS_APPLIED_TOTAL: &str = "power_revenue_events_applied_total";
pub const EVENTS_SKIPPED_TOTAL: &str = "power_revenue_events_skipped_total";
pub const EVENTS_LATE_TOTAL: &str = "power_revenue_events_late_total";
pub const CHECKPOINTS_TOTAL: &str = "power_revenue_checkpoint_writes_total";
pub const CHECKPOINT_SECONDS: &str = "power_revenue_checkpoint_duration_seconds";
pub const RECONNECTS_TOTAL: &str = "power_revenue_stream_reconnects_total";
pub const STREAM_CONNECTED: &str = "power_revenue_stream_connected_bool";
pub const LAG_SECONDS: &str = "power_revenue_stream_lag_seconds";
pub const TOKEN_AGE_SECONDS: &str = "power_revenue_resume_token_age_seconds";
pub const OPLOG_HEADROOM_SECONDS: &str = "power_revenue_oplog_headroom_seconds";
pub const REPORTS_POSTED_TOTAL: &str = "power_revenue_reports_posted_total";
pub const REPORTS_FAILED_TOTAL: &str = "power_revenue_report_post_failures_total";
pub const MISMATCHES_TOTAL: &str = "power_revenue_reconciliation_mismatches_total";
pub const RECHECK_QUERIES_TOTAL: &str = "power_revenue_recheck_queries_total";
pub const CORRECTIONS_TOTAL: &str = "power_revenue_corrections_posted_total";
pub const CHANGES_UNREPORTED_TOTAL: &str = "power_revenue_changes_unreported_total";
pub const CHANGES_BEYOND_HORIZON_TOTAL: &str = "power_revenue_changes_beyond_horizon_total";
pub const SLACK_SECONDS: &str = "power_revenue_slack_post_duration_seconds";

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
pub fn prometheus() -> &'static PrometheusHandle {
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
        handle
    })
}
