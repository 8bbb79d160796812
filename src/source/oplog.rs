//! Oplog headroom: how far the resume position is from falling out of the oplog. Read from
//! `local.oplog.rs` where the server exposes it (a replica-set member with read access to
//! `local`); elsewhere it stays unknown and nothing is claimed.

use super::Live;
use bson::{doc, Document};
use chrono::Utc;
use mongodb::options::FindOneOptions;
use mongodb::Client;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Readiness fails, and a warning is logged, when the resume position is closer than this to
/// falling out of the oplog.
pub const MIN_OPLOG_HEADROOM_SECS: i64 = 3600;

const INTERVAL: Duration = Duration::from_secs(60);
/// The first reading waits this long after the stream's first open attempt: headroom matters
/// over hours, a process that has just started is busy catching up, and on some servers (the
/// Python SecantusDB) finding the oldest entry reads the whole oplog, which a crash-looping
/// process would otherwise do every start.
const FIRST_AFTER: Duration = Duration::from_secs(20);

/// Measures the headroom every minute until `shutdown`; warns when it runs low.
pub(crate) async fn watch_headroom(
    client: Client,
    live: std::sync::Arc<Live>,
    shutdown: CancellationToken,
) {
    let mut previous_oldest = None;
    // After the stream: on a busy server this read must not stand before it.
    let first = async {
        live.first_open_attempt(super::OPEN_TIMEOUT).await;
        tokio::time::sleep(FIRST_AFTER).await;
    };
    tokio::select! {
        _ = first => {}
        _ = shutdown.cancelled() => return,
    }
    loop {
        match oldest_entry_secs(&client).await {
            Ok(Some(oldest)) => {
                // An oplog that is not yet full keeps its oldest entry: however small the
                // headroom looks (a new server), nothing is being discarded.
                let rolling = previous_oldest.is_some_and(|p| oldest > p);
                previous_oldest = Some(oldest);
                // Our position: the last checkpoint's token, which is at most a second behind
                // the stream when it is caught up.
                let position_ms = live.checkpoint_at_ms.load(Relaxed);
                let position = if position_ms > 0 {
                    position_ms / 1000
                } else {
                    Utc::now().timestamp()
                };
                let headroom = position - oldest;
                *live.oplog_headroom_secs.lock().expect("not poisoned") = Some(headroom);
                let low = rolling && headroom < MIN_OPLOG_HEADROOM_SECS;
                live.oplog_headroom_low.store(low, Relaxed);
                if low {
                    warn!(headroom_secs = headroom, "The resume position is close to falling out of the oplog; a restart after more downtime would have to rebuild from the database.");
                }
            }
            Ok(None) => debug!("The server does not expose its oplog; headroom unknown."),
            Err(error) => debug!(%error, "Cannot read the oplog window; headroom unknown."),
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error(transparent)]
    NoAnswer(#[from] crate::limits::NoAnswer),
}

async fn oldest_entry_secs(client: &Client) -> Result<Option<i64>, ReadError> {
    let oplog = client.database("local").collection::<Document>("oplog.rs");
    let first = oplog.find_one(doc! {}).with_options(
        FindOneOptions::builder()
            .sort(doc! { "$natural": 1 })
            .max_time(crate::limits::OPLOG_READ)
            .build(),
    );
    let first = crate::limits::answer(crate::limits::OPLOG_READ, first).await??;
    Ok(first
        .and_then(|d| d.get_timestamp("ts").ok())
        .map(|ts| i64::from(ts.time)))
}
