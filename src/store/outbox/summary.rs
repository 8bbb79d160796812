//! One period's summary in the outbox, as a state machine like a report's:
//! `Closed → Ready { messages } → Sent | Undeliverable`. It enters the outbox in the same write
//! that settles its period's last report (see `Store::mark_delivered_then`), keyed by the
//! period's start, so it is queued exactly once; its messages are fixed before the first
//! attempt and each is marked after Slack's 2xx, so it is posted exactly once. A new kind of
//! record under a key prefix of its own: reports and their stored shapes are untouched.

use super::{Messages, Progress, Stage, Step, Transition};
use crate::window::{Tally, Window};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One period's summary in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryRecord {
    /// The period summed up, `[start, end)`; its id is its start.
    pub period: Window,
    /// Where it is; changed only through the transitions below.
    state: SummaryState,
    /// Slack attempts so far, and the last one's error (shown by `status`).
    pub attempts: u32,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// Where a summary is, with what each state holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SummaryState {
    /// Its period's last report is settled; waiting for its queries and rendering.
    Closed,
    /// Rendered from the database's figures; waiting for Slack's 2xx on every message.
    Ready {
        /// The period's total as posted.
        total: Tally,
        messages: Messages,
    },
    Sent {
        at: DateTime<Utc>,
        total: Tally,
        /// How many messages it took.
        parts: usize,
    },
    /// Slack refused it for good; a human must act.
    Undeliverable {
        reason: String,
        total: Tally,
        /// As far as Slack took them.
        messages: Messages,
    },
}

impl SummaryRecord {
    /// Queued: its period's last report is settled.
    pub fn closed(period: Window, now: DateTime<Utc>) -> Self {
        Self {
            period,
            state: SummaryState::Closed,
            attempts: 0,
            last_error: None,
            updated_at: now,
        }
    }

    pub fn state(&self) -> &SummaryState {
        &self.state
    }

    pub fn stage(&self) -> Stage {
        match self.state {
            SummaryState::Closed => Stage::Closed,
            SummaryState::Ready { .. } => Stage::Ready,
            SummaryState::Sent { .. } => Stage::Sent,
            SummaryState::Undeliverable { .. } => Stage::Undeliverable,
        }
    }

    pub fn is_pending(&self) -> bool {
        matches!(
            self.state,
            SummaryState::Closed | SummaryState::Ready { .. }
        )
    }

    /// The total posted (or to be posted); `None` before it is rendered.
    pub fn total(&self) -> Option<Tally> {
        match &self.state {
            SummaryState::Closed => None,
            SummaryState::Ready { total, .. }
            | SummaryState::Sent { total, .. }
            | SummaryState::Undeliverable { total, .. } => Some(*total),
        }
    }

    /// The next message to post: `None` unless ready with a message Slack has not accepted.
    pub(crate) fn next_part(&self) -> Option<&Value> {
        match &self.state {
            SummaryState::Ready { messages, .. } => messages.next(),
            _ => None,
        }
    }

    /// How many messages Slack has accepted.
    pub fn parts_accepted(&self) -> usize {
        match &self.state {
            SummaryState::Closed => 0,
            SummaryState::Ready { messages, .. } | SummaryState::Undeliverable { messages, .. } => {
                messages.accepted
            }
            SummaryState::Sent { parts, .. } => *parts,
        }
    }

    fn wrong(&self, step: Step) -> Transition {
        Transition::Wrong {
            window: self.period.id(),
            stage: self.stage(),
            step,
        }
    }

    /// Closed → Ready: the database's figures rendered, nothing posted yet.
    pub fn ready(
        &mut self,
        total: Tally,
        messages: Messages,
        now: DateTime<Utc>,
    ) -> Result<(), Transition> {
        if self.state != SummaryState::Closed {
            return Err(self.wrong(Step::MadeReady));
        }
        let mut messages = messages;
        messages.accepted = 0;
        self.state = SummaryState::Ready { total, messages };
        self.updated_at = now;
        Ok(())
    }

    /// Slack accepted the next message.
    pub fn part_accepted(&mut self, now: DateTime<Utc>) -> Result<Progress, Transition> {
        let window = self.period.id();
        let SummaryState::Ready { messages, .. } = &mut self.state else {
            return Err(self.wrong(Step::PartAccepted));
        };
        let progress = messages
            .accept_next()
            .ok_or(Transition::NoPartLeft { window })?;
        self.last_error = None;
        self.updated_at = now;
        Ok(progress)
    }

    /// Ready, every message accepted → Sent.
    pub fn sent(&mut self, at: DateTime<Utc>) -> Result<(), Transition> {
        let SummaryState::Ready { total, messages } = &self.state else {
            return Err(self.wrong(Step::MarkedSent));
        };
        let left = messages.len().saturating_sub(messages.accepted);
        if left > 0 {
            return Err(Transition::PartsLeft {
                window: self.period.id(),
                left,
            });
        }
        self.state = SummaryState::Sent {
            at,
            total: *total,
            parts: messages.len(),
        };
        self.updated_at = at;
        Ok(())
    }

    /// Ready → Undeliverable: Slack refused a message for good.
    pub fn refused(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), Transition> {
        let SummaryState::Ready { total, messages } = &self.state else {
            return Err(self.wrong(Step::Refused));
        };
        self.state = SummaryState::Undeliverable {
            reason,
            total: *total,
            messages: messages.clone(),
        };
        self.updated_at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use serde_json::json;

    fn period() -> Window {
        Window {
            start: "2025-05-29T00:00:00Z".parse().unwrap(),
            end: "2025-05-30T00:00:00Z".parse().unwrap(),
        }
    }

    fn total() -> Tally {
        Tally {
            revenue: Decimal::new(4_575_000, 2),
            count: 23,
        }
    }

    #[test]
    fn closed_ready_sent_and_nothing_after() {
        let now = period().end;
        let mut s = SummaryRecord::closed(period(), now);
        assert!(s.is_pending() && s.total().is_none() && s.next_part().is_none());
        assert!(s.part_accepted(now).is_err());
        assert!(s.sent(now).is_err());
        let messages = Messages::new(json!({"text": "one"}), vec![json!({"text": "two"})]);
        s.ready(total(), messages.clone(), now).unwrap();
        assert_eq!(
            s.ready(total(), messages, now),
            Err(s.wrong(Step::MadeReady))
        );
        assert_eq!(s.next_part().unwrap()["text"], "one");
        assert_eq!(s.part_accepted(now), Ok(Progress::PartsLeft));
        assert!(matches!(
            s.sent(now),
            Err(Transition::PartsLeft { left: 1, .. })
        ));
        assert_eq!(s.next_part().unwrap()["text"], "two");
        assert_eq!(s.part_accepted(now), Ok(Progress::AllAccepted));
        assert!(matches!(
            s.part_accepted(now),
            Err(Transition::NoPartLeft { .. })
        ));
        s.sent(now).unwrap();
        assert_eq!(s.stage(), Stage::Sent);
        assert_eq!((s.total(), s.parts_accepted()), (Some(total()), 2));
        assert!(!s.is_pending() && s.next_part().is_none());
        assert!(s.refused("late".into(), now).is_err());
        // Stored and read back as it was.
        let back: SummaryRecord = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn refused_keeps_what_slack_took() {
        let now = period().end;
        let mut s = SummaryRecord::closed(period(), now);
        s.ready(total(), Messages::new(json!({"text": "one"}), vec![]), now)
            .unwrap();
        s.refused("404 no_service".into(), now).unwrap();
        assert_eq!(s.stage(), Stage::Undeliverable);
        assert_eq!(s.parts_accepted(), 0);
        assert!(!s.is_pending());
        assert!(s.sent(now).is_err());
    }
}
