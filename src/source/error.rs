//! The source's errors, and which of them a reconnect can cure.

use crate::store::StoreError;
use mongodb::error::ErrorKind;
use std::time::Duration;

/// Server error codes after which a token can never be resumed.
const HISTORY_LOST: [i32; 3] = [286, 280, 260];

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("the saved resume token is no longer in the oplog (code {code})")]
    HistoryLost { code: i32 },
    #[error("the server did not open the change stream within {} s", .0.as_secs())]
    OpenTimeout(Duration),
    #[error("the server closed the change stream (was the collection dropped or renamed?)")]
    Closed,
    #[error("the server sent a change-stream batch that is not valid BSON")]
    Malformed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SourceError {
    /// Retryable by reconnecting. History loss is handled by a rebuild, not a retry.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Mongo(e) => !matches!(
                *e.kind,
                ErrorKind::Authentication { .. } | ErrorKind::InvalidArgument { .. }
            ),
            Self::HistoryLost { .. } => false,
            Self::OpenTimeout(_) | Self::Closed | Self::Malformed => true,
            // Not for checkpoints: a failed write may still be visible in memory (to the
            // outbox, to the next write's read-and-add of changes), so the process stops and
            // restarts from what is on disk, where a write is all or nothing.
            Self::Store(_) => false,
        }
    }

    pub(super) fn classify(e: mongodb::error::Error) -> Self {
        match &*e.kind {
            ErrorKind::Command(c) if HISTORY_LOST.contains(&c.code) => {
                Self::HistoryLost { code: c.code }
            }
            _ => Self::Mongo(e),
        }
    }
}
