//! Carrying out the closer's actions: reading the server's cluster time for a barrier, and
//! writing checkpoints (the token, the open windows' totals and the windows that close, in one
//! sled write). The live totals change only once a write succeeded.

use super::closer::{Action, BarrierAt, Now, Save};
use super::{cluster_time, event_token, ClusterTime, SourceError, Tailer};
use crate::activity::Activity;
use crate::change::Marks;
use crate::limits;
use crate::store::{Checkpoint, ReportRecord};
use crate::window::{ClosedBy, OpenWindow};
use bson::{doc, RawDocument};
use chrono::Utc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

impl Tailer {
    /// The server's cluster time now, if it says (errors only delay closing, up to a bound).
    pub(super) async fn cluster_time_now(&self) -> Option<ClusterTime> {
        let admin = self.coll.client().database("admin");
        let ping = admin
            .run_command(doc! { "ping": 1, "maxTimeMS": limits::max_time_ms(limits::COMMAND) });
        let reply = limits::answer(limits::COMMAND, ping).await.ok()?.ok()?;
        // The last write's time; replica-set members put it on every reply.
        let ts = reply.get_timestamp("operationTime").ok().or_else(|| {
            reply
                .get_document("$clusterTime")
                .ok()?
                .get_timestamp("clusterTime")
                .ok()
        })?;
        Some(cluster_time(ts))
    }

    /// Carries out what the closer decides now. `after` is the event just applied, if the step
    /// falls between two events: the checkpoint's token is then built from it (only when a
    /// save is due, since building one costs more than folding the event).
    pub(super) async fn step(
        &mut self,
        mut now: Now,
        after: Option<&RawDocument>,
    ) -> Result<(), SourceError> {
        loop {
            match self.closer.poll(now) {
                Action::Wait => return Ok(()),
                Action::ReadClusterTime => {
                    // The wall clock first: every sale committed before it is at or before
                    // the cluster time read next.
                    let wall = Utc::now();
                    let at = match self.cluster_time_now().await {
                        Some(at) => BarrierAt::Known(at),
                        None => BarrierAt::Unknown,
                    };
                    now = Now::read();
                    self.closer.barrier_read(at, wall, now.mono);
                }
                Action::Save(save) => {
                    if let Some(token) = after.and_then(event_token) {
                        self.token = Some(token);
                    }
                    return self.save(save).await;
                }
            }
        }
    }

    /// Keeps closing windows by the wall clock while the server is unreachable.
    pub(super) async fn wait_disconnected(
        &mut self,
        pause: Duration,
        shutdown: &CancellationToken,
    ) -> Result<(), SourceError> {
        let until = Instant::now() + pause;
        while Instant::now() < until && !shutdown.is_cancelled() {
            self.step(Now::read(), None).await?;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1).min(until - Instant::now())) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        Ok(())
    }

    /// A checkpoint that closes nothing.
    pub(super) async fn save_position(&mut self) -> Result<(), SourceError> {
        let next = self.closer.next();
        self.save(Save {
            close: Vec::new(),
            next,
            by: ClosedBy::Stream,
        })
        .await
    }

    /// Writes the checkpoint of `plan`: the token, the open windows' totals and the windows it
    /// closes (into the outbox), in one write. The live totals change only once it is written,
    /// so a failed write loses nothing and the closer plans the same closes again.
    pub(super) async fn save(&mut self, plan: Save) -> Result<(), SourceError> {
        let now = Utc::now();
        let closed: Vec<ReportRecord> = plan
            .close
            .iter()
            .map(|w| {
                let open = match self.live.windows.get(&w.id()) {
                    Some(open) => open.clone(),
                    None => OpenWindow::new(*w, self.started_at.clamp(w.start, w.end)),
                };
                ReportRecord::closed(open, plan.by, now)
            })
            .collect();
        // Keep the current window visible (and known to be fully streamed) even before a sale.
        let current = self.config.window.window_of(now);
        if current.start >= plan.next.start {
            let since = self.started_at.max(current.start);
            self.live
                .windows
                .entry(current.id())
                .or_insert_with(|| OpenWindow::new(current, since));
        }
        let mut open = self.live.snapshot();
        open.retain(|o| !plan.close.contains(&o.window));
        let cp = Checkpoint {
            token: self.token.clone(),
            open,
            next_close: plan.next,
            saved_at: now,
        };
        let started = Instant::now();
        self.store
            .save_checkpoint(&cp, &closed, &self.fold.marks, &self.fold.activity)
            .await?;
        metrics::histogram!(crate::telemetry::CHECKPOINT_SECONDS).record(started.elapsed());
        debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            events = self.closer.unsaved_events(),
            "Checkpoint saved."
        );
        for record in &closed {
            self.live.windows.remove(&record.window.id());
            info!(window = %record.window.id(), events = record.events_applied, by = ?plan.by, "Window closed.");
        }
        if let ClosedBy::Clock { behind_secs } = plan.by {
            if !closed.is_empty() {
                warn!(
                    behind_secs,
                    "Change stream has not caught up; closed by the clock."
                );
            }
        }
        self.closer.saved(&plan, Instant::now());
        self.fold.close_before(self.closer.next().start);
        self.fold.marks = Marks::default();
        self.fold.activity = Activity::default();
        self.live.checkpoints.fetch_add(1, Relaxed);
        self.live
            .checkpoint_at_ms
            .store(cp.saved_at.timestamp_millis(), Relaxed);
        if !closed.is_empty() {
            crate::failpoint::hit("after_close");
            self.outbox.notify_one();
        }
        Ok(())
    }
}
