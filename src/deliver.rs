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
use crate::store::{
    ClusterTime, Delivery, LateKey, Reconciliation, ReportRecord, Store, StoreError,
};
use crate::telemetry;
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
    /// with corrections for late sales of earlier windows. Returns the late sales it settles.
    async fn prepare(
        &self,
        record: &mut ReportRecord,
    ) -> Result<BTreeMap<LateKey, Tally>, StoreError> {
        let id = record.window.id();
        let reconciliation = match reconcile::query_with_retry(
            &self.coll,
            &self.config,
            &record.window,
            RECONCILE_PATIENCE,
        )
        .await
        {
            Ok(reading) => Reconciliation {
                database: Some(reading.totals),
                error: None,
                at: reading.at,
            },
            Err(e) => {
                error!(error = %e, window = %id, "Reconciliation failed; posting the streamed totals.");
                let message = format!("reconciliation of window {id} failed ({e}); its report shows the live stream totals");
                self.alerts.raise(AlertKind::ReconcileFailed, message);
                Reconciliation {
                    database: None,
                    error: Some(e.to_string()),
                    at: None,
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
        record.reconciliation = Some(reconciliation);
        let unsettled = self.store.uncarried_late_sales()?;
        let mut earlier = BTreeMap::new();
        for key in unsettled.keys() {
            if key.window < id && !earlier.contains_key(&key.window) {
                let report = self.store.report(key.window)?;
                earlier.insert(key.window, report.and_then(|r| r.reconciliation));
            }
        }
        let (corrections, settled) =
            late_corrections(record, unsettled, |w| earlier.get(&w).cloned().flatten());
        for (late_id, extra) in corrections {
            let w = self.config.window.window_of(late_id.start());
            notes.push(format!(
                "Late for {}: +{}, {}",
                report::window_label(&w, self.config.window.tz()),
                format_naira(extra.revenue),
                transactions(extra.count)
            ));
        }
        let shown = record
            .reconciliation
            .as_ref()
            .and_then(|r| r.database.as_ref())
            .unwrap_or(&record.streamed);
        record.payload = Some(report::render(&ReportView {
            window: record.window,
            tz: self.config.window.tz(),
            totals: shown,
            notes,
        }));
        record.delivery = Delivery::Ready;
        record.updated_at = Utc::now();
        Ok(settled)
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
            let started = std::time::Instant::now();
            let sent = self.sink.send_once(&payload).await;
            metrics::histogram!(telemetry::SLACK_SECONDS).record(started.elapsed());
            let error = match sent {
                Ok(()) => {
                    // The one unavoidable duplicate: a crash right here reposts after restart.
                    crate::failpoint::hit("after_post");
                    record.delivery = Delivery::Sent { at: Utc::now() };
                    record.last_error = None;
                    self.store.put_report(record).await?;
                    info!(window = %id, attempts = record.attempts, "Report posted.");
                    metrics::counter!(telemetry::REPORTS_POSTED_TOTAL).increment(1);
                    return Ok(true);
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

/// Splits unsettled late sales into those a reconciliation already counted (committed at or
/// before the query's read time) and real corrections for windows before `record`'s. A late
/// sale of `record`'s own window committed after its query waits for the next report.
/// Returns (corrections per window, every sale settled by this report).
pub fn late_corrections(
    record: &ReportRecord,
    unsettled: BTreeMap<LateKey, Tally>,
    reconciliation_of: impl Fn(WindowId) -> Option<Reconciliation>,
) -> (BTreeMap<WindowId, Tally>, BTreeMap<LateKey, Tally>) {
    let id = record.window.id();
    // Only a successful query counted anything; stream totals never include a late sale.
    let read_at = |rec: Option<Reconciliation>| -> Option<ClusterTime> {
        rec.filter(|r| r.database.is_some()).and_then(|r| r.at)
    };
    let own = read_at(record.reconciliation.clone());
    let (mut corrections, mut settled) = (BTreeMap::new(), BTreeMap::new());
    for (key, extra) in unsettled {
        let counted_at = match key.window.cmp(&id) {
            std::cmp::Ordering::Greater => continue,
            std::cmp::Ordering::Equal => own,
            std::cmp::Ordering::Less => read_at(reconciliation_of(key.window)),
        };
        if counted_at.is_some_and(|at| key.at <= at) {
            settled.insert(key, extra);
        } else if key.window < id {
            let sum: &mut Tally = corrections.entry(key.window).or_default();
            sum.revenue += extra.revenue;
            sum.count += extra.count;
            settled.insert(key, extra);
        }
    }
    (corrections, settled)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CLUSTER_TIME_UNKNOWN;
    use crate::window::{OpenWindow, Totals, WindowSpec};
    use chrono::TimeZone;
    use chrono_tz::Tz;
    use rust_decimal::Decimal;

    fn record(spec: &WindowSpec, hour: u32, read_at: Option<ClusterTime>) -> ReportRecord {
        let w = spec.window_of(Utc.with_ymd_and_hms(2025, 5, 29, hour, 0, 0).unwrap());
        let mut r = ReportRecord::closed(OpenWindow::new(w, w.start), w.end);
        r.reconciliation = Some(Reconciliation {
            database: Some(Totals::default()),
            error: None,
            at: read_at,
        });
        r
    }

    fn one(naira: i64) -> Tally {
        Tally {
            revenue: Decimal::from(naira),
            count: 1,
        }
    }

    #[test]
    fn late_sales_are_corrections_only_if_no_query_counted_them() {
        let spec = WindowSpec::new(6 * 3600, Tz::UTC).unwrap();
        let morning = record(&spec, 6, Some(100));
        let afternoon = record(&spec, 12, Some(200));
        let (m, a) = (morning.window.id(), afternoon.window.id());
        let sales = BTreeMap::from([
            // Committed before the morning query read: already in the morning report.
            (LateKey { window: m, at: 90 }, one(1)),
            // Committed after it: a correction in the afternoon report.
            (LateKey { window: m, at: 150 }, one(20)),
            (
                LateKey {
                    window: m,
                    at: CLUSTER_TIME_UNKNOWN,
                },
                one(300),
            ),
            // The afternoon's own late sales: counted by its query, or left for the next.
            (LateKey { window: a, at: 199 }, one(4000)),
            (LateKey { window: a, at: 201 }, one(50000)),
        ]);
        let reconciliation_of = |w| (w == m).then(|| morning.reconciliation.clone().unwrap());
        let (corrections, settled) = late_corrections(&afternoon, sales, reconciliation_of);
        assert_eq!(
            corrections,
            BTreeMap::from([(
                m,
                Tally {
                    revenue: Decimal::from(320),
                    count: 2
                }
            )])
        );
        let settled: Vec<_> = settled.keys().map(|k| (k.window, k.at)).collect();
        assert_eq!(
            settled,
            vec![(m, 90), (m, 150), (m, CLUSTER_TIME_UNKNOWN), (a, 199)]
        );
    }

    #[test]
    fn a_failed_reconciliation_counted_no_late_sale() {
        let spec = WindowSpec::new(6 * 3600, Tz::UTC).unwrap();
        let mut morning = record(&spec, 6, Some(100));
        morning.reconciliation.as_mut().unwrap().database = None;
        let afternoon = record(&spec, 12, Some(200));
        let m = morning.window.id();
        let sales = BTreeMap::from([(LateKey { window: m, at: 10 }, one(7))]);
        let (corrections, _) =
            late_corrections(&afternoon, sales, |_| morning.reconciliation.clone());
        assert_eq!(corrections[&m], one(7));
    }
}
