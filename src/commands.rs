//! The one-shot commands: `report` (the Lambda's job for one window), `status`,
//! `setup` (alias `init-indexes`), `demo`.

use crate::app::{self, App};
use crate::config::{mongo_config, Config};
use crate::deliver::Sink;
use crate::devserver::DevServer;
use crate::reconcile;
use crate::report::{self, ReportView};
use crate::status::StatusView;
use crate::store::{Store, StoreError};
use anyhow::{bail, Context};
use bson::{doc, Document};
use chrono::{DateTime, Utc};
use mongodb::Collection;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    let parts = report::render_parts(&ReportView {
        window,
        tz: config.window.tz(),
        totals: &totals,
        notes: vec![],
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
            let url = format!("http://{}/api/v1/status", config.http_addr);
            let mut request = reqwest::Client::new().get(&url);
            if let Some(token) = &config.api_token {
                request = request.bearer_auth(token.expose_secret());
            }
            request
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .with_context(|| format!("the state directory is in use, and the running service did not answer at {url}; set POWER_REVENUE_HTTP_ADDR to its address"))?
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

/// Runs the whole service against a local SecantusDB with synthetic sales.
pub async fn demo(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    eprintln!(
        "Starting a local SecantusDB (first run installs it into {}; about a minute)…",
        crate::devserver::venv_dir().display()
    );
    let server = tokio::task::spawn_blocking(|| DevServer::start(None, &[]))
        .await?
        .context("cannot start SecantusDB")?;
    let mongo = mongo_config(
        SecretString::from(server.uri()),
        Some("power_demo".into()),
        "power_transaction_items".into(),
    )?;
    let config = config.with_mongo(mongo);
    let coll = app::collection(&config).await?;
    let app = App::build(config.clone()).await?;
    eprintln!(
        "Demo: {} s windows, {} s grace; reports print below{}.\nDashboard: http://{addr}/{}  (API: /api/v1/windows/current, metrics: /metrics). Ctrl-C to stop.",
        config.window.length().num_seconds(),
        config.grace.as_secs(),
        if config.slack_webhook.is_some() { " and go to Slack" } else { "" },
        if config.api_token.is_some() { "?token=<POWER_REVENUE_API_TOKEN>" } else { "" },
        addr = app.http_addr(),
    );
    let sales = tokio::spawn(synthetic_sales(coll, shutdown.clone()));
    let result = app.run(shutdown).await;
    sales.abort();
    drop(server);
    result
}

/// A few sales a second across utilities, in every amount form, some pending then fulfilled.
async fn synthetic_sales(coll: Collection<Document>, shutdown: CancellationToken) {
    const UTILITIES: [&str; 6] = ["IKEDC", "EKEDC", "AEDC", "ikedc ", "PHED", "KEDCO"];
    while !shutdown.is_cancelled() {
        let (utility, naira, form, pending) = {
            let mut rng = rand::rng();
            (
                UTILITIES[rng.random_range(0..UTILITIES.len())],
                rng.random_range(500..20_000) as i64,
                rng.random_range(0..4),
                rng.random_bool(0.2),
            )
        };
        let amount = match form {
            0 => bson::Bson::String(format!("₦{naira}.50")),
            1 => bson::Bson::Int64(naira),
            2 => bson::Bson::Double(naira as f64 + 0.25),
            _ => bson::Bson::String(format!("NGN {naira}")),
        };
        let status = if pending { "pending" } else { "fulfilled" };
        let doc = doc! { "createdAt": bson::DateTime::now(), "amount": amount, "utility": utility, "status": status };
        if let Ok(r) = coll.insert_one(doc).await {
            if pending {
                let _ = coll
                    .update_one(
                        doc! { "_id": r.inserted_id },
                        doc! { "$set": { "status": "fulfilled" } },
                    )
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
