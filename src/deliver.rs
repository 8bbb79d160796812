//! The outbox worker: takes closed windows from the store, reconciles them, fixes the message,
//! posts it, and marks it sent only after Slack's 2xx. Oldest window first, exactly once.
//!
//! Crash safety: each step is persisted (flushed) before the next begins. The one unavoidable
//! duplicate is a crash after Slack accepted a post but before the `Sent` mark was flushed;
//! that gap is one local sled write long.

use crate::alert::{AlertKind, Alerter};
use crate::config::Config;
use crate::money::format_naira;
use crate::reconcile;
use crate::report::slack::{SlackClient, SlackError};
use crate::report::{self, transactions, ReportView};
use crate::store::{Delivery, Reconciliation, ReportRecord, Store, StoreError};
use crate::window::{Tally, WindowId};
use backoff::backoff::Backoff;
use bson::Document;
use chrono::Utc;
use mongodb::Collection;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// How long one round keeps retrying the reconciliation query before posting stream totals.
const RECONCILE_PATIENCE: Duration = Duration::from_secs(120);
/// How long one round keeps retrying Slack before it waits for the next round.
const SLACK_PATIENCE: Duration = Duration::from_secs(120);
/// Rounds run on notification and at least this often (retries of pending reports).
const ROUND_INTERVAL: Duration = Duration::from_secs(15);

/// Where reports go.
#[derive(Clone)]
pub enum Sink {
    Slack(SlackClient),
    /// No webhook configured: print the text on stdout.
    Stdout,
}

impl Sink {
    pub fn from_config(config: &Config) -> Sink {
        match &config.slack_webhook {
            Some(url) => Sink::Slack(SlackClient::new(url.clone())),
            None => Sink::Stdout,
        }
    }

    /// One attempt.
    pub async fn send_once(&self, payload: &serde_json::Value) -> Result<(), SlackError> {
        match self {
            Sink::Slack(client) => client.post(payload).await,
            Sink::Stdout => {
                println!("{}\n", payload["text"].as_str().unwrap_or_default());
                Ok(())
            }
        }
    }

    /// Retries retryable failures for up to `patience`.
    pub async fn send(
        &self,
        payload: &serde_json::Value,
        patience: Duration,
    ) -> Result<(), SlackError> {
        match self {
            Sink::Slack(client) => client.post_with_retry(payload, patience).await,
            Sink::Stdout => self.send_once(payload).await,
        }
    }
}

pub struct Deliverer {
    pub coll: Collection<Document>,
    pub config: Arc<Config>,
    pub store: Store,
    pub sink: Sink,
    pub alerts: Alerter,
}

impl Deliverer {
    pub async fn run(
        self,
        wake: Arc<Notify>,
        shutdown: CancellationToken,
    ) -> Result<(), StoreError> {
        while !shutdown.is_cancelled() {
            self.round(&shutdown).await?;
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(ROUND_INTERVAL) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        Ok(())
    }

    /// Drives every pending report as far as it can go, oldest first; stops at the first one
    /// Slack cannot take yet so reports arrive in order.
    async fn round(&self, shutdown: &CancellationToken) -> Result<(), StoreError> {
        for mut record in self
            .store
            .reports()?
            .into_iter()
            .filter(ReportRecord::is_pending)
        {
            if shutdown.is_cancelled() {
                break;
            }
            if record.delivery == Delivery::Closed {
                let carried = self.prepare(&mut record).await?;
                self.store.put_report_carrying(&record, &carried).await?;
            }
            if !self.deliver(&mut record, shutdown).await? {
                break;
            }
        }
        Ok(())
    }

    /// Reconciles and fixes the payload (the database's numbers; the stream's if it failed),
    /// with corrections for late sales of earlier windows. Returns the late sales it carries.
    async fn prepare(
        &self,
        record: &mut ReportRecord,
    ) -> Result<BTreeMap<WindowId, Tally>, StoreError> {
        let id = record.window.id();
        let reconciliation = match reconcile::query_with_retry(
            &self.coll,
            &self.config,
            &record.window,
            RECONCILE_PATIENCE,
        )
        .await
        {
            Ok(db) => Reconciliation {
                database: Some(db),
                error: None,
            },
            Err(e) => {
                error!(error = %e, window = %id, "Reconciliation failed; posting the streamed totals.");
                let message = format!("reconciliation of window {id} failed ({e}); its report shows the live stream totals");
                self.alerts.raise(AlertKind::ReconcileFailed, message);
                Reconciliation {
                    database: None,
                    error: Some(e.to_string()),
                }
            }
        };
        if let Some(db) = reconciliation
            .database
            .as_ref()
            .filter(|db| **db != record.streamed)
        {
            let (streamed, database) = (record.streamed.total(), db.total());
            warn!(
                window = %id,
                streamed_revenue = %streamed.revenue,
                streamed_count = streamed.count,
                database_revenue = %database.revenue,
                database_count = database.count,
                partial_stream = record.streamed_partial,
                "Streamed totals differ from the database; posting the database's."
            );
        }
        let mut notes = notes(record, &reconciliation);
        // Late sales of this very window are in the query just run; earlier windows' late
        // sales become correction lines. Both are marked carried with this record.
        let mut carried = BTreeMap::new();
        let all_late = self.store.late()?;
        for (late_id, extra) in self.store.uncarried_late()? {
            if late_id < id {
                let w = self.config.window.window_of(late_id.start());
                notes.push(format!(
                    "Late for {}: +{}, {}",
                    report::window_label(&w, self.config.window.tz()),
                    format_naira(extra.revenue),
                    transactions(extra.count)
                ));
            }
            if late_id <= id {
                carried.insert(late_id, all_late[&late_id]);
            }
        }
        let shown = reconciliation.database.as_ref().unwrap_or(&record.streamed);
        record.payload = Some(report::render(&ReportView {
            window: record.window,
            tz: self.config.window.tz(),
            totals: shown,
            notes,
        }));
        record.reconciliation = Some(reconciliation);
        record.delivery = Delivery::Ready;
        record.updated_at = Utc::now();
        Ok(carried)
    }

    /// Posts one report, retrying with backoff for up to [`SLACK_PATIENCE`]; every failed
    /// attempt is persisted so `status` shows it. Returns whether the next report may go.
    async fn deliver(
        &self,
        record: &mut ReportRecord,
        shutdown: &CancellationToken,
    ) -> Result<bool, StoreError> {
        let id = record.window.id();
        let Some(payload) = record.payload.clone() else {
            return Ok(true);
        };
        let mut backoff = SlackClient::backoff(Some(SLACK_PATIENCE));
        loop {
            record.attempts += 1;
            crate::failpoint::hit("before_post");
            let error = match self.sink.send_once(&payload).await {
                Ok(()) => {
                    // The one unavoidable duplicate: a crash right here reposts after restart.
                    crate::failpoint::hit("after_post");
                    record.delivery = Delivery::Sent { at: Utc::now() };
                    record.last_error = None;
                    self.store.put_report(record).await?;
                    info!(window = %id, attempts = record.attempts, "Report posted.");
                    return Ok(true);
                }
                Err(e) => e,
            };
            record.last_error = Some(error.to_string());
            if !error.is_retryable() {
                error!(%error, window = %id, "Slack refused the report; giving up on it.");
                self.alerts.raise(
                    AlertKind::Undeliverable,
                    format!("the report for window {id} was refused by Slack: {error}"),
                );
                record.delivery = Delivery::Undeliverable {
                    reason: error.to_string(),
                };
                self.store.put_report(record).await?;
                return Ok(true);
            }
            self.store.put_report(record).await?;
            let wait = match (&error, backoff.next_backoff()) {
                (
                    SlackError::RateLimited {
                        retry_after: Some(d),
                    },
                    Some(_),
                ) => *d,
                (_, Some(d)) => d,
                (_, None) => {
                    warn!(%error, window = %id, attempts = record.attempts, "Slack post failed; will retry in the next round.");
                    return Ok(false);
                }
            };
            warn!(%error, window = %id, retry_in_ms = wait.as_millis() as u64, "Slack post failed; retrying.");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return Ok(false),
            }
        }
    }
}

/// Context lines: how the stream compared with the database.
pub fn notes(record: &ReportRecord, rec: &Reconciliation) -> Vec<String> {
    let streamed = record.streamed.total();
    let streamed_text = format!(
        "{} ({})",
        format_naira(streamed.revenue),
        transactions(streamed.count)
    );
    let recomputed = record.recomputed.then(|| {
        "♻️ Recomputed: live totals were rebuilt from the database after the change-stream history was lost.".to_owned()
    });
    let mut lines: Vec<String> = match &rec.database {
        None => vec![format!("⚠️ Not reconciled: the database query failed; live stream totals shown ({streamed_text}).")],
        Some(db) if *db == record.streamed => vec![],
        Some(_) if record.streamed_partial => {
            vec![format!("ℹ️ Live totals began mid-window ({streamed_text}); database figures shown.")]
        }
        Some(_) if record.recomputed => vec![],
        Some(_) => vec![format!("⚠️ Live stream totals differed ({streamed_text}); database figures shown.")],
    };
    lines.extend(recomputed);
    lines
}
