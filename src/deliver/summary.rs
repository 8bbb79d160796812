//! Period summaries (`POWER_REVENUE_SUMMARY`): queued in the write that settles a period's last
//! report (sent or undeliverable), then prepared from the database (one `$facet` over the whole
//! period, bucketed by window, and the previous period's figures), fixed, and posted like a
//! report: each message marked after Slack's 2xx, so a summary is posted exactly once and a
//! restart continues where it stopped. A summary's queries run beside the outbox
//! ([`super::summary_queries`]) and its messages go after the round's reports, so no report
//! waits for a summary; one whose query fails is tried again with backoff ([`super::retry`]).

use super::summary_queries::{Answer, Queried, SummaryWork};
use super::{DeliverError, Deliverer, Later, Next, Posted};
use crate::alert::Alert;
use crate::compare::Compared;
use crate::reconcile::{PeriodTotals, ReconcileError};
use crate::report::summary::{self as wording, SummaryView};
use crate::store::{
    Messages, Progress, ReportRecord, Stage, Store, StoreError, SummaryRecord, Transition,
};
use crate::telemetry;
use crate::window::WindowId;
use chrono::{DateTime, Utc};
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// How preparing a summary from its queries' answers ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prepared {
    /// Rendered and saved ready.
    Ready,
    /// The period's query failed or timed out: it stays closed, tried again later.
    Failed,
}

/// What posting needs of an outbox record (a report or a summary): its attempts and last
/// error, giving it up, and saving it.
pub(super) trait Outgoing {
    /// For logs.
    const KIND: &'static str;
    fn id(&self) -> WindowId;
    fn attempts_mut(&mut self) -> &mut u32;
    fn last_error_mut(&mut self) -> &mut Option<String>;
    fn parts_accepted(&self) -> usize;
    fn refused(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), Transition>;
    /// The alert a refusal raises, if any.
    fn alert_refused(&self, error: String) -> Option<Alert>;
    async fn save(&self, store: &Store) -> Result<(), StoreError>;
    /// Saves the record once refused for good (a report also queues its period's summary).
    async fn save_refused(&self, deliverer: &Deliverer) -> Result<(), StoreError>;
}

impl Outgoing for ReportRecord {
    const KIND: &'static str = "report";
    fn id(&self) -> WindowId {
        self.window.id()
    }
    fn attempts_mut(&mut self) -> &mut u32 {
        &mut self.attempts
    }
    fn last_error_mut(&mut self) -> &mut Option<String> {
        &mut self.last_error
    }
    fn parts_accepted(&self) -> usize {
        ReportRecord::parts_accepted(self)
    }
    fn refused(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), Transition> {
        ReportRecord::refused(self, reason, now)
    }
    fn alert_refused(&self, error: String) -> Option<Alert> {
        Some(Alert::Undeliverable {
            window: self.window.id(),
            error,
        })
    }
    async fn save(&self, store: &Store) -> Result<(), StoreError> {
        store.put_report(self).await
    }
    async fn save_refused(&self, deliverer: &Deliverer) -> Result<(), StoreError> {
        deliverer
            .store
            .put_report_then(self, deliverer.summary_after(self))
            .await
    }
}

impl Outgoing for SummaryRecord {
    const KIND: &'static str = "summary";
    fn id(&self) -> WindowId {
        self.period.id()
    }
    fn attempts_mut(&mut self) -> &mut u32 {
        &mut self.attempts
    }
    fn last_error_mut(&mut self) -> &mut Option<String> {
        &mut self.last_error
    }
    fn parts_accepted(&self) -> usize {
        SummaryRecord::parts_accepted(self)
    }
    fn refused(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), Transition> {
        SummaryRecord::refused(self, reason, now)
    }
    /// Refused for its content (blocks, length, even as text): a report's alert would not say
    /// so, and the period is never summarised.
    fn alert_refused(&self, error: String) -> Option<Alert> {
        Some(Alert::SummaryUndeliverable {
            period: self.period.id(),
            error,
        })
    }
    async fn save(&self, store: &Store) -> Result<(), StoreError> {
        store.put_summary(self).await
    }
    async fn save_refused(&self, deliverer: &Deliverer) -> Result<(), StoreError> {
        deliverer.store.put_summary(self).await
    }
}

impl Deliverer {
    /// The summary a settled report queues: that of the period its window ends, if summaries
    /// are on.
    pub(super) fn summary_after(&self, record: &ReportRecord) -> Option<SummaryRecord> {
        let period = self.config.summary?.ending_with(&record.window)?;
        Some(SummaryRecord::closed(period, Utc::now()))
    }

    /// Prepares (from answers in) and posts the pending summaries, oldest first; starts the
    /// queries of those without answers, unless they run already or failed and are not due
    /// again. Ends the round where Slack cannot take one now, so messages stay in order.
    pub(super) async fn summaries(
        &self,
        work: &mut SummaryWork,
        shutdown: &CancellationToken,
    ) -> Result<Next, DeliverError> {
        let Some(spec) = self.config.summary else {
            return Ok(Next::Continue);
        };
        let pending = self
            .store
            .summaries()?
            .into_iter()
            .filter(SummaryRecord::is_pending)
            .collect::<Vec<_>>();
        for mut summary in pending {
            if shutdown.is_cancelled() {
                return Ok(Next::EndRound(Later::ShuttingDown));
            }
            // Queued with its period's last report, not yet posted: a crash here must neither
            // lose the summary nor post it twice.
            crate::failpoint::hit("before_summary");
            if summary.stage() == Stage::Closed {
                let id = summary.period.id();
                let answer = work.take_or_start(
                    &self.coll,
                    &self.config,
                    spec,
                    summary.period,
                    Instant::now(),
                );
                let Answer::Ready(queried) = answer else {
                    continue;
                };
                match self.prepare_summary(&mut summary, queried).await? {
                    Prepared::Ready => work.retries.settled(id),
                    Prepared::Failed => {
                        let wait = work.retries.failed(id, Instant::now());
                        metrics::counter!(telemetry::SUMMARY_QUERY_FAILURES_TOTAL).increment(1);
                        warn!(period = %id, retry_in_secs = wait.as_secs(), "Summary not prepared; trying again later.");
                        continue;
                    }
                }
            }
            if let Next::EndRound(why) = self.deliver_summary(&mut summary, shutdown).await? {
                return Ok(Next::EndRound(why));
            }
        }
        Ok(Next::Continue)
    }

    /// Renders a closed summary from its queries' answers and saves it ready; `Failed` when
    /// the period's query failed (no figure is posted that is not the database's): it is left
    /// closed, as it was.
    async fn prepare_summary(
        &self,
        summary: &mut SummaryRecord,
        queried: Queried,
    ) -> Result<Prepared, DeliverError> {
        let Some(spec) = self.config.summary else {
            return Ok(Prepared::Failed);
        };
        let period = summary.period;
        let previous_period = spec.previous(&period);
        let Queried { figures, previous } = queried;
        let figures: PeriodTotals = match figures {
            Ok(f) => f,
            Err(e) => {
                log_failed(&period.id(), &e);
                return Ok(Prepared::Failed);
            }
        };
        let previous = Compared {
            window: previous_period,
            totals: previous
                .inspect_err(|e| {
                    warn!(error = %e, period = %period.id(), "The previous period's query failed; the summary says n/a for it.");
                    metrics::counter!(telemetry::COMPARISON_FAILURES_TOTAL).increment(1);
                })
                .ok(),
        };
        let view = SummaryView {
            period,
            tz: spec.tz(),
            length_secs: spec.length_secs(),
            totals: &figures.totals,
            by_window: &figures.by_window,
            previous: &previous,
        };
        let message = wording::render(&view);
        summary.ready(
            figures.totals.total(),
            Messages::new(message, vec![]),
            Utc::now(),
        )?;
        self.store.put_summary(summary).await?;
        Ok(Prepared::Ready)
    }

    /// Posts a ready summary's messages in order, each marked after its 2xx, then `Sent`.
    async fn deliver_summary(
        &self,
        summary: &mut SummaryRecord,
        shutdown: &CancellationToken,
    ) -> Result<Next, DeliverError> {
        while let Some(payload) = summary.next_part().cloned() {
            match self.post(summary, payload, shutdown).await? {
                Posted::Accepted => {}
                Posted::Later(why) => return Ok(Next::EndRound(why)),
                Posted::Refused => return Ok(Next::Continue),
            }
            if summary.part_accepted(Utc::now())? == Progress::AllAccepted {
                break;
            }
            self.store.put_summary(summary).await?;
        }
        summary.sent(Utc::now())?;
        self.store.put_summary(summary).await?;
        metrics::counter!(telemetry::SUMMARIES_POSTED_TOTAL).increment(1);
        info!(period = %summary.period.id(), attempts = summary.attempts, "Summary posted.");
        Ok(Next::Continue)
    }
}

fn log_failed(period: &WindowId, e: &ReconcileError) {
    error!(error = %e, %period, "The summary's query failed.");
}
