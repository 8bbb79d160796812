//! The one-shot commands: `report` (the Lambda's job for one window), `status`,
//! `setup` (alias `init-indexes`). The demo is in [`crate::demo`].

use crate::app;
use crate::compare;
use crate::config::Config;
use crate::reconcile;
use crate::report::{self, ReportView};
use crate::sink::Sink;
use crate::store::{Store, StoreError};
use crate::views::StatusView;
use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use std::time::Duration;

/// Queries one window and posts (or, with `dry_run` or no webhook, prints) its report.
pub async fn report(
    config: Config,
    window_start: DateTime<Utc>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let Some(window) = config.window.starting_at(window_start) else {
        let w = config.window.window_of(window_start);
        bail!(
            "{window_start} is not a window start; the window containing it starts at {}",
            w.start.to_rfc3339()
        );
    };
    let coll = app::collection(&config).await?;
    let totals = reconcile::query_with_retry(&coll, &config, &window, Duration::from_secs(30))
        .await
        .context("the revenue query failed")?;
    let compared = compare::query(&coll, &config, &window).await;
    let parts = report::render_parts(&ReportView {
        window,
        tz: config.window.tz(),
        totals: &totals,
        notes: vec![],
        compared: Some(&compared),
    });
    if dry_run {
        let texts: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        println!("{}", texts.join("\n\n"));
        return Ok(());
    }
    let sink = Sink::from_config(&config);
    for payload in &parts {
        sink.send(payload, Duration::from_secs(60))
            .await
            .context("posting the report failed")?;
    }
    Ok(())
}

/// `setup`: the index the window query uses (equality on status, then the time range, so the
/// `$facet` reads only the window's fulfilled sales) and change-stream pre-images.
pub async fn setup(config: Config) -> anyhow::Result<()> {
    let coll = app::collection(&config).await?;
    let outcome = crate::setup::run(&config, &coll)
        .await
        .context("creating the index failed (does the user have the createIndex privilege?)")?;
    println!(
        "Index {} on {} is in place.",
        outcome.index_name, outcome.index_keys
    );
    match outcome.pre_images {
        Ok(()) => println!("Change-stream pre-images are on: restatements are exact per window."),
        Err(e) => println!(
            "Pre-images could not be turned on ({}); restatements use re-checks. A user with the collMod privilege on MongoDB 6.0+ can run this again.",
            e.kind
        ),
    }
    Ok(())
}

/// Prints the status: from the state directory, or from the running service that holds it.
pub async fn status(config: Config, json: bool) -> anyhow::Result<()> {
    let view = match Store::open(&config.state_dir) {
        Ok(store) => StatusView {
            source: config.mongo().ok().map(|m| m.describe()),
            ..StatusView::build(&store, None, config.restate_horizon, Utc::now())?
        },
        Err(StoreError::Locked(_)) => {
            // Where the running service says it listens (the setting may be port 0).
            let addr =
                crate::store::recorded_http_addr(&config.state_dir).unwrap_or(config.http_addr);
            let url = format!("http://{addr}/api/v1/status");
            let mut request = reqwest::Client::new().get(&url);
            if let Some(token) = &config.api_token {
                request = request.bearer_auth(token.expose_secret());
            }
            request
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .with_context(|| format!("the state directory is in use, and the running service did not answer at {url}; set POWER_REVENUE_HTTP_ADDR to its address (and POWER_REVENUE_API_TOKEN to its token, if it has one)"))?
                .json::<StatusView>()
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        let json = serde_json::to_string_pretty(&view)?;
        println!("{}", crate::display::json_escape_hidden(&json));
    } else {
        print!("{}", view.to_text());
    }
    Ok(())
}

/// How long `healthcheck` waits for the whole answer: well inside a container runtime's probe
/// timeout (Docker's default is 30 s).
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Which probe `healthcheck` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `/healthz`: the process is up (open, no token).
    Live,
    /// `/readyz`: stream connected, checkpoint fresh, oplog headroom (with the API token, so a
    /// Kubernetes exec probe needs no token in its manifest).
    Ready,
}

impl Probe {
    fn path(self) -> &'static str {
        match self {
            Self::Live => "/healthz",
            Self::Ready => "/readyz",
        }
    }
}

/// `healthcheck`: GET `/healthz` (or `/readyz`) of the running service, for images without a
/// shell or curl. The address is the one the service recorded in the state directory (it may
/// have bound port 0), else the configured one; a wildcard host (`0.0.0.0`, `[::]`) is reached
/// on loopback. Nothing here touches MongoDB or Slack. Every failure is one line.
pub async fn healthcheck(config: &Config, probe: Probe) -> anyhow::Result<()> {
    let mut addr = crate::store::recorded_http_addr(&config.state_dir).unwrap_or(config.http_addr);
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{addr}{}", probe.path());
    // No proxy: a container's HTTP(S)_PROXY is for the outside world, not for its own port.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(HEALTHCHECK_TIMEOUT)
        .build()
        .context("unhealthy: the HTTP client could not be built")?;
    let mut request = client.get(&url);
    if let (Probe::Ready, Some(token)) = (probe, &config.api_token) {
        request = request.bearer_auth(token.expose_secret());
    }
    let response = request.send().await.map_err(|e| {
        anyhow::anyhow!("unhealthy: {url} did not answer ({})", request_failure(&e))
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::OK {
        return Ok(());
    }
    // /readyz says why it is not ready; its problems are the service's own words, no secrets.
    let problems = match probe {
        Probe::Ready => response
            .json::<crate::http::Readiness>()
            .await
            .map(|r| r.problems.join("; "))
            .unwrap_or_default(),
        Probe::Live => String::new(),
    };
    if problems.is_empty() {
        bail!("unhealthy: {url} answered {status}");
    }
    bail!(
        "not ready: {url} answered {status}: {}",
        crate::display::escaped(&problems)
    );
}

/// What went wrong with a request, in a few words (reqwest's own message nests its causes).
fn request_failure(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection refused or unreachable"
    } else {
        "request failed"
    }
}
