//! The one delivery state machine of every message in the outbox (a window's report, a
//! period's summary, an alert): `Closed → Ready { what, messages } → Sent | Undeliverable`.
//! Each state carries what only it has (`what` the message says, from `Ready` on; the messages
//! and how many Slack accepted while they matter), and every move is a pure method that
//! refuses an impossible one ([`Transition`]), leaving the state as it was.

use super::Messages;
use crate::window::WindowId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Where a message is, with what each state holds. Externally tagged (`"closed"`,
/// `{"ready": {…}}`): an internally tagged enum is buffered by serde, and the buffer cannot
/// read a settlement's map keys (window ids) back as numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery<W> {
    /// Queued; waiting for its figures and rendering.
    Closed,
    /// Rendered; waiting for Slack's 2xx on every message.
    Ready(Ready<W>),
    Sent(Sent<W>),
    /// Slack refused it for good (e.g. `no_service`); a human must act.
    Undeliverable(Undeliverable<W>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready<W> {
    /// What the message says, fixed with it.
    pub what: W,
    /// Fixed before the first attempt, so retries send the same bytes.
    pub messages: Messages,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent<W> {
    pub at: DateTime<Utc>,
    pub what: W,
    /// How many messages it took.
    pub parts: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undeliverable<W> {
    pub reason: String,
    pub what: W,
    /// As far as Slack took them.
    pub messages: Messages,
}

/// Which message, in errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageId {
    Report(WindowId),
    Summary(WindowId),
    Alert(u64),
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Report(w) => write!(f, "the report for window {w}"),
            Self::Summary(p) => write!(f, "the summary for period {p}"),
            Self::Alert(n) => write!(f, "alert {n}"),
        }
    }
}

/// Where a message is, without what it holds: for messages and the API's `delivery` field.
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

/// A move a message was asked to make.
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

/// An impossible move; the message is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Transition {
    #[error("{message} is {stage}: it cannot be {step}")]
    Wrong {
        message: MessageId,
        stage: Stage,
        step: Step,
    },
    #[error("{message} has {left} part(s) Slack has not accepted: it cannot be marked sent")]
    PartsLeft { message: MessageId, left: usize },
    #[error("Slack has accepted every part of {message} already")]
    NoPartLeft { message: MessageId },
}

/// What is left to post after a part was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    PartsLeft,
    AllAccepted,
}

/// Where a message is, as `status --json` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryStatus {
    Closed,
    Ready,
    Sent { at: DateTime<Utc> },
    Undeliverable { reason: String },
}

/// What every outbox record has (its delivery, attempts and last error, when it last moved),
/// and the moves they all make the same way; a record says only how to reach its parts.
pub trait Outboxed {
    /// What its message says.
    type What: Clone;
    fn id(&self) -> MessageId;
    fn delivery(&self) -> &Delivery<Self::What>;
    fn delivery_mut(&mut self) -> &mut Delivery<Self::What>;
    fn attempts_mut(&mut self) -> &mut u32;
    fn last_error_mut(&mut self) -> &mut Option<String>;
    /// It moved at `now`.
    fn touch(&mut self, now: DateTime<Utc>);

    fn stage(&self) -> Stage {
        self.delivery().stage()
    }

    fn is_pending(&self) -> bool {
        self.delivery().is_pending()
    }

    fn status(&self) -> DeliveryStatus {
        match self.delivery() {
            Delivery::Closed => DeliveryStatus::Closed,
            Delivery::Ready(_) => DeliveryStatus::Ready,
            Delivery::Sent(s) => DeliveryStatus::Sent { at: s.at },
            Delivery::Undeliverable(u) => DeliveryStatus::Undeliverable {
                reason: u.reason.clone(),
            },
        }
    }

    /// The next message to post: `None` unless ready with a message Slack has not accepted.
    fn next_part(&self) -> Option<&Value> {
        self.delivery().next_part()
    }

    /// How many messages Slack has accepted.
    fn parts_accepted(&self) -> usize {
        self.delivery().parts_accepted()
    }

    /// Slack accepted the next message (its error, if any, is over).
    fn part_accepted(&mut self, now: DateTime<Utc>) -> Result<Progress, Transition> {
        let id = self.id();
        let progress = self.delivery_mut().part_accepted(id)?;
        *self.last_error_mut() = None;
        self.touch(now);
        Ok(progress)
    }

    /// Ready, every message accepted → Sent.
    fn sent(&mut self, at: DateTime<Utc>) -> Result<(), Transition> {
        let id = self.id();
        self.delivery_mut().sent(id, at)?;
        self.touch(at);
        Ok(())
    }

    /// Ready → Undeliverable: Slack refused a message for good.
    fn refused(&mut self, reason: String, now: DateTime<Utc>) -> Result<(), Transition> {
        let id = self.id();
        self.delivery_mut().refused(id, reason)?;
        self.touch(now);
        Ok(())
    }
}

impl<W: Clone> Delivery<W> {
    pub fn stage(&self) -> Stage {
        match self {
            Self::Closed => Stage::Closed,
            Self::Ready(_) => Stage::Ready,
            Self::Sent(_) => Stage::Sent,
            Self::Undeliverable(_) => Stage::Undeliverable,
        }
    }

    pub fn is_pending(&self) -> bool {
        matches!(self, Self::Closed | Self::Ready(_))
    }

    /// What the message says; `None` while closed.
    pub fn what(&self) -> Option<&W> {
        match self {
            Self::Closed => None,
            Self::Ready(r) => Some(&r.what),
            Self::Sent(s) => Some(&s.what),
            Self::Undeliverable(u) => Some(&u.what),
        }
    }

    /// The next message to post: `None` unless ready with a message Slack has not accepted.
    pub(crate) fn next_part(&self) -> Option<&Value> {
        match self {
            Self::Ready(r) => r.messages.next(),
            _ => None,
        }
    }

    /// How many messages Slack has accepted.
    pub fn parts_accepted(&self) -> usize {
        match self {
            Self::Closed => 0,
            Self::Ready(Ready { messages, .. })
            | Self::Undeliverable(Undeliverable { messages, .. }) => messages.accepted,
            Self::Sent(s) => s.parts,
        }
    }

    fn wrong(&self, message: MessageId, step: Step) -> Transition {
        Transition::Wrong {
            message,
            stage: self.stage(),
            step,
        }
    }

    /// Closed → Ready: rendered, nothing posted yet.
    pub fn ready(
        &mut self,
        message: MessageId,
        what: W,
        mut messages: Messages,
    ) -> Result<(), Transition> {
        if !matches!(self, Self::Closed) {
            return Err(self.wrong(message, Step::MadeReady));
        }
        messages.accepted = 0;
        *self = Self::Ready(Ready { what, messages });
        Ok(())
    }

    /// Slack accepted the next message.
    pub fn part_accepted(&mut self, message: MessageId) -> Result<Progress, Transition> {
        let Self::Ready(ready) = self else {
            return Err(self.wrong(message, Step::PartAccepted));
        };
        ready
            .messages
            .accept_next()
            .ok_or(Transition::NoPartLeft { message })
    }

    /// Ready, every message accepted → Sent.
    pub fn sent(&mut self, message: MessageId, at: DateTime<Utc>) -> Result<(), Transition> {
        let Self::Ready(ready) = self else {
            return Err(self.wrong(message, Step::MarkedSent));
        };
        let left = ready.messages.len().saturating_sub(ready.messages.accepted);
        if left > 0 {
            return Err(Transition::PartsLeft { message, left });
        }
        *self = Self::Sent(Sent {
            at,
            what: ready.what.clone(),
            parts: ready.messages.len(),
        });
        Ok(())
    }

    /// Ready → Undeliverable: Slack refused a message for good.
    pub fn refused(&mut self, message: MessageId, reason: String) -> Result<(), Transition> {
        let Self::Ready(ready) = self else {
            return Err(self.wrong(message, Step::Refused));
        };
        *self = Self::Undeliverable(Undeliverable {
            reason,
            what: ready.what.clone(),
            messages: ready.messages.clone(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: MessageId = MessageId::Alert(7);

    fn at() -> DateTime<Utc> {
        "2025-05-29T13:00:00Z".parse().unwrap()
    }

    #[test]
    fn closed_ready_sent_and_nothing_after() {
        let mut d = Delivery::<u32>::Closed;
        assert!(d.is_pending() && d.what().is_none() && d.next_part().is_none());
        assert_eq!(
            d.part_accepted(ID),
            Err(Transition::Wrong {
                message: ID,
                stage: Stage::Closed,
                step: Step::PartAccepted
            })
        );
        let messages = Messages::new(json!({"text": "one"}), vec![json!({"text": "two"})]);
        d.ready(ID, 5, messages.clone()).unwrap();
        assert!(d.ready(ID, 5, messages).is_err());
        assert_eq!(d.next_part().unwrap()["text"], "one");
        assert_eq!(d.part_accepted(ID), Ok(Progress::PartsLeft));
        assert_eq!(
            d.sent(ID, at()),
            Err(Transition::PartsLeft {
                message: ID,
                left: 1
            })
        );
        assert_eq!(d.part_accepted(ID), Ok(Progress::AllAccepted));
        assert_eq!(
            d.part_accepted(ID),
            Err(Transition::NoPartLeft { message: ID })
        );
        d.sent(ID, at()).unwrap();
        assert_eq!(
            (d.stage(), d.what(), d.parts_accepted()),
            (Stage::Sent, Some(&5), 2)
        );
        assert!(!d.is_pending() && d.next_part().is_none());
        assert!(d.refused(ID, "late".into()).is_err());
        assert_eq!(
            d.sent(ID, at()).unwrap_err().to_string(),
            "alert 7 is sent: it cannot be marked sent"
        );
        let back: Delivery<u32> = serde_json::from_slice(&serde_json::to_vec(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn refused_keeps_what_slack_took() {
        let mut d = Delivery::Ready(Ready {
            what: (),
            messages: Messages::new(json!({"text": "one"}), vec![json!({"text": "two"})]),
        });
        d.part_accepted(ID).unwrap();
        d.refused(ID, "404 no_service".into()).unwrap();
        assert_eq!((d.stage(), d.parts_accepted()), (Stage::Undeliverable, 1));
        assert!(!d.is_pending() && d.sent(ID, at()).is_err());
    }
}
