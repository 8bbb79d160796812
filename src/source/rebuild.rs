//! After the change-stream history was lost: the open windows' totals from the database. The
//! new stream is opened first, then each window is read in a snapshot session and *fenced* at
//! the read's cluster time ([`super::Fold::fence`]): events the stream delivers up to that
//! time are in the read already and are not applied again, later ones are. Live totals stay
//! exact, neither doubled nor replaced away; the stream waits for the reads (a rare path, and
//! reports come from the database either way).

use super::{cluster_time, ClusterTime, SourceError, Tailer};
use crate::config::Config;
use crate::reconcile;
use crate::window::{OpenWindow, Window};
use chrono::{DateTime, Utc};
use std::time::Duration;
use tracing::{error, info, warn};

/// How long a rebuild keeps retrying each window's query (on top of one query limit).
const PATIENCE: Duration = Duration::from_secs(120);
/// Reads of a window while they come from before the new stream began.
const READS_BEFORE_THE_STREAM: u32 = 5;

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

impl Tailer {
    /// With the new stream open and before it is read: every window that may have missed
    /// events, from the database, marked recomputed.
    /// `opened_at`: when the new stream began. A read from before it (a snapshot at the
    /// majority point, behind a lagging replica set) would miss what neither holds: it is read
    /// again, a few times, until it is not.
    pub(super) async fn rebuild_open_windows(
        &mut self,
        opened_at: Option<ClusterTime>,
    ) -> Result<(), SourceError> {
        let open: Vec<Window> = self.live.windows.iter().map(|e| e.window).collect();
        let windows = windows(
            &self.config,
            self.closer.next(),
            Utc::now(),
            open.into_iter(),
        );
        for w in windows {
            let patience = PATIENCE.saturating_add(self.config.query_timeout);
            let mut reads = 0;
            let read = loop {
                let answer = reconcile::with_retry(&w, patience, || {
                    reconcile::query_snapshot(&self.queries, &self.config, &w)
                })
                .await;
                reads += 1;
                let behind = matches!(
                    (&answer, opened_at),
                    (Ok((_, Some(ts))), Some(opened)) if cluster_time(*ts) < opened
                );
                if !behind || reads >= READS_BEFORE_THE_STREAM {
                    break answer;
                }
                warn!(window = %w.id(), "The database read is from before the new stream began (replication lag); reading again.");
                tokio::time::sleep(Duration::from_millis(200 << reads.min(5))).await;
            };
            match read {
                Ok((totals, read_at)) => {
                    let read_at = read_at.map(cluster_time);
                    match read_at {
                        Some(at) => self.fold.fence(w.id(), at),
                        None => {
                            warn!(window = %w.id(), "The server did not say when it read the window; live totals may count sales between the stream's start and the read twice (the report is exact).")
                        }
                    }
                    let total = totals.total();
                    let mut open = OpenWindow::new(w, w.start);
                    open.events_applied = total.count;
                    open.totals = totals;
                    open.recomputed = true;
                    open.read_at = read_at;
                    info!(window = %w.id(), revenue = %total.revenue, count = total.count, "Window recomputed from the database.");
                    self.live.windows.insert(w.id(), open);
                }
                Err(error) => {
                    error!(%error, window = %w.id(), "Cannot recompute the window; keeping the streamed totals.");
                    self.live
                        .windows
                        .entry(w.id())
                        .or_insert_with(|| OpenWindow::new(w, w.start))
                        .recomputed = true;
                }
            }
        }
        self.save_position().await
    }
}
