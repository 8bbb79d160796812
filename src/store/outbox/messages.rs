//! The messages of one report and how many Slack has accepted.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The messages of one report, never none: usually one, several when its notes are too long
/// for one Slack message (see [`crate::report::render_parts`]). Posted in order; how many
/// Slack accepted is kept so a restart continues with the next one and never reposts one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "MessagesOnDisk")]
pub struct Messages {
    first: Value,
    follow_ups: Vec<Value>,
    pub(super) accepted: usize,
}

/// [`Messages`] as stored, checked on the way in.
#[derive(Deserialize)]
struct MessagesOnDisk {
    first: Value,
    follow_ups: Vec<Value>,
    accepted: usize,
}

impl TryFrom<MessagesOnDisk> for Messages {
    type Error = String;
    fn try_from(m: MessagesOnDisk) -> Result<Messages, String> {
        let messages = Messages::new(m.first, m.follow_ups);
        if m.accepted > messages.len() {
            return Err(format!(
                "{} of {} messages accepted",
                m.accepted,
                messages.len()
            ));
        }
        Ok(Messages {
            accepted: m.accepted,
            ..messages
        })
    }
}

impl Messages {
    /// None accepted yet.
    pub fn new(first: Value, follow_ups: Vec<Value>) -> Messages {
        Messages {
            first,
            follow_ups,
            accepted: 0,
        }
    }

    /// The next message to post; `None` once all are accepted.
    pub fn next(&self) -> Option<&Value> {
        match self.accepted {
            0 => Some(&self.first),
            n => self.follow_ups.get(n - 1),
        }
    }

    /// How many messages the report takes.
    pub fn len(&self) -> usize {
        self.follow_ups.len().saturating_add(1)
    }

    /// Never empty; for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn accepted(&self) -> usize {
        self.accepted
    }

    /// Slack accepted the next message: what is left, or `None` when none was left to accept.
    pub(super) fn accept_next(&mut self) -> Option<super::Progress> {
        if self.accepted >= self.len() {
            return None;
        }
        self.accepted = self.accepted.saturating_add(1);
        Some(if self.accepted == self.len() {
            super::Progress::AllAccepted
        } else {
            super::Progress::PartsLeft
        })
    }

    /// All messages, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Value> {
        std::iter::once(&self.first).chain(&self.follow_ups)
    }
}
