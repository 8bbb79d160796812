//! Period summaries (`POWER_REVENUE_SUMMARY`): queued in the write that settles a period's last
//! report (sent or undeliverable), then prepared from the ledger (each window's report plus its
//! corrections so far, their sum, and the previous period's the same way: no query of its
//! own), fixed, and posted like a report: each message marked after Slack's 2xx, so a summary
//! is posted exactly once and a restart continues where it stopped. Its messages go after the
//! round's reports.

use super::{DeliverError, Deliverer, Later, Next};
use crate::compare::Compared;
use crate::period::PeriodSpec;
use crate::report::summary::{self as wording, SummaryView};
use crate::store::Outboxed;
use crate::store::{Messages, ReportRecord, Stage, SummaryRecord};
use crate::telemetry;
use crate::window::{Tally, Totals, Window};
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

/// A period's figures.
#[derive(Debug, Default)]
struct PeriodTotals {
    /// Per utility, over the whole period.
    totals: Totals,
    /// Each window of the period in order, with its total.
    by_window: Vec<(Window, Tally)>,
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
            if let Next::EndRound(why) = self.deliver(&mut summary, shutdown).await? {
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
}
