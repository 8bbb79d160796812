//! The outbox's records: a window's report ([`ReportRecord`], here), a period's summary
//! ([`SummaryRecord`]) and an alert ([`AlertRecord`]), each delivered through the one state
//! machine ([`Delivery`]) and posted by the one loop (`crate::deliver`). A report's record adds
//! what only a report has: the stream's figures at close, the reconciliation and what it
//! settles, its comparisons, and its queries' progress.

use super::Settlement;
use crate::compare::Comparison;
use crate::window::{ClosedBy, OpenWindow, Totals, Window};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `impl Outboxed` for a record whose fields are named as in every outbox record
/// (`delivery`, `attempts`, `last_error`, `updated_at`), saying what it says and its id.
macro_rules! outboxed {
    ($record:ty, $what:ty, |$s:ident| $id:expr) => {
        impl Outboxed for $record {
            type What = $what;
            fn id(&self) -> MessageId {
                let $s = self;
                $id
            }
            fn delivery(&self) -> &Delivery<$what> {
                &self.delivery
            }
            fn delivery_mut(&mut self) -> &mut Delivery<$what> {
                &mut self.delivery
            }
            fn attempts_mut(&mut self) -> &mut u32 {
                &mut self.attempts
            }
            fn last_error_mut(&mut self) -> &mut Option<String> {
                &mut self.last_error
            }
            fn touch(&mut self, now: DateTime<Utc>) {
                self.updated_at = now;
            }
        }
    };
}

mod alert;
mod delivery;
mod messages;
mod summary;

pub use alert::AlertRecord;
pub use delivery::{
    Delivery, DeliveryStatus, MessageId, Outboxed, Progress, Ready, Sent, Stage, Step, Transition,
    Undeliverable,
};
pub use messages::Messages;
pub use summary::SummaryRecord;

/// One window's report in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRecord {
    pub window: Window,
    pub streamed: Totals,
    pub streamed_partial: bool,
    /// Whether the stream had caught up when the window closed.
    pub closed_by: ClosedBy,
    pub events_applied: u64,
    /// The live totals were rebuilt from the database (change-stream history was lost).
    pub recomputed: bool,
    /// The figures of the windows the report compares with, fixed with its messages; `None`
    /// until then.
    pub compared: Option<Comparison>,
    /// Where the report is; changed only through the transitions below.
    #[serde(rename = "outbox")]
    delivery: Delivery<Reported>,
    /// When this report's queries began, while they run: still set when a process starts
    /// means the one before died during them (see `crate::limits::after_interrupted`).
    pub queries_started: Option<DateTime<Utc>>,
    /// Rounds of this report's queries begun and not finished, in a row.
    pub queries_unfinished: u32,
    /// Slack attempts so far, and the last one's error (shown by `status`).
    pub attempts: u32,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// What a report says, fixed when it is rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reported {
    pub reconciled: Reconciled,
    /// What the report settles once Slack has taken it (applied with the `Sent` mark; a report
    /// that is never delivered settles nothing, so its corrections come again).
    pub settles: Settlement,
}

/// What the database said about a closed window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reconciled {
    /// Its figures: what the report posts.
    Database(Totals),
    /// The query failed after retries (the cause's text): the report carries the stream's.
    Failed { error: String },
}

impl Reconciled {
    pub fn database(&self) -> Option<&Totals> {
        match self {
            Self::Database(totals) => Some(totals),
            Self::Failed { .. } => None,
        }
    }
}

impl ReportRecord {
    pub fn closed(open: OpenWindow, closed_by: ClosedBy, now: DateTime<Utc>) -> Self {
        Self {
            window: open.window,
            streamed_partial: open.is_partial(),
            closed_by,
            streamed: open.totals,
            events_applied: open.events_applied,
            recomputed: open.recomputed,
            compared: None,
            delivery: Delivery::Closed,
            queries_started: None,
            queries_unfinished: 0,
            attempts: 0,
            last_error: None,
            updated_at: now,
        }
    }

    /// What the database said; `None` while the report is closed.
    pub fn reconciled(&self) -> Option<&Reconciled> {
        self.delivery.what().map(|w| &w.reconciled)
    }

    /// What the report settles (or settled); `None` while closed.
    pub fn settles(&self) -> Option<&Settlement> {
        self.delivery.what().map(|w| &w.settles)
    }

    /// The figures the report posts: the database's, else the stream's (when its query failed,
    /// or before it ran).
    pub fn shown(&self) -> &Totals {
        self.reconciled()
            .and_then(Reconciled::database)
            .unwrap_or(&self.streamed)
    }

    /// Closed → Ready: reconciled and rendered, nothing posted yet.
    pub fn ready(
        &mut self,
        reconciled: Reconciled,
        messages: Messages,
        settles: Settlement,
        now: DateTime<Utc>,
    ) -> Result<(), Transition> {
        let what = Reported {
            reconciled,
            settles,
        };
        self.delivery.ready(self.id(), what, messages)?;
        self.updated_at = now;
        Ok(())
    }
}

outboxed!(ReportRecord, Reported, |r| MessageId::Report(r.window.id()));

#[cfg(test)]
mod tests;
