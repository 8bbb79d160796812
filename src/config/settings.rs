//! The settings as given: flags, environment and the TOML file, all optional and all strings,
//! layered field by field; [`super::Config`] validates them.

use serde::Deserialize;
use std::path::PathBuf;

/// Settings as given by flags, environment or the TOML file (all optional, all strings).
/// One struct serves clap and serde so the two can never drift apart.
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// MongoDB connection string (secret).
    #[arg(long, env = "MONGODB_URI", hide_env_values = true, global = true)]
    pub mongodb_uri: Option<String>,
    /// File holding the MongoDB connection string (one line, at most 64 KiB).
    #[arg(long, env = "MONGODB_URI_FILE", global = true)]
    pub mongodb_uri_file: Option<PathBuf>,
    /// Slack incoming-webhook URL (secret); without it reports print to stdout.
    #[arg(long, env = "SLACK_WEBHOOK_URL", hide_env_values = true, global = true)]
    pub slack_webhook_url: Option<String>,
    /// File holding the Slack webhook URL (one line, at most 64 KiB).
    #[arg(long, env = "SLACK_WEBHOOK_URL_FILE", global = true)]
    pub slack_webhook_url_file: Option<PathBuf>,
    /// Database name [default: the connection string's database].
    #[arg(long, env = "POWER_REVENUE_DATABASE", global = true)]
    pub database: Option<String>,
    /// Collection of sales [default: power_transaction_items].
    #[arg(long, env = "POWER_REVENUE_COLLECTION", global = true)]
    pub collection: Option<String>,
    /// Window length, dividing 24 h (6h, 1h, 10m, 20s; at most 24h) [default: 6h].
    #[arg(long, env = "POWER_REVENUE_WINDOW", global = true)]
    pub window: Option<String>,
    /// Wait after a window ends before closing it; shorter than the window [default: 1m, or half
    /// the window if that is shorter].
    #[arg(long, env = "POWER_REVENUE_GRACE", global = true)]
    pub grace: Option<String>,
    /// IANA time zone whose midnight windows align to [default: UTC].
    #[arg(long, env = "POWER_REVENUE_TIMEZONE", global = true)]
    pub timezone: Option<String>,
    /// sled state directory, created 0700; refused if others may write to it [default: ./state].
    #[arg(long, env = "POWER_REVENUE_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// Field holding the sale time (a BSON date) [default: createdAt].
    #[arg(long, env = "POWER_REVENUE_TIME_FIELD", global = true)]
    pub time_field: Option<String>,
    /// Field holding the amount [default: amount].
    #[arg(long, env = "POWER_REVENUE_AMOUNT_FIELD", global = true)]
    pub amount_field: Option<String>,
    /// Field holding the utility [default: utility].
    #[arg(long, env = "POWER_REVENUE_UTILITY_FIELD", global = true)]
    pub utility_field: Option<String>,
    /// Field holding the status [default: status].
    #[arg(long, env = "POWER_REVENUE_STATUS_FIELD", global = true)]
    pub status_field: Option<String>,
    /// Status value of a completed sale [default: fulfilled].
    #[arg(long, env = "POWER_REVENUE_FULFILLED_STATUS", global = true)]
    pub fulfilled_status: Option<String>,
    /// Oldest missed window reported after downtime; at most 366d [default: 1d].
    #[arg(long, env = "POWER_REVENUE_MAX_CATCHUP", global = true)]
    pub max_catchup: Option<String>,
    /// Reported windows this recent are corrected when their sales change later; at most 366d
    /// [default: 7d].
    #[arg(long, env = "POWER_REVENUE_RESTATE_HORIZON", global = true)]
    pub restate_horizon: Option<String>,
    /// How long closed windows' records, ledger figures and summaries are kept; at least the
    /// restatement horizon and a week plus a summary period, at most 10y [default: 90d].
    #[arg(long, env = "POWER_REVENUE_RETENTION", global = true)]
    pub retention: Option<String>,
    /// Sales dated further ahead than this are skipped as `time_in_future`; at most 366d
    /// [default: 1d].
    #[arg(long, env = "POWER_REVENUE_MAX_FUTURE", global = true)]
    pub max_future: Option<String>,
    /// Alert in Slack when the change stream has been down this long; at most 7d [default: 5m].
    #[arg(long, env = "POWER_REVENUE_ALERT_STREAM_DOWN", global = true)]
    pub alert_stream_down: Option<String>,
    /// Longest a window's `$facet` may run on the server before it stops it (`maxTimeMS`);
    /// the query is then retried [default: 5m, at least 1s, at most 1d].
    #[arg(long, env = "POWER_REVENUE_QUERY_TIMEOUT", global = true)]
    pub query_timeout: Option<String>,
    /// Address of the HTTP listener (API, metrics, dashboard) [default: 127.0.0.1:9464].
    #[arg(long, env = "POWER_REVENUE_HTTP_ADDR", global = true)]
    pub http_addr: Option<String>,
    /// Bearer token required on every HTTP route but /healthz (secret; not empty) [default: none].
    #[arg(
        long,
        env = "POWER_REVENUE_API_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub api_token: Option<String>,
    /// File holding the API token (one line, at most 64 KiB).
    #[arg(long, env = "POWER_REVENUE_API_TOKEN_FILE", global = true)]
    pub api_token_file: Option<PathBuf>,
    /// Alert when a utility that usually sells has sold nothing this long (1s to 1d), or `off`
    /// [default: 30m].
    #[arg(long, env = "POWER_REVENUE_SILENCE", global = true)]
    pub silence: Option<String>,
    /// Only utilities averaging at least this many sales per silence period at this time of
    /// day (over the last 7 days) are watched; 1 to 1000000 [default: 5].
    #[arg(long, env = "POWER_REVENUE_SILENCE_MIN_SALES", global = true)]
    pub silence_min_sales: Option<String>,
    /// One summary per period, after its last window's report: a multiple of the window that
    /// divides 24 h (1d, 12h…), or `off` [default: 1d].
    #[arg(long, env = "POWER_REVENUE_SUMMARY", global = true)]
    pub summary: Option<String>,
}

impl Settings {
    /// `self` wins over `lower` field by field.
    pub fn over(self, lower: Settings) -> Settings {
        Settings {
            mongodb_uri: self.mongodb_uri.or(lower.mongodb_uri),
            mongodb_uri_file: self.mongodb_uri_file.or(lower.mongodb_uri_file),
            slack_webhook_url: self.slack_webhook_url.or(lower.slack_webhook_url),
            slack_webhook_url_file: self.slack_webhook_url_file.or(lower.slack_webhook_url_file),
            database: self.database.or(lower.database),
            collection: self.collection.or(lower.collection),
            window: self.window.or(lower.window),
            grace: self.grace.or(lower.grace),
            timezone: self.timezone.or(lower.timezone),
            state_dir: self.state_dir.or(lower.state_dir),
            time_field: self.time_field.or(lower.time_field),
            amount_field: self.amount_field.or(lower.amount_field),
            utility_field: self.utility_field.or(lower.utility_field),
            status_field: self.status_field.or(lower.status_field),
            fulfilled_status: self.fulfilled_status.or(lower.fulfilled_status),
            max_catchup: self.max_catchup.or(lower.max_catchup),
            restate_horizon: self.restate_horizon.or(lower.restate_horizon),
            retention: self.retention.or(lower.retention),
            max_future: self.max_future.or(lower.max_future),
            alert_stream_down: self.alert_stream_down.or(lower.alert_stream_down),
            query_timeout: self.query_timeout.or(lower.query_timeout),
            http_addr: self.http_addr.or(lower.http_addr),
            api_token: self.api_token.or(lower.api_token),
            api_token_file: self.api_token_file.or(lower.api_token_file),
            silence: self.silence.or(lower.silence),
            silence_min_sales: self.silence_min_sales.or(lower.silence_min_sales),
            summary: self.summary.or(lower.summary),
        }
    }
}
