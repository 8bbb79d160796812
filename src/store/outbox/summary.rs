//! One period's summary in the outbox. It enters the outbox in the same write that settles its
//! period's last report (see `Store::mark_delivered_then`), keyed by the period's start, so it
//! is queued exactly once; it goes through the one delivery machine ([`Delivery`]), what it
//! says being the period's total.

use super::{Delivery, MessageId, Messages, Outboxed, Transition};
use crate::window::{Tally, Window};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

    /// The total posted (or to be posted); `None` before it is rendered.
    pub fn total(&self) -> Option<Tally> {
        self.delivery.what().copied()
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
}

outboxed!(SummaryRecord, Tally, |s| MessageId::Summary(s.period.id()));
