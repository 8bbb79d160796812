//! Configuration: defaults < TOML file < environment < flags, validated into [`Config`]
//! before anything connects. Every error is one line saying what is wrong and what to do,
//! and never contains a secret. Secrets and their redaction: [`secret`]; the bounds of every
//! duration: [`bounds`].

mod bounds;
mod secret;
mod secret_json;
mod settings;

pub use bounds::{DEFAULT_GRACE, MAX_ALERT, MAX_HORIZON, MAX_WINDOW};
pub(crate) use secret::scrub;
pub use secret::{redact_uri, SecretVar, MAX_SECRET_FILE_BYTES};
pub use secret_json::{JsonProblem, SecretJsonError};
pub use settings::Settings;

use crate::period::PeriodSpec;
use crate::window::WindowSpec;
use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}; check --config / POWER_REVENUE_CONFIG")]
    File { path: PathBuf, reason: String },
    #[error("cannot read {var} ({}): {reason}; point it at a readable file holding only the secret", path.display())]
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
    #[error("POWER_REVENUE_GRACE = {value:?} is not shorter than the window ({window}); use less than {window}")]
    GraceNotBelowWindow { value: String, window: String },
    #[error("{} is set but empty; {}", var.env(), var.if_empty())]
    EmptySecret { var: SecretVar },
    #[error("{} ({}) holds nothing but whitespace; {}", var.file_env(), path.display(), var.if_empty())]
    EmptySecretFile { var: SecretVar, path: PathBuf },
    #[error(
        "{from} holds more than one line or a control character; it must hold only the secret"
    )]
    SecretNotOneLine { from: String },
    #[error("MONGODB_URI's user name or password holds characters that must be percent-encoded (: / ? # [ ] @ and a lone %), as must an @ in its options; write e.g. ? as %3F, @ as %40, % as %25")]
    UnencodedUserinfo,
    #[error("{name} = {value:?} is too short; use at least {min}")]
    TooShort {
        name: &'static str,
        value: String,
        min: &'static str,
    },
    #[error("{name} = {value:?} is shorter than {why} ({min}); use at least {min}")]
    BelowFloor {
        name: &'static str,
        value: String,
        why: &'static str,
        min: String,
    },
    #[error("{name} must not be empty")]
    Empty { name: &'static str },
    #[error("{name} = {value:?} is not a whole number from {min} to {max}; use e.g. 5")]
    BadCount {
        name: &'static str,
        value: String,
        min: u32,
        max: u32,
    },
    #[error("POWER_REVENUE_SUMMARY: {0}")]
    BadSummary(String),
    /// A `_FILE` secret holding JSON other than the Lambda's Secrets Manager object.
    #[error(transparent)]
    SecretJson(#[from] SecretJsonError),
}

/// A setting found wrong only when it is used (a TLS file the driver cannot read): the
/// process exits 2 with its one line, as for any bad setting.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingError(pub String);

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
    pub(crate) fn describe(&self) -> String {
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
    /// Closed windows' records, ledger figures and summaries older than this are pruned.
    pub retention: Duration,
    /// Sales dated more than this ahead of now are skipped.
    pub max_future: Duration,
    pub alert_stream_down: Duration,
    /// Server-side limit (`maxTimeMS`) on each window query.
    pub query_timeout: Duration,
    /// Silent-utility alerts.
    pub silence: Silence,
    /// Summary periods; `None` when summaries are off.
    pub summary: Option<PeriodSpec>,
}

/// Silent-utility alerts (`POWER_REVENUE_SILENCE`, `POWER_REVENUE_SILENCE_MIN_SALES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    Off,
    /// Alert after `period` without a sale, for utilities averaging at least `min_sales` per
    /// period at this time of day.
    After {
        period: Duration,
        min_sales: u32,
    },
}

impl Config {
    /// The activity buckets' length, ms ([`crate::activity::bucket_ms`]).
    pub fn bucket_ms(&self) -> i64 {
        let silence = match self.silence {
            Silence::After { period, .. } => Some(period),
            Silence::Off => None,
        };
        crate::activity::bucket_ms(&self.window, silence)
    }

    /// Reads the optional TOML file and validates everything.
    pub fn load(cli: Settings, file: Option<&Path>) -> Result<Config, ConfigError> {
        let from_file = match file {
            Some(path) => {
                let unreadable = |reason: String| ConfigError::File {
                    path: path.into(),
                    reason,
                };
                let text = secret::read_bounded(path, MAX_CONFIG_FILE_BYTES)
                    .map_err(|e| unreadable(e.to_string()))?
                    .ok_or_else(|| {
                        unreadable(format!("larger than {} KiB", MAX_CONFIG_FILE_BYTES / 1024))
                    })?;
                toml::from_str::<Settings>(&text).map_err(|e| unreadable(toml_reason(&e, &text)))?
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
        let window_length = bounds::bounded(
            "POWER_REVENUE_WINDOW",
            s.window.as_deref().unwrap_or("6h"),
            MAX_WINDOW,
        )?;
        if window_length.subsec_nanos() != 0 {
            return Err(ConfigError::BadWindow(
                "window length must be whole seconds".into(),
            ));
        }
        let tz_name = s.timezone.unwrap_or_else(|| "UTC".into());
        let tz: Tz = tz_name
            .parse()
            .map_err(|_| ConfigError::BadTimezone(tz_name.clone()))?;
        let window =
            WindowSpec::new(window_length.as_secs(), tz).map_err(ConfigError::BadWindow)?;
        let grace = bounds::grace(s.grace.as_deref(), window_length)?;
        let summary = bounds::summary(s.summary.as_deref(), window)?;
        let horizon = |name, value: Option<String>, default| {
            bounds::bounded(name, value.as_deref().unwrap_or(default), MAX_HORIZON)
        };
        let max_catchup = horizon("POWER_REVENUE_MAX_CATCHUP", s.max_catchup, "1d")?;
        let restate_horizon = horizon("POWER_REVENUE_RESTATE_HORIZON", s.restate_horizon, "7d")?;
        let max_future = horizon("POWER_REVENUE_MAX_FUTURE", s.max_future, "1d")?;
        let retention = bounds::retention(
            s.retention.as_deref(),
            restate_horizon,
            window_length
                .max(summary.map_or(Duration::ZERO, |p| Duration::from_secs(p.length_secs()))),
        )?;
        let alert_stream_down = bounds::bounded(
            "POWER_REVENUE_ALERT_STREAM_DOWN",
            s.alert_stream_down.as_deref().unwrap_or("5m"),
            MAX_ALERT,
        )?;
        let query_timeout = query_timeout(s.query_timeout.as_deref())?;
        let silence = bounds::silence(s.silence.as_deref(), s.silence_min_sales.as_deref())?;
        let http = s.http_addr.unwrap_or_else(|| "127.0.0.1:9464".into());
        let http_addr = http.parse().map_err(|_| ConfigError::BadHttpAddr(http))?;

        let uri = secret::secret(SecretVar::MongoUri, s.mongodb_uri, s.mongodb_uri_file)?;
        let collection = non_empty(
            "POWER_REVENUE_COLLECTION",
            s.collection,
            "power_transaction_items",
        )?;
        let mongo = match uri {
            None => Err(ConfigError::MissingUri.to_string()),
            Some(uri) => Ok(mongo_config(uri, s.database, collection)?),
        };
        let slack_webhook = secret::secret(
            SecretVar::SlackWebhook,
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
            api_token: secret::secret(SecretVar::ApiToken, s.api_token, s.api_token_file)?,
            max_catchup,
            restate_horizon,
            retention,
            max_future,
            alert_stream_down,
            query_timeout,
            silence,
            summary,
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

/// `POWER_REVENUE_QUERY_TIMEOUT`: at least a second (to the server, 0 means no limit at all), at
/// most a day.
fn query_timeout(value: Option<&str>) -> Result<Duration, ConfigError> {
    const NAME: &str = "POWER_REVENUE_QUERY_TIMEOUT";
    let value = value.unwrap_or("5m");
    let d = bounds::bounded(NAME, value, Duration::from_secs(86_400))?;
    if d < Duration::from_secs(1) {
        return Err(ConfigError::TooShort {
            name: NAME,
            value: value.to_owned(),
            min: "1s",
        });
    }
    Ok(d)
}

/// Where and what, without the value: "invalid type: integer `918273645`, expected a string"
/// would print a token written without quotes.
fn toml_reason(e: &toml::de::Error, text: &str) -> String {
    let message = e.message();
    let message = match message.split_once(": ") {
        Some((kind @ ("invalid type" | "invalid value"), rest)) => {
            let what = rest.split('`').next().unwrap_or("").trim();
            let expected = rest.split_once(", expected").map_or("", |(_, x)| x);
            format!("{kind}: {what}, expected{expected}")
        }
        _ => message.to_owned(),
    };
    match e.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(0, |before| before.matches('\n').count())
                .saturating_add(1);
            format!("line {line}: {message}")
        }
        None => message,
    }
}

/// A settings file is a page of text; anything bigger is the wrong file.
pub(crate) const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

pub(crate) fn mongo_config(
    uri: SecretString,
    database: Option<String>,
    collection: String,
) -> Result<MongoConfig, ConfigError> {
    secret::check_userinfo(uri.expose_secret())?;
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

#[cfg(test)]
mod tests;
