//! Configuration: defaults < TOML file < environment < flags, validated into [`Config`]
//! before anything connects. Every error is one line saying what is wrong and what to do,
//! and never contains a secret.

use crate::window::WindowSpec;
use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Settings as given by flags, environment or the TOML file (all optional, all strings).
/// One struct serves clap and serde so the two can never drift apart.
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// MongoDB connection string (secret).
    #[arg(long, env = "MONGODB_URI", hide_env_values = true, global = true)]
    pub mongodb_uri: Option<String>,
    /// File holding the MongoDB connection string.
    #[arg(long, env = "MONGODB_URI_FILE", global = true)]
    pub mongodb_uri_file: Option<PathBuf>,
    /// Slack incoming-webhook URL (secret); without it reports print to stdout.
    #[arg(long, env = "SLACK_WEBHOOK_URL", hide_env_values = true, global = true)]
    pub slack_webhook_url: Option<String>,
    /// File holding the Slack webhook URL.
    #[arg(long, env = "SLACK_WEBHOOK_URL_FILE", global = true)]
    pub slack_webhook_url_file: Option<PathBuf>,
    /// Database name [default: the connection string's database].
    #[arg(long, env = "POWER_REVENUE_DATABASE", global = true)]
    pub database: Option<String>,
    /// Collection of sales [default: power_transaction_items].
    #[arg(long, env = "POWER_REVENUE_COLLECTION", global = true)]
    pub collection: Option<String>,
    /// Window length, dividing 24 h (6h, 1h, 10m, 20s) [default: 6h].
    #[arg(long, env = "POWER_REVENUE_WINDOW", global = true)]
    pub window: Option<String>,
    /// Wait after a window ends before closing it [default: 1m].
    #[arg(long, env = "POWER_REVENUE_GRACE", global = true)]
    pub grace: Option<String>,
    /// IANA time zone whose midnight windows align to [default: UTC].
    #[arg(long, env = "POWER_REVENUE_TIMEZONE", global = true)]
    pub timezone: Option<String>,
    /// sled state directory [default: ./state].
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
    /// Oldest missed window reported after downtime [default: 1d].
    #[arg(long, env = "POWER_REVENUE_MAX_CATCHUP", global = true)]
    pub max_catchup: Option<String>,
    /// Reported windows this recent are corrected when their sales change later [default: 7d].
    #[arg(long, env = "POWER_REVENUE_RESTATE_HORIZON", global = true)]
    pub restate_horizon: Option<String>,
    /// Sales dated further ahead than this are skipped as `time_in_future` [default: 1d].
    #[arg(long, env = "POWER_REVENUE_MAX_FUTURE", global = true)]
    pub max_future: Option<String>,
    /// Alert in Slack when the change stream has been down this long [default: 5m].
    #[arg(long, env = "POWER_REVENUE_ALERT_STREAM_DOWN", global = true)]
    pub alert_stream_down: Option<String>,
    /// Longest a window's `$facet` may run on the server before it stops it (`maxTimeMS`);
    /// the query is then retried [default: 5m, at least 1s, at most 1d].
    #[arg(long, env = "POWER_REVENUE_QUERY_TIMEOUT", global = true)]
    pub query_timeout: Option<String>,
    /// Address of the HTTP listener (API, metrics, dashboard) [default: 127.0.0.1:9464].
    #[arg(long, env = "POWER_REVENUE_HTTP_ADDR", global = true)]
    pub http_addr: Option<String>,
    /// Bearer token required on every HTTP route but /healthz (secret) [default: none].
    #[arg(
        long,
        env = "POWER_REVENUE_API_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub api_token: Option<String>,
    /// File holding the API token.
    #[arg(long, env = "POWER_REVENUE_API_TOKEN_FILE", global = true)]
    pub api_token_file: Option<PathBuf>,
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
            max_future: self.max_future.or(lower.max_future),
            alert_stream_down: self.alert_stream_down.or(lower.alert_stream_down),
            query_timeout: self.query_timeout.or(lower.query_timeout),
            http_addr: self.http_addr.or(lower.http_addr),
            api_token: self.api_token.or(lower.api_token),
            api_token_file: self.api_token_file.or(lower.api_token_file),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}; check --config / POWER_REVENUE_CONFIG")]
    File { path: PathBuf, reason: String },
    #[error("cannot read {var} ({path}): {reason}; point it at a readable file")]
    SecretFile {
        var: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{var} and {var}_FILE are both set; set only one")]
    Ambiguous { var: &'static str },
    #[error("MONGODB_URI is not set; set MONGODB_URI (or MONGODB_URI_FILE) to the cluster's connection string")]
    MissingUri,
    #[error("MONGODB_URI is not a valid MongoDB connection string ({reason}); expected mongodb://user:pass@host:port/db?replicaSet=…")]
    BadUri { reason: String },
    #[error("no database given: add it to MONGODB_URI (mongodb://…/power) or set POWER_REVENUE_DATABASE")]
    MissingDatabase,
    #[error("SLACK_WEBHOOK_URL is not a valid URL; copy the incoming-webhook URL from Slack's app settings")]
    BadWebhookUrl,
    #[error(
        "SLACK_WEBHOOK_URL must use https (http only for loopback hosts), got {scheme}://{host}"
    )]
    InsecureWebhook { scheme: String, host: String },
    #[error("{name} = {value:?} is not a duration; use forms like 6h, 1m, 20s")]
    BadDuration { name: &'static str, value: String },
    #[error("POWER_REVENUE_WINDOW: {0}")]
    BadWindow(String),
    #[error("POWER_REVENUE_TIMEZONE = {0:?} is not an IANA time zone; use a name like UTC or Africa/Lagos")]
    BadTimezone(String),
    #[error(
        "POWER_REVENUE_HTTP_ADDR = {0:?} is not an address; use host:port like 127.0.0.1:9464"
    )]
    BadHttpAddr(String),
    #[error("{name} = {value:?} is too long; use at most {max}")]
    OutOfBounds {
        name: &'static str,
        value: String,
        max: String,
    },
    #[error("{name} = {value:?} is too short; use at least {min}")]
    TooShort {
        name: &'static str,
        value: String,
        min: &'static str,
    },
    #[error("{name} must not be empty")]
    Empty { name: &'static str },
}

/// Document field names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub time: String,
    pub amount: String,
    pub utility: String,
    pub status: String,
}

/// Where the sales live. The URI is secret; `redacted` is the printable form.
#[derive(Debug, Clone)]
pub struct MongoConfig {
    pub uri: SecretString,
    pub redacted: String,
    pub database: String,
    pub collection: String,
}

impl MongoConfig {
    /// For humans: `mongodb://ops:****@host/… power.power_transaction_items`.
    pub fn describe(&self) -> String {
        format!("{} {}.{}", self.redacted, self.database, self.collection)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    mongo: Result<MongoConfig, String>,
    pub fields: Fields,
    pub fulfilled_status: String,
    pub window: WindowSpec,
    pub grace: Duration,
    pub state_dir: PathBuf,
    pub slack_webhook: Option<SecretString>,
    pub http_addr: SocketAddr,
    pub api_token: Option<SecretString>,
    pub max_catchup: Duration,
    /// Reported windows ending within this long before now get corrections for later changes.
    pub restate_horizon: Duration,
    /// Sales dated more than this ahead of now are skipped.
    pub max_future: Duration,
    pub alert_stream_down: Duration,
    /// Server-side limit (`maxTimeMS`) on each window query.
    pub query_timeout: Duration,
}

impl Config {
    /// Reads the optional TOML file and validates everything.
    pub fn load(cli: Settings, file: Option<&Path>) -> Result<Config, ConfigError> {
        let from_file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.into(),
                    reason: e.to_string(),
                })?;
                toml::from_str::<Settings>(&text).map_err(|e| ConfigError::File {
                    path: path.into(),
                    reason: e.message().to_owned(),
                })?
            }
            None => Settings::default(),
        };
        Self::from_settings(cli.over(from_file))
    }

    pub fn from_settings(s: Settings) -> Result<Config, ConfigError> {
        let non_empty = |name: &'static str, v: Option<String>, default: &str| {
            let v = v.unwrap_or_else(|| default.to_owned());
            if v.trim().is_empty() {
                Err(ConfigError::Empty { name })
            } else {
                Ok(v)
            }
        };
        let window_secs =
            parse_duration("POWER_REVENUE_WINDOW", s.window.as_deref().unwrap_or("6h"))?;
        if window_secs.subsec_nanos() != 0 {
            return Err(ConfigError::BadWindow(
                "window length must be whole seconds".into(),
            ));
        }
        let tz_name = s.timezone.unwrap_or_else(|| "UTC".into());
        let tz: Tz = tz_name
            .parse()
            .map_err(|_| ConfigError::BadTimezone(tz_name.clone()))?;
        let window = WindowSpec::new(window_secs.as_secs(), tz).map_err(ConfigError::BadWindow)?;
        let grace = parse_duration("POWER_REVENUE_GRACE", s.grace.as_deref().unwrap_or("1m"))?;
        let max_catchup = parse_duration(
            "POWER_REVENUE_MAX_CATCHUP",
            s.max_catchup.as_deref().unwrap_or("1d"),
        )?;
        let restate_horizon = bounded(
            "POWER_REVENUE_RESTATE_HORIZON",
            s.restate_horizon.as_deref().unwrap_or("7d"),
            MAX_HORIZON,
        )?;
        let max_future = bounded(
            "POWER_REVENUE_MAX_FUTURE",
            s.max_future.as_deref().unwrap_or("1d"),
            MAX_HORIZON,
        )?;
        let alert_stream_down = parse_duration(
            "POWER_REVENUE_ALERT_STREAM_DOWN",
            s.alert_stream_down.as_deref().unwrap_or("5m"),
        )?;
        let query_timeout = query_timeout(s.query_timeout.as_deref())?;
        let http = s.http_addr.unwrap_or_else(|| "127.0.0.1:9464".into());
        let http_addr = http.parse().map_err(|_| ConfigError::BadHttpAddr(http))?;

        let uri = secret("MONGODB_URI", s.mongodb_uri, s.mongodb_uri_file)?;
        let collection = non_empty(
            "POWER_REVENUE_COLLECTION",
            s.collection,
            "power_transaction_items",
        )?;
        let mongo = match uri {
            None => Err(ConfigError::MissingUri.to_string()),
            Some(uri) => Ok(mongo_config(uri, s.database, collection)?),
        };
        let slack_webhook = secret(
            "SLACK_WEBHOOK_URL",
            s.slack_webhook_url,
            s.slack_webhook_url_file,
        )?;
        if let Some(url) = &slack_webhook {
            check_webhook(url.expose_secret())?;
        }
        Ok(Config {
            mongo,
            fields: Fields {
                time: non_empty("POWER_REVENUE_TIME_FIELD", s.time_field, "createdAt")?,
                amount: non_empty("POWER_REVENUE_AMOUNT_FIELD", s.amount_field, "amount")?,
                utility: non_empty("POWER_REVENUE_UTILITY_FIELD", s.utility_field, "utility")?,
                status: non_empty("POWER_REVENUE_STATUS_FIELD", s.status_field, "status")?,
            },
            fulfilled_status: non_empty(
                "POWER_REVENUE_FULFILLED_STATUS",
                s.fulfilled_status,
                "fulfilled",
            )?,
            window,
            grace,
            state_dir: s.state_dir.unwrap_or_else(|| PathBuf::from("state")),
            slack_webhook,
            http_addr,
            api_token: secret("POWER_REVENUE_API_TOKEN", s.api_token, s.api_token_file)?,
            max_catchup,
            restate_horizon,
            max_future,
            alert_stream_down,
            query_timeout,
        })
    }

    /// The MongoDB settings, for commands that connect.
    pub fn mongo(&self) -> Result<&MongoConfig, ConfigError> {
        self.mongo.as_ref().map_err(|_| ConfigError::MissingUri)
    }

    pub fn with_mongo(mut self, mongo: MongoConfig) -> Self {
        self.mongo = Ok(mongo);
        self
    }
}

/// The longest horizon a setting may span: a year.
const MAX_HORIZON: Duration = Duration::from_secs(366 * 86_400);

/// A duration of at most `max`.
fn bounded(name: &'static str, value: &str, max: Duration) -> Result<Duration, ConfigError> {
    let d = parse_duration(name, value)?;
    if d > max {
        return Err(ConfigError::OutOfBounds {
            name,
            value: value.to_owned(),
            max: format!("{}d", max.as_secs() / 86_400),
        });
    }
    Ok(d)
}

/// `POWER_REVENUE_QUERY_TIMEOUT`: at least a second (to the server, 0 means no limit at all), at
/// most a day.
fn query_timeout(value: Option<&str>) -> Result<Duration, ConfigError> {
    const NAME: &str = "POWER_REVENUE_QUERY_TIMEOUT";
    let value = value.unwrap_or("5m");
    let d = bounded(NAME, value, Duration::from_secs(86_400))?;
    if d < Duration::from_secs(1) {
        return Err(ConfigError::TooShort {
            name: NAME,
            value: value.to_owned(),
            min: "1s",
        });
    }
    Ok(d)
}

fn parse_duration(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim()).map_err(|_| ConfigError::BadDuration {
        name,
        value: value.to_owned(),
    })
}

/// A secret given inline or as a file (Docker/Kubernetes secrets), never both.
fn secret(
    var: &'static str,
    inline: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<SecretString>, ConfigError> {
    match (inline.filter(|v| !v.is_empty()), file) {
        (Some(_), Some(_)) => Err(ConfigError::Ambiguous { var }),
        (Some(v), None) => Ok(Some(SecretString::from(v.trim().to_owned()))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::SecretFile {
                var: match var {
                    "MONGODB_URI" => "MONGODB_URI_FILE",
                    "SLACK_WEBHOOK_URL" => "SLACK_WEBHOOK_URL_FILE",
                    _ => "POWER_REVENUE_API_TOKEN_FILE",
                },
                path,
                reason: e.kind().to_string(),
            })?;
            Ok(Some(SecretString::from(text.trim().to_owned())))
        }
        (None, None) => Ok(None),
    }
}

pub fn mongo_config(
    uri: SecretString,
    database: Option<String>,
    collection: String,
) -> Result<MongoConfig, ConfigError> {
    let parsed = mongodb::options::ConnectionString::parse(uri.expose_secret()).map_err(|e| {
        ConfigError::BadUri {
            reason: scrub(&e.kind.to_string(), uri.expose_secret()),
        }
    })?;
    let database = database
        .filter(|d| !d.is_empty())
        .or(parsed.default_database)
        .ok_or(ConfigError::MissingDatabase)?;
    Ok(MongoConfig {
        redacted: redact_uri(uri.expose_secret()),
        uri,
        database,
        collection,
    })
}

fn check_webhook(url: &str) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(url).map_err(|_| ConfigError::BadWebhookUrl)?;
    let host = parsed
        .host_str()
        .ok_or(ConfigError::BadWebhookUrl)?
        .to_owned();
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        scheme => Err(ConfigError::InsecureWebhook {
            scheme: scheme.to_owned(),
            host,
        }),
    }
}

/// `mongodb://user:****@host/db`: the password never leaves this process.
pub fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return "<unparseable URI>".into();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:****@{hosts}{tail}")
        }
        None => uri.to_owned(),
    }
}

/// Driver messages can quote the URI; cut any password out of them.
fn scrub(message: &str, uri: &str) -> String {
    let Some((_, rest)) = uri.split_once("://") else {
        return message.to_owned();
    };
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    match authority
        .rsplit_once('@')
        .and_then(|(ui, _)| ui.split_once(':'))
    {
        Some((_, password)) if !password.is_empty() => message.replace(password, "****"),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Settings {
        Settings {
            mongodb_uri: Some("mongodb://u:s3cret@h:27017/power".into()),
            ..Default::default()
        }
    }

    #[test]
    fn defaults() {
        let c = Config::from_settings(base()).unwrap();
        let m = c.mongo().unwrap();
        assert_eq!(
            (m.database.as_str(), m.collection.as_str()),
            ("power", "power_transaction_items")
        );
        assert_eq!(m.redacted, "mongodb://u:****@h:27017/power");
        assert_eq!(c.window.length().num_seconds(), 6 * 3600);
        assert_eq!(c.grace, Duration::from_secs(60));
        assert_eq!(c.fields.time, "createdAt");
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:9464");
    }

    #[test]
    fn higher_layers_win() {
        let file = Settings {
            window: Some("1h".into()),
            grace: Some("5s".into()),
            ..Default::default()
        };
        let cli = Settings {
            window: Some("10m".into()),
            ..base()
        };
        let c = Config::from_settings(cli.over(file)).unwrap();
        assert_eq!(c.window.length().num_seconds(), 600);
        assert_eq!(c.grace, Duration::from_secs(5));
    }

    #[test]
    fn bad_values_say_what_to_do() {
        let err = |s: Settings| Config::from_settings(s).unwrap_err().to_string();
        assert!(err(Settings {
            window: Some("7h".into()),
            ..base()
        })
        .contains("does not divide 24 h"));
        assert!(err(Settings {
            timezone: Some("Mars/Base".into()),
            ..base()
        })
        .contains("IANA"));
        assert!(err(Settings {
            mongodb_uri: Some("mongodb://h/".into()),
            ..base()
        })
        .contains("POWER_REVENUE_DATABASE"));
        let e = err(Settings {
            mongodb_uri: Some("mongo://u:s3cret@h/db".into()),
            ..base()
        });
        assert!(
            e.contains("not a valid MongoDB connection string") && !e.contains("s3cret"),
            "{e}"
        );
        let e = err(Settings {
            slack_webhook_url: Some("http://hooks.slack.com/services/T/B/XYZ".into()),
            ..base()
        });
        assert!(e.contains("must use https") && !e.contains("XYZ"), "{e}");
        assert!(Config::from_settings(Settings {
            slack_webhook_url: Some("http://127.0.0.1:9/x".into()),
            ..base()
        })
        .is_ok());
    }

    #[test]
    fn horizons_are_bounded_with_the_bound_in_the_message() {
        let e = Config::from_settings(Settings {
            restate_horizon: Some("2y".into()),
            ..base()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("POWER_REVENUE_RESTATE_HORIZON") && e.contains("366d"),
            "{e}"
        );
        let c = Config::from_settings(Settings {
            max_future: Some("366d".into()),
            ..base()
        })
        .unwrap();
        assert_eq!(c.restate_horizon, Duration::from_secs(7 * 86_400));
    }

    #[test]
    fn query_timeout_is_five_minutes_unless_set_within_a_second_and_a_day() {
        let with = |v: &str| {
            Config::from_settings(Settings {
                query_timeout: Some(v.into()),
                ..base()
            })
        };
        let c = Config::from_settings(base()).unwrap();
        assert_eq!(c.query_timeout, Duration::from_secs(300));
        assert_eq!(with("90s").unwrap().query_timeout, Duration::from_secs(90));
        for (value, bound) in [
            ("0s", "at least 1s"),
            ("500ms", "at least 1s"),
            ("2d", "1d"),
        ] {
            let e = with(value).unwrap_err().to_string();
            assert!(
                e.contains("POWER_REVENUE_QUERY_TIMEOUT") && e.contains(bound),
                "{e}"
            );
        }
    }

    #[test]
    fn missing_uri_is_reported_only_when_needed() {
        let c = Config::from_settings(Settings::default()).unwrap();
        assert!(c
            .mongo()
            .unwrap_err()
            .to_string()
            .contains("MONGODB_URI is not set"));
    }

    #[test]
    fn shipped_example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/power-revenue.toml");
        let c = Config::load(base(), Some(&path)).unwrap();
        assert_eq!(c.window.tz(), chrono_tz::Tz::Africa__Lagos);
        let err = Config::load(base(), Some(Path::new("/nonexistent.toml")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("POWER_REVENUE_CONFIG"), "{err}");
    }
}
