//! `power-revenue demo` (feature `demo`): the whole service against a local SecantusDB (a
//! GPL server, run as a separate process, never linked) with synthetic sales. Not in the
//! production binary.

use crate::app::{self, App};
use crate::config::{mongo_config, Config};
use crate::devserver::DevServer;
use anyhow::Context;
use bson::{doc, Document};
use mongodb::Collection;
use rand::Rng;
use secrecy::SecretString;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
