//! After the change-stream history was lost: the open windows' totals from the database, queried
//! off the stream's path. The tailer marks the windows recomputed at once and keeps tailing the
//! new stream; each window's totals replace the streamed ones, between two batches, when its
//! query answers. A window that closed first keeps its streamed totals: its report is the
//! database's anyway, and says "Recomputed".
//!
//! Live totals of a rebuilt window are approximate until its report: sales committed after the
//! query's snapshot and streamed before its answer arrived are replaced away.

use crate::config::Config;
use crate::reconcile;
use crate::window::{Totals, Window};
use bson::Document;
use chrono::{DateTime, Utc};
use mongodb::Collection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::error;

/// How long a rebuild keeps retrying each window's query (on top of one query limit).
const PATIENCE: Duration = Duration::from_secs(120);

/// One window's totals, as the database has them.
pub(super) struct Rebuilt {
    pub window: Window,
    pub totals: Totals,
}

/// The windows to rebuild: every window from `next_close` up to `now`, and each (future-dated)
/// window the stream had already opened, all of which may have missed events. Only windows that
/// exist are visited, never every window up to a far date.
pub(super) fn windows(
    config: &Config,
    next_close: Window,
    now: DateTime<Utc>,
    open: impl Iterator<Item = Window>,
) -> Vec<Window> {
    let mut windows = Vec::new();
    let mut w = next_close;
    while w.start <= now {
        windows.push(w);
        w = config.window.next(&w);
    }
    let mut ahead: Vec<Window> = open.filter(|o| o.start > now).collect();
    ahead.sort();
    windows.extend(ahead);
    windows
}

/// Queries `windows` one after the other in a task of their own; their totals arrive on the
/// returned channel. Dropping the receiver stops the task after its current query.
pub(super) fn start(
    queries: Collection<Document>,
    config: Arc<Config>,
    windows: Vec<Window>,
) -> mpsc::Receiver<Rebuilt> {
    let (tx, rx) = mpsc::channel(windows.len().max(1));
    tokio::spawn(async move {
        for window in windows {
            match reconcile::query_with_retry(&queries, &config, &window, PATIENCE).await {
                Ok(totals) => {
                    if tx.send(Rebuilt { window, totals }).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    error!(%error, window = %window.id(), "Cannot recompute the window; keeping the streamed totals.");
                }
            }
        }
    });
    rx
}
