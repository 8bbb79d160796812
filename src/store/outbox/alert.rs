//! One alert in the outbox: rendered when raised (its text is fixed then), queued with a
//! flushed write, posted by the outbox's loop like every other message, at the start of its
//! next round, and marked sent after Slack's 2xx. Keyed by when it was raised (Unix ms, one
//! more for each alert raised in the same millisecond), so retention prunes it by age.

use super::{Delivery, DeliveryStatus, MessageId, Messages, Progress, Ready, Stage, Transition};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One alert in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Its key: when it was raised, in Unix ms (made unique).
    pub id: i64,
    /// Its kind, for logs.
    pub kind: String,
    /// Where it is; what it says is in its message.
    delivery: Delivery<()>,
    /// Slack attempts so far, and the last one's error.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl AlertRecord {
    /// Raised now, as `text`: ready to post.
    pub fn raised(id: i64, kind: String, text: String, now: DateTime<Utc>) -> AlertRecord {
        AlertRecord {
            id,
            kind,
            delivery: Delivery::Ready(Ready {
                what: (),
                messages: Messages::new(json!({ "text": text }), vec![]),
            }),
            attempts: 0,
            last_error: None,
            updated_at: now,
        }
    }

    pub fn id(&self) -> MessageId {
        MessageId::Alert(u64::try_from(self.id).unwrap_or_default())
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

    pub(crate) fn next_part(&self) -> Option<&Value> {
        self.delivery.next_part()
    }

    pub fn parts_accepted(&self) -> usize {
        self.delivery.parts_accepted()
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
