//! What the one posting loop needs of an outbox message, whichever it is (a report, a summary,
//! an alert): its parts, its moves, its attempts, and the writes that save it. One loop posts
//! them all ([`Deliverer::deliver`]), with one backoff (`super::Deliverer::post`).

use super::{DeliverError, Deliverer, Next, Posted};
use crate::alert::Alert;
use crate::store::{
    AlertRecord, Outboxed, Progress, ReportRecord, Store, StoreError, SummaryRecord,
};
use crate::telemetry;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// An outbox record as the posting loop handles it: its moves ([`Outboxed`]), and what
/// saving and refusing it mean.
pub(super) trait Outgoing: Outboxed {
    /// For logs: "report", "summary", "alert".
    const KIND: &'static str;
    /// The alert a refusal raises, if any (an alert refused raises none).
    fn alert_refused(&self, error: String) -> Option<Alert>;
    /// Saves its progress, flushed.
    async fn save(&self, store: &Store) -> Result<(), StoreError>;
    /// Saves it refused for good (a report also queues its period's summary).
    async fn save_refused(&self, deliverer: &Deliverer) -> Result<(), StoreError>;
    /// Saves it sent, with what that settles, in one write.
    async fn save_sent(&self, deliverer: &Deliverer) -> Result<(), StoreError>;
}

impl Deliverer {
    /// Posts one ready message's parts in order, each retried with backoff for up to
    /// [`super::SLACK_PATIENCE`]; progress is saved after every accepted part, and the message
    /// is marked sent only after the last.
    pub(super) async fn deliver<R: Outgoing>(
        &self,
        record: &mut R,
        shutdown: &CancellationToken,
    ) -> Result<Next, DeliverError> {
        while let Some(payload) = record.next_part().cloned() {
            match self.post(record, payload, shutdown).await? {
                Posted::Accepted => {}
                Posted::Later(why) => return Ok(Next::EndRound(why)),
                Posted::Refused => return Ok(Next::Continue),
            }
            if record.part_accepted(Utc::now())? == Progress::AllAccepted {
                break;
            }
            record.save(&self.store).await?;
            info!(message = %record.id(), part = record.parts_accepted(), "Message part posted.");
        }
        record.sent(Utc::now())?;
        record.save_sent(self).await?;
        Ok(Next::Continue)
    }

    /// The alerts queued, oldest first: posted at the start of each round.
    pub(super) async fn alerts(&self, shutdown: &CancellationToken) -> Result<Next, DeliverError> {
        for mut alert in self.store.pending_alerts()? {
            if let Next::EndRound(why) = self.deliver(&mut alert, shutdown).await? {
                return Ok(Next::EndRound(why));
            }
        }
        Ok(Next::Continue)
    }
}

impl Outgoing for ReportRecord {
    const KIND: &'static str = "report";
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
    /// `Sent`, what the report settles (its corrections, the ledger) and the summary of the
    /// period it ends (if any), in one write.
    async fn save_sent(&self, deliverer: &Deliverer) -> Result<(), StoreError> {
        deliverer
            .store
            .mark_delivered_then(self, deliverer.summary_after(self))
            .await?;
        if let Some(settled) = self.settles() {
            metrics::counter!(telemetry::CORRECTIONS_TOTAL).increment(settled.corrections);
            metrics::counter!(telemetry::CHANGES_UNREPORTED_TOTAL)
                .increment(settled.unreported.count);
            metrics::counter!(telemetry::CHANGES_BEYOND_HORIZON_TOTAL)
                .increment(settled.beyond_horizon.count);
        }
        metrics::counter!(telemetry::REPORTS_POSTED_TOTAL).increment(1);
        info!(window = %self.window.id(), attempts = self.attempts, parts = self.parts_accepted(), "Report posted.");
        Ok(())
    }
}

impl Outgoing for SummaryRecord {
    const KIND: &'static str = "summary";
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
    async fn save_sent(&self, deliverer: &Deliverer) -> Result<(), StoreError> {
        deliverer.store.put_summary(self).await?;
        metrics::counter!(telemetry::SUMMARIES_POSTED_TOTAL).increment(1);
        info!(period = %self.period.id(), attempts = self.attempts, "Summary posted.");
        Ok(())
    }
}

impl Outgoing for AlertRecord {
    const KIND: &'static str = "alert";
    fn alert_refused(&self, _error: String) -> Option<Alert> {
        None
    }
    async fn save(&self, store: &Store) -> Result<(), StoreError> {
        store.put_alert(self).await
    }
    async fn save_refused(&self, deliverer: &Deliverer) -> Result<(), StoreError> {
        deliverer.store.put_alert(self).await
    }
    async fn save_sent(&self, deliverer: &Deliverer) -> Result<(), StoreError> {
        deliverer.store.put_alert(self).await?;
        info!(kind = %self.kind, "Alert posted.");
        Ok(())
    }
}
