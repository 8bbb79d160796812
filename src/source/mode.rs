//! The restatement mode (pre-images on the collection, or re-checks), read after each
//! (re)connect off the stream's path and kept in the live state for `status` and the fold's
//! readers. The tailer owns the read: it is aborted with the tailer or replaced by the next.

use super::Live;
use crate::limits;
use bson::Document;
use mongodb::Collection;
use std::sync::Arc;
use tokio_util::task::AbortOnDropHandle;
use tracing::info;

/// Starts reading the mode: a slow server must not delay tailing.
pub(super) fn read_after_connect(
    coll: Collection<Document>,
    live: Arc<Live>,
) -> AbortOnDropHandle<()> {
    AbortOnDropHandle::new(tokio::spawn(read_mode(coll, live)))
}

/// Reads (and logs, when it changes) whether the collection keeps pre-images. Each event says
/// for itself whether it carries one; this is what `status` and the log report.
async fn read_mode(coll: Collection<Document>, live: Arc<Live>) {
    let read = limits::answer(limits::COMMAND, crate::setup::mode(&coll)).await;
    let Ok(Ok(mode)) = read else {
        return;
    };
    let mut current = live
        .restatement_mode
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *current != Some(mode) {
        info!(mode = mode.describe(), "Restatement mode.");
        *current = Some(mode);
    }
}
