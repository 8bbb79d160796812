//! One period's summary in the outbox. It enters the outbox in the same write that settles its
//! period's last report (see `Store::mark_delivered_then`), keyed by the period's start, so it
//! is queued exactly once; it goes through the one delivery machine ([`Delivery`]), what it
//! says being the period's total.

use super::{Delivery, DeliveryStatus, MessageId, Messages, Progress, Stage, Transition};
use crate::window::{Tally, Window};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One period's summary in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryRecord {
    /// The period summed up, `[start, end)`; its id is its start.
    pub period: Window,
    /// Where it is, with the period's total once rendered; changed only through the
    /// transitions below.
    delivery: Delivery<Tally>,
    /// Slack attempts so far, and the last one's error (shown by `status`).
    pub attempts: u32,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl SummaryRecord {
    /// Queued: its period's last report is settled.
    pub fn closed(period: Window, now: DateTime<Utc>) -> Self {
        Self {
            period,
            delivery: Delivery::Closed,
            attempts: 0,
            last_error: None,
            updated_at: now,
        }
    }

    pub fn id(&self) -> MessageId {
        MessageId::Summary(self.period.id())
    }

    pub fn stage(&self) -> Stage {
        self.delivery.stage()
    }

    pub fn status(&self) -> DeliveryStatus {
        DeliveryStatus::of(&self.delivery)
    }

    pub fn is_pending(&self) -> bool {
        self.delivery.is_pending()
    }

    /// The total posted (or to be posted); `None` before it is rendered.
    pub fn total(&self) -> Option<Tally> {
        self.delivery.what().copied()
    }

    pub(crate) fn next_part(&self) -> Option<&Value> {
        self.delivery.next_part()
    }

    pub fn parts_accepted(&self) -> usize {
        self.delivery.parts_accepted()
    }

    /// Closed → Ready: its figures rendered, nothing posted yet.
    pub fn ready(
        &mut self,
        total: Tally,
        messages: Messages,
        now: DateTime<Utc>,
    ) -> Result<(), Transition> {
        self.delivery.ready(self.id(), total, messages)?;
        self.updated_at = now;
        Ok(())
    }

    pub fn part_accepted(&mut self, now: DateTime<Utc>) -> Result<Progress, Transition> {
        let progress = self.delivery.part_accepted(self.id())?;
        self.last_error = None;
        self.updated_at = now;
        Ok(progress)
    }

    pub fn sent(&mut self, at: DateTime<Utc>) -> Result<(), Transition> {
        self.delivery.sent(self.id(), at)?;
        self.updated_at = at;
        Ok(())
    }

    pub fn refused(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), Transition> {
        self.delivery.refused(self.id(), reason)?;
        self.updated_at = now;
        Ok(())
    }
}
