//! The outbox worker: takes closed windows from the store, reconciles them, fixes the message,
//! posts it, and marks it sent only after Slack's 2xx. Oldest window first, exactly once.
//! Late sales of earlier windows are settled by re-checking those windows (module `late`). A
//! report too long for one Slack message goes as several (module `parts`), each marked after
//! its 2xx.
//!
//! Crash safety: each step is persisted (flushed) before the next begins. The one unavoidable
//! duplicate is a crash after Slack accepted a post but before the `Sent` mark was flushed;
//! that gap is one local sled write long.

mod late;
mod parts;

use crate::alert::{AlertKind, Alerter};
use crate::config::Config;
use crate::money::format_naira;
use crate::reconcile;
use crate::report::slack::{text_only_fallback, SlackClient, SlackError};
use crate::report::{self, transactions, ReportView};
use crate::store::{Delivery, Reconciliation, ReportRecord, Store, StoreError};
use crate::telemetry;
use crate::window::{Tally, WindowId};
use backoff::backoff::Backoff;
use bson::Document;
use chrono::Utc;
use late::{correction_line, Change, Step};
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

/// What one report settles, written with it in one batch.
#[derive(Default)]
struct Settles {
    /// Per window, every late sale seen so far (the new settled mark).
    late: BTreeMap<WindowId, Tally>,
    /// Earlier windows re-checked against the database, with their new baseline.
    rechecked: Vec<ReportRecord>,
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
                let settles = self.prepare(&mut record).await?;
                self.store
                    .put_report_settling(&record, &settles.late, &settles.rechecked)
                    .await?;
            }
            if !self.deliver(&mut record, shutdown).await? {
                break;
            }
        }
        Ok(())
    }

    /// Reconciles and fixes the payload (the database's numbers; the stream's if it failed),
    /// with corrections for late sales of earlier windows. Returns what it settles.
    async fn prepare(&self, record: &mut ReportRecord) -> Result<Settles, StoreError> {
        let id = record.window.id();
        // Read before any query below begins: every late sale seen so far was committed
        // before, so each query counts those of its window.
        let seen = self.store.late()?;
        let settled = self.store.settled_late()?;
        let reconciliation = match reconcile::query_with_retry(
            &self.coll,
            &self.config,
            &record.window,
            RECONCILE_PATIENCE,
        )
        .await
        {
            Ok(totals) => Reconciliation {
                database: Some(totals),
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
            metrics::counter!(telemetry::MISMATCHES_TOTAL).increment(1);
        }
        let mut notes = notes(record, &reconciliation);
        let reconciled = reconciliation.database.is_some();
        record.reconciliation = Some(reconciliation);
        let mut settles = Settles::default();
        for step in late::plan(id, reconciled, &seen, &settled) {
            match step {
                Step::CountedByOwnQuery { seen } => {
                    settles.late.insert(id, seen);
                }
                Step::Earlier {
                    window,
                    seen,
                    unsettled,
                } => {
                    let line = self
                        .settle_earlier(window, seen, unsettled, &mut settles)
                        .await?;
                    notes.extend(line);
                }
            }
        }
        let shown = record
            .reconciliation
            .as_ref()
            .and_then(|r| r.database.as_ref())
            .unwrap_or(&record.streamed);
        record.set_parts(report::render_parts(&ReportView {
            window: record.window,
            tz: self.config.window.tz(),
            totals: shown,
            notes,
        }));
        record.delivery = Delivery::Ready;
        record.updated_at = Utc::now();
        Ok(settles)
    }

    /// Late sales of an earlier window: the difference between the database now and what its
    /// reports said (or, for a window with no report, what the stream saw). Records in
    /// `settles` what it settles (nothing if the database cannot say now); returns the line to
    /// post.
    async fn settle_earlier(
        &self,
        window: WindowId,
        seen: Tally,
        unsettled: Tally,
        settles: &mut Settles,
    ) -> Result<Option<String>, StoreError> {
        let spec = &self.config.window;
        let label = |w| report::window_label(&w, spec.tz());
        let Some(mut earlier) = self.store.report(window)? else {
            settles.late.insert(window, seen);
            let w = spec.window_of(window.start());
            return Ok(correction_line(&label(w), unsettled.into()));
        };
        if earlier.reconciliation.is_none() {
            // Not prepared yet (not while reports go oldest first): its own query counts them.
            return Ok(None);
        }
        match reconcile::query_with_retry(
            &self.coll,
            &self.config,
            &earlier.window,
            RECONCILE_PATIENCE,
        )
        .await
        {
            Ok(now) => {
                let line = correction_line(
                    &label(earlier.window),
                    Change::between(earlier.reported(), &now),
                );
                earlier.rechecked = Some(now);
                settles.rechecked.push(earlier);
                settles.late.insert(window, seen);
                Ok(line)
            }
            Err(error) => {
                warn!(%error, window = %window, late_sales = unsettled.count, "Re-checking a window for late sales failed; the next report tries again.");
                let line = format!(
                    "⚠️ Late sales for {} ({}) not yet checked against the database; the next report will.",
                    label(earlier.window),
                    transactions(unsettled.count)
                );
                Ok(Some(line))
            }
        }
    }

    /// Posts one report's messages in order, each retried with backoff for up to
    /// [`SLACK_PATIENCE`]; progress is persisted after every accepted message and the report is
    /// `Sent` only after the last. Returns whether the next report may go.
    async fn deliver(
        &self,
        record: &mut ReportRecord,
        shutdown: &CancellationToken,
    ) -> Result<bool, StoreError> {
        let id = record.window.id();
        if record.payload.is_none() {
            return Ok(true);
        }
        while let Some(payload) = record.next_part().cloned() {
            match self.post(record, payload, shutdown).await? {
                Posted::Accepted => {}
                Posted::Later => return Ok(false),
                Posted::Refused => return Ok(true),
            }
            record.parts_sent += 1;
            record.last_error = None;
            let (sent, parts) = (record.parts_sent, record.parts());
            if sent >= parts {
                record.delivery = Delivery::Sent { at: Utc::now() };
            }
            record.updated_at = Utc::now();
            self.store.put_report(record).await?;
            if sent < parts {
                info!(window = %id, part = sent, parts, "Report part posted.");
            }
        }
        if !matches!(record.delivery, Delivery::Sent { .. }) {
            // Every part was already accepted (a record written by hand or an older build).
            record.delivery = Delivery::Sent { at: Utc::now() };
            self.store.put_report(record).await?;
        }
        info!(window = %id, attempts = record.attempts, parts = record.parts(), "Report posted.");
        metrics::counter!(telemetry::REPORTS_POSTED_TOTAL).increment(1);
        Ok(true)
    }

    /// Posts one message until Slack accepts it, refuses it for good, or patience runs out;
    /// every failed attempt is persisted so `status` shows it. A message whose blocks Slack
    /// refuses is tried once more as plain text before the report is given up.
    async fn post(
        &self,
        record: &mut ReportRecord,
        mut payload: serde_json::Value,
        shutdown: &CancellationToken,
    ) -> Result<Posted, StoreError> {
        let id = record.window.id();
        let mut backoff = SlackClient::backoff(Some(SLACK_PATIENCE));
        loop {
            record.attempts += 1;
            crate::failpoint::hit("before_post");
            let started = std::time::Instant::now();
            let sent = self.sink.send_once(&payload).await;
            metrics::histogram!(telemetry::SLACK_SECONDS).record(started.elapsed());
            let error = match sent {
                Ok(()) => {
                    // The one unavoidable duplicate: a crash right here reposts after restart.
                    crate::failpoint::hit("after_post");
                    return Ok(Posted::Accepted);
                }
                Err(e) => e,
            };
            record.last_error = Some(error.to_string());
            let kind = if error.is_retryable() {
                "retryable"
            } else {
                "permanent"
            };
            metrics::counter!(telemetry::REPORTS_FAILED_TOTAL, "kind" => kind).increment(1);
            if let Some(text_only) = text_only_fallback(&payload, &error) {
                // Not persisted: the stored message stays as rendered, so a later round tries
                // the blocks again and falls back again the same way.
                warn!(%error, window = %id, part = record.parts_sent + 1, "Slack refused the report's blocks; posting it as text only.");
                self.store.put_report(record).await?;
                payload = text_only;
                continue;
            }
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
                return Ok(Posted::Refused);
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
                    return Ok(Posted::Later);
                }
            };
            warn!(%error, window = %id, retry_in_ms = wait.as_millis() as u64, "Slack post failed; retrying.");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return Ok(Posted::Later),
            }
        }
    }
}

/// How posting one message ended.
enum Posted {
    Accepted,
    /// Not now (patience ran out, or shutdown): the next round tries again.
    Later,
    /// Refused for good; the report is marked undeliverable.
    Refused,
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
