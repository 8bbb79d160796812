//! Period summaries (`POWER_REVENUE_SUMMARY`): queued in the write that settles a period's last
//! report (sent or undeliverable), then prepared from the ledger (each window's report plus its
//! corrections so far, their sum, and the previous period's the same way: no query of its
//! own), fixed, and posted like a report: each message marked after Slack's 2xx, so a summary
//! is posted exactly once and a restart continues where it stopped. Its messages go after the
//! round's reports.

use super::{DeliverError, Deliverer, Later, Next, Posted};
use crate::alert::Alert;
use crate::compare::Compared;
use crate::period::PeriodSpec;
use crate::report::summary::{self as wording, SummaryView};
use crate::store::{
    Messages, Progress, ReportRecord, Stage, Store, StoreError, SummaryRecord, Transition,
};
use crate::telemetry;
use crate::window::{Tally, Totals, Window, WindowId};
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// A period's figures.
#[derive(Debug, Default)]
struct PeriodTotals {
    /// Per utility, over the whole period.
    totals: Totals,
    /// Each window of the period in order, with its total.
    by_window: Vec<(Window, Tally)>,
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

    /// Prepares (from the ledger) and posts the pending summaries, oldest first. Ends the
    /// round where Slack cannot take one now, so messages stay in order.
    pub(super) async fn summaries(
        &self,
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
                let Some(figures) = self.period_told(spec, &summary.period).await? else {
                    metrics::counter!(telemetry::SUMMARY_QUERY_FAILURES_TOTAL).increment(1);
                    warn!(period = %summary.period.id(), "Summary not prepared: a window the ledger lacks could not be read; trying again next round.");
                    continue;
                };
                self.prepare_summary(spec, &mut summary, figures).await?;
            }
            if let Next::EndRound(why) = self.deliver_summary(&mut summary, shutdown).await? {
                return Ok(Next::EndRound(why));
            }
        }
        Ok(Next::Continue)
    }

    /// A period's figures as the channel was told them: each window's report plus its
    /// corrections so far, and their sum. `None` when a window the ledger lacks cannot be read
    /// now (no figure is posted that is neither told nor the database's).
    async fn period_told(
        &self,
        spec: PeriodSpec,
        period: &Window,
    ) -> Result<Option<PeriodTotals>, DeliverError> {
        let mut figures = PeriodTotals::default();
        for w in spec.windows_in(period) {
            let Some(told) = self.told(w, "summary").await? else {
                return Ok(None);
            };
            if figures.totals.merge(&told).is_err() {
                error!(period = %period.id(), "A period's revenue is beyond what can be summed; its summary is not posted.");
                return Ok(None);
            }
            figures.by_window.push((w, told.total()));
        }
        Ok(Some(figures))
    }

    /// Renders a closed summary from its period's figures and the previous period's, and
    /// saves it ready.
    async fn prepare_summary(
        &self,
        spec: PeriodSpec,
        summary: &mut SummaryRecord,
        figures: PeriodTotals,
    ) -> Result<(), DeliverError> {
        let period = summary.period;
        let previous_period = spec.previous(&period);
        let previous = Compared {
            window: previous_period,
            totals: self
                .period_told(spec, &previous_period)
                .await?
                .map(|p| p.totals),
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
        Ok(())
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
