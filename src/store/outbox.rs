//! One window's report in the outbox, as a state machine that cannot hold an impossible state:
//! `Closed → Ready { messages } → Sent | Undeliverable`. Each state carries what only it has
//! (the reconciliation from `Ready` on; the messages and how many Slack accepted while they
//! matter; the settlement until it is applied), and every move is a pure method that refuses
//! an impossible one ([`Transition`]).

use super::Settlement;
use crate::compare::Comparison;
use crate::window::{ClosedBy, OpenWindow, Totals, Window, WindowId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

mod messages;
mod summary;

pub use messages::Messages;
pub use summary::{SummaryRecord, SummaryState};

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
    /// The database's figures for the windows the report compares with, fixed with its
    /// messages; `None` until then.
    pub compared: Option<Comparison>,
    /// Where the report is; changed only through the transitions below.
    #[serde(rename = "outbox")]
    delivery: Delivery,
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

/// Delivery state of one window's report, with what each state holds. Externally tagged
/// (`"closed"`, `{"ready": {…}}`): an internally tagged enum is buffered by serde, and the
/// buffer cannot read the settlement's map keys (window ids) back as numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Closed; waiting for reconciliation and rendering.
    Closed,
    /// Rendered; waiting for Slack's 2xx on every message.
    Ready(Ready),
    Sent(Sent),
    /// Slack refused it for good (e.g. `no_service`); a human must act.
    Undeliverable(Undeliverable),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    pub reconciled: Reconciled,
    /// Fixed before the first attempt, so retries send the same bytes.
    pub messages: Messages,
    /// What the report settles once Slack has taken it (applied with the `Sent` mark; a report
    /// that is never delivered settles nothing, so its corrections come again).
    pub settles: Settlement,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub at: DateTime<Utc>,
    pub reconciled: Reconciled,
    /// How many messages it took.
    pub parts: usize,
    /// What it settled, applied in the same write as this mark.
    pub settled: Settlement,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undeliverable {
    pub reason: String,
    pub reconciled: Reconciled,
    /// As far as Slack took them.
    pub messages: Messages,
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

/// Where a report is, without what it holds: for messages and the API's `delivery` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Closed,
    Ready,
    Sent,
    Undeliverable,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Ready => "ready",
            Self::Sent => "sent",
            Self::Undeliverable => "undeliverable",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a report is, as `status --json` shows it (`delivery`, documented in the OpenAPI
/// document as `DeliveryStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryStatus {
    Closed,
    Ready,
    Sent { at: DateTime<Utc> },
    Undeliverable { reason: String },
}

/// A move a report was asked to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    MadeReady,
    PartAccepted,
    MarkedSent,
    Refused,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MadeReady => "made ready",
            Self::PartAccepted => "given an accepted part",
            Self::MarkedSent => "marked sent",
            Self::Refused => "marked undeliverable",
        })
    }
}

/// An impossible move; the record is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Transition {
    #[error("the report for window {window} is {stage}: it cannot be {step}")]
    Wrong {
        window: WindowId,
        stage: Stage,
        step: Step,
    },
    #[error("the report for window {window} has {left} part(s) Slack has not accepted: it cannot be marked sent")]
    PartsLeft { window: WindowId, left: usize },
    #[error("Slack has accepted every part of the report for window {window} already")]
    NoPartLeft { window: WindowId },
}

/// What is left to post after a part was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    PartsLeft,
    AllAccepted,
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

    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    pub fn stage(&self) -> Stage {
        match self.delivery {
            Delivery::Closed => Stage::Closed,
            Delivery::Ready(_) => Stage::Ready,
            Delivery::Sent(_) => Stage::Sent,
            Delivery::Undeliverable(_) => Stage::Undeliverable,
        }
    }

    pub fn status(&self) -> DeliveryStatus {
        match &self.delivery {
            Delivery::Closed => DeliveryStatus::Closed,
            Delivery::Ready(_) => DeliveryStatus::Ready,
            Delivery::Sent(s) => DeliveryStatus::Sent { at: s.at },
            Delivery::Undeliverable(u) => DeliveryStatus::Undeliverable {
                reason: u.reason.clone(),
            },
        }
    }

    pub fn is_pending(&self) -> bool {
        matches!(self.delivery, Delivery::Closed | Delivery::Ready(_))
    }

    /// What the database said; `None` while the report is closed.
    pub fn reconciled(&self) -> Option<&Reconciled> {
        match &self.delivery {
            Delivery::Closed => None,
            Delivery::Ready(r) => Some(&r.reconciled),
            Delivery::Sent(s) => Some(&s.reconciled),
            Delivery::Undeliverable(u) => Some(&u.reconciled),
        }
    }

    /// The figures the report posts: the database's, else the stream's (when its query failed,
    /// or before it ran).
    pub fn shown(&self) -> &Totals {
        self.reconciled()
            .and_then(Reconciled::database)
            .unwrap_or(&self.streamed)
    }

    /// The next message to post: `None` unless ready with a message Slack has not accepted.
    pub(crate) fn next_part(&self) -> Option<&Value> {
        match &self.delivery {
            Delivery::Ready(r) => r.messages.next(),
            _ => None,
        }
    }

    /// How many messages Slack has accepted.
    pub fn parts_accepted(&self) -> usize {
        match &self.delivery {
            Delivery::Closed => 0,
            Delivery::Ready(Ready { messages, .. })
            | Delivery::Undeliverable(Undeliverable { messages, .. }) => messages.accepted,
            Delivery::Sent(s) => s.parts,
        }
    }

    fn wrong(&self, step: Step) -> Transition {
        Transition::Wrong {
            window: self.window.id(),
            stage: self.stage(),
            step,
        }
    }

    /// Closed → Ready: reconciled and rendered, nothing posted yet.
    pub fn ready(
        &mut self,
        reconciled: Reconciled,
        messages: Messages,
        settles: Settlement,
        now: DateTime<Utc>,
    ) -> Result<(), Transition> {
        if self.delivery != Delivery::Closed {
            return Err(self.wrong(Step::MadeReady));
        }
        let mut messages = messages;
        messages.accepted = 0;
        self.delivery = Delivery::Ready(Ready {
            reconciled,
            messages,
            settles,
        });
        self.updated_at = now;
        Ok(())
    }

    /// Slack accepted the next message (its error, if any, is over).
    pub fn part_accepted(&mut self, now: DateTime<Utc>) -> Result<Progress, Transition> {
        let window = self.window.id();
        let Delivery::Ready(ready) = &mut self.delivery else {
            return Err(self.wrong(Step::PartAccepted));
        };
        let progress = ready
            .messages
            .accept_next()
            .ok_or(Transition::NoPartLeft { window })?;
        self.last_error = None;
        self.updated_at = now;
        Ok(progress)
    }

    /// Ready, every message accepted → Sent. Its settlement goes with it, for
    /// [`super::Store::mark_delivered`] to apply in the same write.
    pub fn sent(&mut self, at: DateTime<Utc>) -> Result<(), Transition> {
        let ready = self.take_ready(Step::MarkedSent)?;
        let left = ready.messages.len().saturating_sub(ready.messages.accepted);
        if left > 0 {
            self.delivery = Delivery::Ready(ready);
            return Err(Transition::PartsLeft {
                window: self.window.id(),
                left,
            });
        }
        self.delivery = Delivery::Sent(Sent {
            at,
            reconciled: ready.reconciled,
            parts: ready.messages.len(),
            settled: ready.settles,
        });
        self.updated_at = at;
        Ok(())
    }

    /// Ready → Undeliverable: Slack refused a message for good. Nothing is settled.
    pub fn refused(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), Transition> {
        let ready = self.take_ready(Step::Refused)?;
        self.delivery = Delivery::Undeliverable(Undeliverable {
            reason,
            reconciled: ready.reconciled,
            messages: ready.messages,
        });
        self.updated_at = now;
        Ok(())
    }

    /// Takes the ready state out for `step` to replace; any other state stays, refused.
    fn take_ready(&mut self, step: Step) -> Result<Ready, Transition> {
        match std::mem::replace(&mut self.delivery, Delivery::Closed) {
            Delivery::Ready(ready) => Ok(ready),
            other => {
                self.delivery = other;
                Err(self.wrong(step))
            }
        }
    }
}

#[cfg(test)]
mod tests;
