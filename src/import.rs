//! The history import: at the first start (or when a longer reach is configured), the sales
//! of the days the ledger and the silence baselines reach back to, before the stream began,
//! read from the database once, a day at a time (`maxTimeMS` on each), into activity buckets
//! and the ledger's windows. Each day is written with the progress that covers it, so an
//! import cut short resumes where it stopped. After it, the service reads the database only
//! for a report's own window and for re-checks of windows whose sales changed.

use crate::activity::Activity;
use crate::config::{Config, Silence};
use crate::reconcile::{self, HistoryRow, ReconcileError};
use crate::source::{Live, OPEN_TIMEOUT};
use crate::store::{History, Pass, Store, StoreError};
use crate::telemetry;
use crate::window::{earlier_by, Totals, Window};
use backoff::backoff::Backoff;
use bson::Document;
use chrono::{DateTime, TimeDelta, Utc};
use mongodb::Collection;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How far back comparisons (the same window a week ago) and baselines (seven days) reach.
const WEEK: Duration = Duration::from_secs(7 * 86_400);
/// One query reads at most a day.
const STEP: TimeDelta = TimeDelta::days(1);
/// How long one day's query keeps retrying at once before the import waits longer.
const PATIENCE: Duration = Duration::from_secs(120);

/// The importer.
pub(crate) struct Importer {
    pub coll: Collection<Document>,
    pub config: Arc<Config>,
    pub store: Store,
    /// The stream's state: the import waits for its first open attempt.
    pub live: Arc<Live>,
    /// When this process began streaming: on a first start, the import reads up to it.
    pub began: DateTime<Utc>,
}

/// Why the import stopped (the process stops with it, and the import resumes from its last
/// step when the manager restarts it): its store failed. No `is_retryable`: a failed query is
/// retried inside, with backoff, and never ends the import.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Importer {
    /// Imports what the store lacks, then returns; a query that keeps failing is tried again
    /// with backoff (30 s doubling to 30 min) until it succeeds or `stop`.
    pub(crate) async fn run(self, stop: CancellationToken) -> Result<(), ImportError> {
        let from = self.reach(Utc::now());
        let mut history = match self.store.history()? {
            None => History::begin(from, self.began),
            Some(h) => h.reaching(from),
        };
        if history.pass.is_none() {
            return Ok(());
        }
        self.store.put_history(&history).await?;
        tokio::select! {
            _ = self.live.first_open_attempt(OPEN_TIMEOUT) => {}
            _ = stop.cancelled() => return Ok(()),
        }
        let started = Instant::now();
        let mut waits = retry_policy();
        while let Some(pass) = history.pass.clone() {
            if pass.next >= pass.until {
                let done = history.finish();
                self.store.put_history(&history).await?;
                if let Some(p) = done {
                    info!(from = %p.from, until = %p.until, sales = p.sales, windows = p.windows, queries = p.queries, secs = started.elapsed().as_secs(), "History imported: the days before the first start, read once.");
                }
                return Ok(());
            }
            let to = self.step_end(&pass);
            let step = Window {
                start: pass.next,
                end: to,
            };
            let bucket = self.config.bucket_ms();
            let read = tokio::select! {
                r = reconcile::with_retry(&step, PATIENCE, || async {
                    if crate::failpoint::fails("history-query") {
                        return Err(ReconcileError::BadResult("failpoint history-query".into()));
                    }
                    reconcile::query_history(&self.coll, &self.config, step.start, step.end, bucket).await
                }) => r,
                _ = stop.cancelled() => return Ok(()),
            };
            match read {
                Ok(rows) => {
                    waits.reset();
                    self.keep(&mut history, &pass, to, rows).await?;
                }
                Err(error) => {
                    metrics::counter!(telemetry::IMPORT_FAILURES_TOTAL).increment(1);
                    let wait = waits.next_backoff().unwrap_or(MAX_WAIT);
                    warn!(%error, from = %pass.next, retry_in_secs = wait.as_secs(), "History import query failed; comparisons and silence baselines wait for it.");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.cancelled() => return Ok(()),
                    }
                }
            }
        }
        Ok(())
    }

    /// The earliest window start the ledger and the baselines need at `now`: a week and the
    /// longest of a window, a summary period and a silence period back.
    fn reach(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let c = &self.config;
        let window = c.window.length().to_std().unwrap_or_default();
        let period = c
            .summary
            .map_or(Duration::ZERO, |p| Duration::from_secs(p.length_secs()));
        let silence = match c.silence {
            Silence::After { period, .. } => period,
            Silence::Off => Duration::ZERO,
        };
        let back = WEEK.saturating_add(window.max(period).max(silence));
        c.window.window_of(earlier_by(now, back)).start
    }

    /// The end of the step from `pass.next`: a day on, at a window's start, or the pass's end.
    fn step_end(&self, pass: &Pass) -> DateTime<Utc> {
        let spec = &self.config.window;
        let day = pass.next.checked_add_signed(STEP).unwrap_or(pass.until);
        // At least one window on: a day's window on a 25-hour day starts where it began.
        let one_on = spec.next(&spec.window_of(pass.next)).start;
        spec.window_of(day).start.max(one_on).min(pass.until)
    }

    /// Writes one step: its rows as activity and as the figures of its whole windows.
    async fn keep(
        &self,
        history: &mut History,
        pass: &Pass,
        to: DateTime<Utc>,
        rows: Vec<HistoryRow>,
    ) -> Result<(), ImportError> {
        let spec = &self.config.window;
        // Windows with sales only: a window the history covers and the ledger lacks sold
        // nothing (see `Store::told_or_covered`).
        let mut windows: BTreeMap<DateTime<Utc>, (Window, Totals)> = BTreeMap::new();
        let mut activity = Activity::default();
        let mut sales = 0u64;
        for row in rows {
            activity.add(row.bucket_ms, &row.utility, row.tally.count);
            sales = sales.saturating_add(row.tally.count);
            let at = DateTime::from_timestamp_millis(row.bucket_ms).unwrap_or_default();
            let w = spec.window_of(at);
            if w.end > to || w.start < pass.next {
                // The window the stream began in: its own report gives its figures.
                continue;
            }
            let (_, totals) = windows
                .entry(w.start)
                .or_insert_with(|| (w, Totals::default()));
            if totals.add_tally(&row.utility, &row.tally).is_err() {
                warn!(window = %w.id(), "A window's imported revenue is out of range; it is read again when a message cites it.");
                windows.remove(&w.start);
            }
        }
        telemetry::ReadBy::Import.read(sales);
        let windows: Vec<(Window, Totals)> = windows.into_values().collect();
        if let Some(p) = history.pass.as_mut() {
            p.next = to;
            p.sales = p.sales.saturating_add(sales);
            p.windows = p.windows.saturating_add(windows.len() as u64);
            p.queries = p.queries.saturating_add(1);
        }
        self.store
            .put_history_step(history, &activity, &windows)
            .await?;
        Ok(())
    }
}

/// The longest wait between failed import steps.
const MAX_WAIT: Duration = Duration::from_secs(30 * 60);

fn retry_policy() -> backoff::ExponentialBackoff {
    backoff::ExponentialBackoff {
        initial_interval: Duration::from_secs(30),
        max_interval: MAX_WAIT,
        max_elapsed_time: None,
        ..Default::default()
    }
}
