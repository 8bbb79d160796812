//! One alert in the outbox: rendered when raised (its text is fixed then), queued with a
//! flushed write, posted by the outbox's loop like every other message, at the start of its
//! next round, and marked sent after Slack's 2xx. Keyed by when it was raised (Unix ms, one
//! more for each alert raised in the same millisecond), so retention prunes it by age.

use super::{Delivery, MessageId, Messages, Outboxed, Ready};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

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
}

outboxed!(AlertRecord, (), |a| MessageId::Alert(
    u64::try_from(a.id).unwrap_or_default()
));
