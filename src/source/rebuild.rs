//! After the change-stream history was lost: the open windows' totals from the database, queried
//! off the stream's path. The tailer marks the windows recomputed at once and keeps tailing the
//! new stream; each window's totals replace the streamed ones, between two batches, when its
//! query answers. A window that closed first keeps its streamed totals: its report is the
//! database's anyway, and says "Recomputed".
//!
//! Live totals of a rebuilt window are approximate until its report: sales committed after the
//! query's snapshot and streamed before its answer arrived are replaced away.

use super::{SourceError, Tailer};
use crate::config::Config;
use crate::reconcile;
use crate::window::{OpenWindow, Totals, Window};
use bson::Document;
use chrono::{DateTime, Utc};
use mongodb::Collection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{error, info};

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
fn windows(
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
fn start(
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

impl Tailer {
    /// After history loss, with the new stream open: marks every window that may have missed
    /// events recomputed, and queries their totals off the stream's path (this module).
    pub(super) async fn start_rebuild(&mut self) -> Result<(), SourceError> {
        let now = Utc::now();
        let open = self
            .live
            .windows
            .iter()
            .map(|e| e.window)
            .collect::<Vec<_>>();
        let windows = windows(&self.config, self.next_close, now, open.into_iter());
        for w in &windows {
            self.live
                .windows
                .entry(w.id())
                .or_insert_with(|| OpenWindow::new(*w, w.start))
                .recomputed = true;
        }
        self.save(Vec::new()).await?;
        self.rebuilding = Some(start(self.queries.clone(), self.config.clone(), windows));
        Ok(())
    }

    /// Puts the rebuilt totals that arrived in place of the streamed ones, for windows still
    /// open; saved with the next checkpoint.
    pub(super) fn apply_rebuilt(&mut self) {
        let Some(rebuilding) = self.rebuilding.as_mut() else {
            return;
        };
        loop {
            let Rebuilt { window: w, totals } = match rebuilding.try_recv() {
                Ok(rebuilt) => rebuilt,
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => return,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    self.rebuilding = None;
                    return;
                }
            };
            if w.start < self.next_close.start {
                continue; // closed meanwhile: its report is the database's anyway
            }
            let total = totals.total();
            let mut open = OpenWindow::new(w, w.start);
            open.events_applied = total.count;
            open.totals = totals;
            open.recomputed = true;
            info!(window = %w.id(), revenue = %total.revenue, count = total.count, "Window recomputed from the database.");
            self.live.windows.insert(w.id(), open);
            self.unsaved_events += 1;
        }
    }
}
