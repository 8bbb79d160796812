//! The outbox worker: takes closed windows from the store, reconciles them, fixes the message,
//! posts it, and marks it sent only after Slack's 2xx. Oldest window first, exactly once.
//! Preparing a report (reconciling, and settling late sales of earlier windows by re-checking
//! them, module `late`) is module `prepare`. A report too long for one Slack message goes as
//! several, each marked after its 2xx. The record's states and moves are
//! [`crate::store::ReportRecord`]'s; this worker decides when to make them. Period summaries
//! (module `summary`) are queued when a period's last report is settled, built from the ledger
//! and posted the same way, after every report due in the same round. Figures a message cites
//! for other windows come from the ledger (module `told`).
//!
//! Crash safety: each step is persisted (flushed) before the next begins. The one unavoidable
//! duplicate is a crash after Slack accepted a post but before its mark was flushed; that gap
//! is one local sled write long.

mod late;
mod outgoing;
mod prepare;
mod summary;
mod told;

pub use crate::sink::Sink;

use crate::alert::Alerter;
use crate::config::Config;
use crate::sink::slack::{text_only_fallback, SlackClient, SlackError};
use crate::store::Outboxed;
use crate::store::{Delivery, ReportRecord, Store, StoreError, Transition};
use crate::telemetry;
use backoff::backoff::Backoff;
use bson::Document;
use chrono::Utc;
use mongodb::Collection;
use outgoing::Outgoing;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// How long one round keeps retrying Slack before it waits for the next round.
const SLACK_PATIENCE: Duration = Duration::from_secs(120);
/// Rounds run on notification and at least this often (retries of pending reports).
const ROUND_INTERVAL: Duration = Duration::from_secs(15);

pub struct Deliverer {
    pub coll: Collection<Document>,
    pub config: Arc<Config>,
    pub store: Store,
    pub sink: Sink,
    pub alerts: Alerter,
}

/// Why the worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A move the record refused: a bug, never a state of the world.
    #[error("outbox: {0}")]
    Outbox(#[from] Transition),
}

/// What the round does after one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// The report is settled (sent, or undeliverable): go on with the next one.
    Continue,
    /// Slack cannot take it now: end the round here so reports arrive in order; the next round
    /// tries this one again.
    EndRound(Later),
}

/// Why a message waits for the next round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Later {
    /// Slack kept failing for [`SLACK_PATIENCE`].
    PatienceRanOut,
    ShuttingDown,
}

/// How posting one message ended.
enum Posted {
    Accepted,
    /// Not now: the next round tries again.
    Later(Later),
    /// Refused for good; the report is marked undeliverable.
    Refused,
}

impl Deliverer {
    pub async fn run(
        self,
        wake: Arc<Notify>,
        shutdown: CancellationToken,
    ) -> Result<(), DeliverError> {
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

    /// The alerts queued first (few, short, and about now), then every pending report, then
    /// the pending summaries. Each summary is queued by its period's last report, so it follows
    /// that report.
    async fn round(&self, shutdown: &CancellationToken) -> Result<(), DeliverError> {
        if let Next::EndRound(why) = self.alerts(shutdown).await? {
            debug!(?why, "Reports wait for the next round.");
            return Ok(());
        }
        if let Next::EndRound(why) = self.reports(shutdown).await? {
            debug!(?why, "Summaries wait for the next round.");
            return Ok(());
        }
        if shutdown.is_cancelled() {
            return Ok(());
        }
        if let Next::EndRound(why) = self.summaries(shutdown).await? {
            debug!(?why, "Summaries wait for the next round.");
        }
        Ok(())
    }

    /// Drives every pending report as far as it can go, oldest first; stops at the first one
    /// Slack cannot take yet so reports arrive in order.
    async fn reports(&self, shutdown: &CancellationToken) -> Result<Next, DeliverError> {
        for mut record in self.store.pending_reports()? {
            if shutdown.is_cancelled() {
                break;
            }
            if *record.delivery() == Delivery::Closed {
                if !hold_back(&record, shutdown).await {
                    break;
                }
                record.queries_started = Some(Utc::now());
                record.queries_unfinished = record.queries_unfinished.saturating_add(1);
                self.store.put_report(&record).await?;
                let window = record.window.id();
                // A window's queries may take minutes: a shutdown does not wait for them (a
                // Kubernetes grace is 30 s). The record stays closed, its queries counted as
                // unfinished, as after a crash: prepared again at the next start.
                tokio::select! {
                    prepared = self.prepare(&mut record) => prepared?,
                    () = shutdown.cancelled() => {
                        info!(%window, "Stopping with the report's queries unfinished; they run again at the next start.");
                        break;
                    }
                }
                record.queries_started = None;
                record.queries_unfinished = 0;
                self.store.put_report(&record).await?;
            }
            match self.deliver(&mut record, shutdown).await? {
                Next::Continue => {}
                Next::EndRound(why) => {
                    debug!(window = %record.window.id(), ?why, "Report waits for the next round.");
                    return Ok(Next::EndRound(why));
                }
            }
        }
        Ok(Next::Continue)
    }

    /// Posts one message until Slack accepts it, refuses it for good, or patience runs out;
    /// every failed attempt is persisted so `status` shows it. A message whose blocks Slack
    /// refuses is tried once more as plain text before the report is given up.
    async fn post<R: Outgoing>(
        &self,
        record: &mut R,
        mut payload: serde_json::Value,
        shutdown: &CancellationToken,
    ) -> Result<Posted, DeliverError> {
        let id = record.id();
        let mut backoff = SlackClient::backoff(Some(SLACK_PATIENCE));
        loop {
            *record.attempts_mut() = record.attempts_mut().saturating_add(1);
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
            *record.last_error_mut() = Some(error.to_string());
            let kind = if error.is_retryable() {
                "retryable"
            } else {
                "permanent"
            };
            metrics::counter!(telemetry::REPORTS_FAILED_TOTAL, "kind" => kind).increment(1);
            if let Some(text_only) = text_only_fallback(&payload, &error) {
                // Not persisted: the stored message stays as rendered, so a later round tries
                // the blocks again and falls back again the same way.
                warn!(%error, message = %id, part = record.parts_accepted().saturating_add(1), kind = R::KIND, "Slack refused the message's blocks; posting it as text only.");
                record.save(&self.store).await?;
                payload = text_only;
                continue;
            }
            if !error.is_retryable() {
                error!(%error, message = %id, kind = R::KIND, "Slack refused the message; giving up on it.");
                if let Some(alert) = record.alert_refused(error.to_string()) {
                    self.alerts.raise(alert);
                }
                record.refused(error.to_string(), Utc::now())?;
                record.save_refused(self).await?;
                return Ok(Posted::Refused);
            }
            record.save(&self.store).await?;
            let wait = match (&error, backoff.next_backoff()) {
                (
                    SlackError::RateLimited {
                        retry_after: Some(d),
                    },
                    Some(_),
                ) => *d,
                (_, Some(d)) => d,
                (_, None) => {
                    warn!(%error, message = %id, kind = R::KIND, "Slack post failed; will retry in the next round.");
                    return Ok(Posted::Later(Later::PatienceRanOut));
                }
            };
            warn!(%error, message = %id, kind = R::KIND, retry_in_ms = wait.as_millis() as u64, "Slack post failed; retrying.");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return Ok(Posted::Later(Later::ShuttingDown)),
            }
        }
    }
}

/// Waits, if the process before died during this report's queries, until running them again
/// is due ([`crate::limits::after_interrupted`]). `false` on shutdown.
async fn hold_back(record: &ReportRecord, shutdown: &CancellationToken) -> bool {
    let Some(started) = record.queries_started else {
        return true;
    };
    let wait = crate::limits::after_interrupted(record.queries_unfinished);
    let due = crate::window::later_by(started, wait);
    let Ok(left) = (due - Utc::now()).to_std() else {
        return true;
    };
    // A clock that was ahead in the last process must not hold the outbox back for longer.
    let left = left.min(wait);
    warn!(window = %record.window.id(), wait_secs = left.as_secs(), "The last process stopped during this report's queries; waiting before running them again.");
    tokio::select! {
        _ = tokio::time::sleep(left) => true,
        _ = shutdown.cancelled() => false,
    }
}
