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
mod sink;

pub use sink::Sink;

use crate::alert::{AlertKind, Alerter};
use crate::config::Config;
use crate::money::format_naira;
use crate::reconcile;
use crate::report::slack::{text_only_fallback, SlackClient, SlackError};
use crate::report::{self, transactions, ReportView};
use crate::store::{
    unsettled, Delivery, Reconciliation, ReportRecord, Settlement, Store, StoreError,
};
use crate::telemetry;
use crate::window::{Totals, WindowId};
use backoff::backoff::Backoff;
use bson::Document;
use chrono::{DateTime, TimeDelta, Utc};
use late::{correction_line, Change, Known, Ledger, Pending, Step, Unposted};
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
                if !hold_back(&record, shutdown).await {
                    break;
                }
                record.queries_started = Some(Utc::now());
                record.queries_unfinished = record.queries_unfinished.saturating_add(1);
                self.store.put_report(&record).await?;
                self.prepare(&mut record).await?;
                record.queries_started = None;
                record.queries_unfinished = 0;
                self.store.put_report(&record).await?;
            }
            if !self.deliver(&mut record, shutdown).await? {
                break;
            }
        }
        Ok(())
    }

    /// Reconciles and fixes the payload (the database's numbers; the stream's if it failed),
    /// with corrections for earlier windows whose sales changed. What it settles is kept on
    /// the record and applied only once the report is delivered.
    async fn prepare(&self, record: &mut ReportRecord) -> Result<(), StoreError> {
        let id = record.window.id();
        // Read before any query below begins: every change seen so far was committed before,
        // so each query counts those of its window.
        let seen = self.store.late()?;
        let settled = self.store.settled_late()?;
        let (any_seen, any_settled) = self.store.changes_anywhere()?;
        let records: BTreeMap<WindowId, ReportRecord> = self
            .store
            .reports()?
            .into_iter()
            .filter(|r| r.window.id() < id)
            .map(|r| (r.window.id(), r))
            .collect();
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
        let known: BTreeMap<WindowId, Known> = records
            .iter()
            .map(|(&w, r)| {
                let k = match r.reconciliation {
                    Some(_) => Known::Reported(r.window),
                    None => Known::Pending,
                };
                (w, k)
            })
            .collect();
        let anywhere = match unsettled(any_seen, Some(&any_settled)) {
            Some(_) => Pending::Changes,
            None => Pending::Nothing,
        };
        let horizon = TimeDelta::from_std(self.config.restate_horizon).unwrap_or(TimeDelta::MAX);
        let ledger = Ledger {
            seen: &seen,
            settled: &settled,
            anywhere,
            reports: &known,
            horizon_start: Utc::now()
                .checked_sub_signed(horizon)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        };
        let mut settles = Settlement::default();
        let mut all_rechecked = true;
        for step in late::plan(id, reconciled, &ledger) {
            match step {
                Step::CountedByOwnQuery { seen } => {
                    settles.marks.insert(id, seen);
                }
                Step::Unposted {
                    window,
                    seen,
                    unsettled,
                    why,
                } => {
                    warn!(%window, changes = unsettled.count, why = why.as_str(), "Changes to a closed window counted, not posted.");
                    settles.marks.insert(window, seen);
                    let tally = match why {
                        Unposted::NeverReported => &mut settles.unreported,
                        Unposted::BeyondHorizon => &mut settles.beyond_horizon,
                    };
                    tally.merge_changes(&unsettled);
                }
                Step::Recheck { window } => {
                    let Some(earlier) = records.get(&window) else {
                        continue;
                    };
                    match self.recheck(earlier).await {
                        Ok((line, now)) => {
                            settles.corrections += u64::from(line.is_some());
                            notes.extend(line);
                            settles.rechecked.insert(window, now);
                            if let Some(seen) = seen.get(&window) {
                                settles.marks.insert(window, *seen);
                            }
                        }
                        Err(line) => {
                            all_rechecked = false;
                            notes.push(line);
                        }
                    }
                }
            }
        }
        if anywhere == Pending::Changes && all_rechecked {
            settles.anywhere = Some(any_seen);
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
        record.settles = settles;
        record.delivery = Delivery::Ready;
        record.updated_at = Utc::now();
        Ok(())
    }

    /// An earlier window against the database now: the correction line (none if nothing
    /// changed) and the new figures; or, if the database cannot say now, the line saying so.
    async fn recheck(&self, earlier: &ReportRecord) -> Result<(Option<String>, Totals), String> {
        let label = report::window_label(&earlier.window, self.config.window.tz());
        metrics::counter!(telemetry::RECHECK_QUERIES_TOTAL).increment(1);
        match reconcile::query_with_retry(
            &self.coll,
            &self.config,
            &earlier.window,
            RECONCILE_PATIENCE,
        )
        .await
        {
            Ok(now) => {
                let change = Change::between(earlier.reported(), &now);
                Ok((correction_line(&label, change), now))
            }
            Err(error) => {
                warn!(%error, window = %earlier.window.id(), "Re-checking a window for changes failed; the next report tries again.");
                Err(format!(
                    "⚠️ Changes to {label} not yet checked against the database; the next report will."
                ))
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
            record.updated_at = Utc::now();
            if sent >= parts {
                break;
            }
            self.store.put_report(record).await?;
            info!(window = %id, part = sent, parts, "Report part posted.");
        }
        // Every part accepted: `Sent`, and what the report settles, in one write.
        record.delivery = Delivery::Sent { at: Utc::now() };
        self.store.mark_delivered(record).await?;
        let settled = &record.settles;
        metrics::counter!(telemetry::CORRECTIONS_TOTAL).increment(settled.corrections);
        metrics::counter!(telemetry::CHANGES_UNREPORTED_TOTAL).increment(settled.unreported.count);
        metrics::counter!(telemetry::CHANGES_BEYOND_HORIZON_TOTAL)
            .increment(settled.beyond_horizon.count);
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

/// Waits, if the process before died during this report's queries, until running them again
/// is due ([`crate::limits::after_interrupted`]). `false` on shutdown.
async fn hold_back(record: &ReportRecord, shutdown: &CancellationToken) -> bool {
    let Some(started) = record.queries_started else {
        return true;
    };
    let wait = crate::limits::after_interrupted(record.queries_unfinished);
    let due = started + TimeDelta::from_std(wait).unwrap_or_default();
    let Ok(left) = (due - Utc::now()).to_std() else {
        return true;
    };
    warn!(window = %record.window.id(), wait_secs = left.as_secs(), "The last process stopped during this report's queries; waiting before running them again.");
    tokio::select! {
        _ = tokio::time::sleep(left) => true,
        _ = shutdown.cancelled() => false,
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
