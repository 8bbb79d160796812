//! The change stream: tails fulfilled sales, folds them into the live per-window totals,
//! checkpoints token + totals together, and hands windows that are due to the outbox.
//!
//! This task is the only writer of the totals, so whatever it saves between two events is a
//! consistent pair: every event up to the saved token is in the saved totals, none after it.

mod fold;
mod live;
pub mod oplog;
mod rebuild;
mod stream;

pub use fold::{cluster_time, document_id, ClusterTime, Event, Fold, Folded, CLUSTER_TIME_UNKNOWN};
pub use live::{Live, LogLimiter};
pub use stream::{event_token, stream_pipeline, Batch, RawChangeStream};

use crate::alert::{AlertKind, Alerter};
use crate::change::Marks;
use crate::config::Config;
use crate::limits;
use crate::store::{Checkpoint, ReportRecord, Store, StoreError};
use crate::window::{OpenWindow, Window};
use backoff::backoff::Backoff;
use bson::{doc, Document};
use chrono::{DateTime, TimeDelta, Utc};
use mongodb::change_stream::event::ResumeToken;
use mongodb::error::ErrorKind;
use mongodb::Collection;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// Save this often while events arrive (a process killed every few seconds while working off a
/// backlog must still make progress; a flush costs well under a millisecond)…
const CHECKPOINT_BUSY_INTERVAL: Duration = Duration::from_millis(200);
/// …or after this many events, whichever comes first…
const CHECKPOINT_EVENTS: u64 = 10_000;
/// While events arrive, the clocks are read only every this many events.
const CLOCK_EVERY_EVENTS: u64 = 32;
/// …and this often when idle, so the saved position (and readiness) stays fresh.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait for a getMore on an idle stream; bounds shutdown and close latency.
const MAX_AWAIT: Duration = Duration::from_millis(500);
/// Events per getMore: large enough that the round trip is amortised, small enough that a
/// batch is a few hundred KB.
const BATCH_SIZE: u32 = 1000;
/// A due window waits at most this long for the stream to catch up with its boundary; then it
/// closes by the clock, and sales still in the backlog become late corrections (reports must
/// not wait on a stream that may never catch up).
const MAX_CATCH_UP: Duration = Duration::from_secs(30);
/// Opening (or resuming) the stream that takes longer counts as a failed attempt: an overloaded
/// server must not keep windows from closing by the clock meanwhile. Also the server's limit
/// (`maxTimeMS`) on the opening `aggregate`, so it gives up when we do.
pub(crate) const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// At most one immediate resume (without backoff) in this long.
const QUICK_RESUME_EVERY: Duration = Duration::from_secs(10);

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
            Self::Store(e) => e.is_retryable(),
        }
    }

    fn classify(e: mongodb::error::Error) -> Self {
        match &*e.kind {
            ErrorKind::Command(c) if HISTORY_LOST.contains(&c.code) => {
                Self::HistoryLost { code: c.code }
            }
            _ => Self::Mongo(e),
        }
    }
}

/// The sales collection through two clients: the stream has its own, so that it never waits
/// behind a query (nor for a connection a query holds), and operators can tell the two apart
/// by application name (`currentOp`, the server's slow-query log).
#[derive(Debug, Clone)]
pub struct Sales {
    pub stream: Collection<Document>,
    /// `$facet`s, the restatement mode, the oplog headroom.
    pub queries: Collection<Document>,
}

pub struct Tailer {
    coll: Collection<Document>,
    queries: Collection<Document>,
    config: Arc<Config>,
    store: Store,
    live: Arc<Live>,
    outbox: Arc<Notify>,
    alerts: Alerter,
    token: Option<ResumeToken>,
    next_close: Window,
    /// When `next_close` is due (its end + grace): compared per event, so kept, not derived.
    due_at: DateTime<Utc>,
    /// Since when the stream has no gap (windows opened before are only partly streamed).
    started_at: DateTime<Utc>,
    /// Also holds the changes to closed windows since the last checkpoint.
    fold: Fold,
    unsaved_events: u64,
    last_save: Instant,
    /// Set when a window is due: the server's cluster time then, and when it was read. The
    /// window closes once the stream has passed it, so every sale committed before the
    /// boundary (+ grace) is in the streamed totals; see [`Self::on_batch`].
    barrier: Option<Barrier>,
    barrier_passed: bool,
    /// The resume token after the last empty batch. One empty batch proves nothing (servers
    /// may return one mid-backlog after scanning a chunk of filtered-out entries); two in a
    /// row at the same position mean the stream is at the end of the oplog.
    last_empty: Option<Option<ResumeToken>>,
    down_since: Option<Instant>,
    /// After history loss: the open windows' totals from the database, as their queries answer.
    rebuilding: Option<tokio::sync::mpsc::Receiver<rebuild::Rebuilt>>,
    /// Batches received since the stream was (re)opened.
    batches: u64,
    skip_log: LogLimiter,
    late_log: LogLimiter,
}

impl Tailer {
    /// Restores the checkpoint (token, open windows, next window to close) into `live`.
    pub fn restore(
        sales: Sales,
        config: Arc<Config>,
        store: Store,
        live: Arc<Live>,
        outbox: Arc<Notify>,
        alerts: Alerter,
        now: DateTime<Utc>,
    ) -> Result<Tailer, SourceError> {
        let (token, mut next_close) = match store.load_checkpoint()? {
            Some(cp) => {
                info!(open_windows = cp.open.len(), next_close = %cp.next_close.id(), has_token = cp.token.is_some(), "Restored checkpoint.");
                for w in cp.open {
                    live.windows.insert(w.window.id(), w);
                }
                (cp.token, cp.next_close)
            }
            None => {
                info!("No checkpoint: starting at the current window.");
                (None, config.window.window_of(now))
            }
        };
        // After long downtime, report at most `max_catchup` worth of missed windows.
        let oldest = config
            .window
            .window_of(now - TimeDelta::from_std(config.max_catchup).unwrap_or(TimeDelta::MAX));
        if next_close.start < oldest.start {
            let message = format!(
                "down since {}: windows before {} are beyond POWER_REVENUE_MAX_CATCHUP and will not be reported",
                next_close.start.to_rfc3339(),
                oldest.start.to_rfc3339()
            );
            warn!(skipped_from = %next_close.id(), resume_at = %oldest.id(), "Missed windows beyond the catch-up limit are not reported.");
            alerts.raise(AlertKind::CatchUpLimited, message);
            live.windows.retain(|id, _| *id >= oldest.id());
            next_close = oldest;
        }
        let resuming = token.is_some();
        let due_at = due_at(&next_close, config.grace);
        let mut fold = Fold::new(
            config.fields.clone(),
            &config.fulfilled_status,
            config.window,
            next_close.start,
        );
        fold.max_future = config.max_future;
        Ok(Tailer {
            coll: sales.stream,
            queries: sales.queries,
            config,
            store,
            live,
            outbox,
            alerts,
            token,
            next_close,
            due_at,
            // Resuming from a token, the stream has no gap: every window is fully streamed.
            started_at: if resuming {
                DateTime::<Utc>::MIN_UTC
            } else {
                now
            },
            fold,
            unsaved_events: 0,
            last_save: Instant::now(),
            barrier: None,
            barrier_passed: false,
            last_empty: None,
            down_since: None,
            rebuilding: None,
            batches: 0,
            skip_log: LogLimiter::new("skipped", 20, Duration::from_secs(10)),
            late_log: LogLimiter::new("late", 20, Duration::from_secs(10)),
        })
    }

    /// Runs until `shutdown`, reconnecting with backoff; saves a final checkpoint on the way out.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), SourceError> {
        let mut backoff = reconnect_backoff();
        let mut rebuild = false;
        let mut quick_resumed: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            self.batches = 0;
            let opened = self.open_stream().await;
            // Whatever the outcome: queries held back for the first attempt may go now.
            self.live.open_attempted.send_replace(true);
            let outcome = match opened {
                Ok(mut stream) => {
                    self.on_connected(&mut backoff);
                    // Off the stream's path: a slow server must not delay tailing.
                    tokio::spawn(read_mode(self.queries.clone(), self.live.clone()));
                    if self.token.is_none() {
                        // A fresh stream's starting point, saved at once: a crash before the
                        // first event must not restart at a later "now" and miss sales.
                        self.token = stream.start_token();
                        self.save(Vec::new()).await?;
                    }
                    if std::mem::take(&mut rebuild) {
                        self.start_rebuild().await?;
                    }
                    self.tail(&mut stream, &shutdown).await
                }
                Err(error) => Err(error),
            };
            match outcome {
                Ok(()) => {}
                Err(SourceError::HistoryLost { code }) => {
                    // Never silently restart at "now": rebuild the open windows from the
                    // database once a fresh stream is open, so nothing between is lost.
                    error!(
                        code,
                        "Change-stream history lost; rebuilding open windows from the database."
                    );
                    self.alerts.raise(
                        AlertKind::HistoryLost,
                        format!("the change stream could not resume (code {code}, history lost); open windows are being recomputed from the database"),
                    );
                    self.token = None;
                    rebuild = true;
                    continue;
                }
                // A stream that was delivering is resumed at once, as the driver's own change
                // stream would; at most once in QUICK_RESUME_EVERY, so a failure that repeats
                // waits for the backoff.
                Err(error)
                    if error.is_retryable()
                        && self.batches > 1
                        && quick_resumed.is_none_or(|t| t.elapsed() >= QUICK_RESUME_EVERY) =>
                {
                    info!(%error, "Change stream interrupted; resuming.");
                    quick_resumed = Some(Instant::now());
                    continue;
                }
                Err(error) if error.is_retryable() => {
                    warn!(%error, "Change stream unavailable; retrying with backoff.")
                }
                Err(error) => return Err(error),
            }
            self.on_disconnected();
            let pause = backoff.next_backoff().unwrap_or(Duration::from_secs(30));
            self.wait_disconnected(pause, &shutdown).await?;
        }
        self.save(Vec::new()).await?;
        info!("Change stream stopped; final checkpoint saved.");
        Ok(())
    }

    fn on_connected(&mut self, backoff: &mut backoff::ExponentialBackoff) {
        if self.live.connected.swap(true, Relaxed) || self.down_since.is_some() {
            self.live.reconnects.fetch_add(1, Relaxed);
        }
        info!(resuming = self.token.is_some(), "Change stream open.");
        backoff.reset();
        self.down_since = None;
    }

    fn on_disconnected(&mut self) {
        self.live.connected.store(false, Relaxed);
        let since = *self.down_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.config.alert_stream_down {
            self.alerts.raise(
                AlertKind::StreamDown,
                format!(
                    "the change stream has been down for {} s; retrying",
                    since.elapsed().as_secs()
                ),
            );
        }
    }

    /// Called for each event (with its cluster time) and each empty batch (with the stream's
    /// position after it). Decides whether the stream passed the barrier.
    fn on_batch(&mut self, event_at: Option<Option<ClusterTime>>, position: Option<ResumeToken>) {
        let Some(Barrier { at: barrier, .. }) = self.barrier else {
            return;
        };
        match event_at {
            Some(at) => {
                self.last_empty = None;
                self.barrier_passed |=
                    at.is_some_and(|at| at >= barrier && at != CLUSTER_TIME_UNKNOWN);
            }
            None => {
                self.barrier_passed |= self.last_empty.as_ref() == Some(&position);
                self.last_empty = Some(position);
            }
        }
    }

    /// The server's cluster time now, if it says (errors only delay closing, up to a bound).
    async fn cluster_time_now(&self) -> Option<ClusterTime> {
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

    async fn open_stream(&self) -> Result<RawChangeStream, SourceError> {
        let open = RawChangeStream::open(
            &self.coll,
            &self.config.fields,
            &self.config.fulfilled_status,
            self.token.as_ref(),
            OPEN_TIMEOUT,
            MAX_AWAIT,
            BATCH_SIZE,
        );
        tokio::time::timeout(OPEN_TIMEOUT, open)
            .await
            .map_err(|_| SourceError::OpenTimeout(OPEN_TIMEOUT))?
            .map_err(SourceError::classify)
    }

    async fn tail(
        &mut self,
        stream: &mut RawChangeStream,
        shutdown: &CancellationToken,
    ) -> Result<(), SourceError> {
        loop {
            // Dropping an in-flight getMore on shutdown is safe: the token only advances past
            // events that were applied, so unread events are read again after a restart.
            let batch = tokio::select! {
                batch = stream.next_batch() => batch,
                _ = shutdown.cancelled() => return Ok(()),
            };
            let batch = match batch {
                Some(Ok(batch)) => batch,
                Some(Err(e)) => return Err(SourceError::classify(e)),
                None => return Err(SourceError::Closed),
            };
            self.batches += 1;
            self.apply_batch(&batch).await?;
            self.apply_rebuilt();
        }
    }

    /// Folds one server batch, closing windows and saving between events where due. The token
    /// saved is always the position just after the last event applied.
    async fn apply_batch(&mut self, batch: &Batch) -> Result<(), SourceError> {
        let events = batch.events().map_err(SourceError::classify)?;
        let mut now = Utc::now();
        let mut last = None;
        for (i, event) in events.enumerate() {
            // The server's reply is malformed past this point: resume after the last good
            // event rather than skip what cannot be read.
            let event = event.ok_or(SourceError::Malformed)?;
            // The clock every few events: a read per event is a measurable share of the hot
            // path, and a few microseconds of staleness changes nothing here.
            if i > 0 && i as u64 % CLOCK_EVERY_EVENTS == 0 {
                now = Utc::now();
            }
            let read = Event::read(event);
            let at = read.cluster_time;
            if let Some(at) = at.filter(|at| *at != CLUSTER_TIME_UNKNOWN) {
                let committed_ms = ((at >> 32) as i64) * 1000;
                self.live.last_event_ms.store(committed_ms, Relaxed);
                self.live
                    .lag_ms
                    .store((now.timestamp_millis() - committed_ms).max(0), Relaxed);
            }
            self.on_batch(Some(at), None);
            self.apply(event, &read, now);
            last = Some(event);
            if self.wants_step(now, i as u64 % CLOCK_EVERY_EVENTS == 0) {
                self.token = event_token(event).or(self.token.take());
                self.step_close(now).await?;
            }
        }
        // The whole batch is applied: the stream's position is after it.
        let end = batch.end_token();
        if last.is_none() {
            self.on_batch(None, end.clone());
        }
        if let Some(token) = end.or_else(|| last.and_then(event_token)) {
            self.token = Some(token);
        }
        let now = Utc::now();
        if self.window_due(now) || self.due_for_save() {
            self.step_close(now).await?;
        }
        Ok(())
    }

    /// Whether to stop between two events to close windows or save: at once when a window
    /// falls due or the stream passes its barrier; otherwise only on clock reads, since
    /// building the token and checking costs more than the event (a due window may wait
    /// seconds for a lagging stream).
    fn wants_step(&self, now: DateTime<Utc>, clock_read: bool) -> bool {
        let due = self.window_due(now);
        (due && (self.barrier.is_none() || self.barrier_passed))
            || (clock_read && (due || self.due_for_save()))
    }

    /// A due window sets the barrier the stream must pass before it closes; then closes what
    /// may close and saves if a checkpoint is due.
    async fn step_close(&mut self, now: DateTime<Utc>) -> Result<(), SourceError> {
        if self.window_due(now) && self.barrier.is_none() {
            // The wall clock first: every sale committed before it is at or before `at`.
            let wall = Utc::now();
            let at = self
                .cluster_time_now()
                .await
                .unwrap_or(CLUSTER_TIME_UNKNOWN);
            self.barrier = Some(Barrier {
                at,
                wall,
                set: Instant::now(),
            });
            self.barrier_passed = false;
            self.last_empty = None;
        }
        self.close_due_and_save(Utc::now()).await
    }

    /// Keeps closing windows by the wall clock while the server is unreachable.
    async fn wait_disconnected(
        &mut self,
        pause: Duration,
        shutdown: &CancellationToken,
    ) -> Result<(), SourceError> {
        let until = Instant::now() + pause;
        while Instant::now() < until && !shutdown.is_cancelled() {
            self.close_due_and_save(Utc::now()).await?;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1).min(until - Instant::now())) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: &bson::RawDocument, read: &Event<'_>, now: DateTime<Utc>) {
        self.unsaved_events += 1;
        let fold = &mut self.fold;
        fold.open_from = self.next_close.start;
        fold.started_at = self.started_at;
        fold.now = now;
        match fold.apply_read(read, &self.live) {
            Folded::Counted | Folded::Ignored => {}
            Folded::Late { window, delta } => {
                self.live.events_late.fetch_add(1, Relaxed);
                if self.late_log.allow() {
                    warn!(window = %window.id(), %delta, document_id = %document_id(event), "A sale of a closed window changed; the next report re-checks that window.");
                }
            }
            Folded::ChangedSomewhere => {
                self.live.events_late.fetch_add(1, Relaxed);
                if self.late_log.allow() {
                    warn!(document_id = %document_id(event), "A sale changed and its window cannot be told (no pre-image); the next report re-checks every reported window in the horizon.");
                }
            }
            Folded::Skipped(reason) => {
                self.live.count_skip(reason);
                if self.skip_log.allow() {
                    warn!(document_id = %document_id(event), reason, "Sale skipped.");
                }
            }
        }
    }

    fn due_for_save(&self) -> bool {
        let since = self.last_save.elapsed();
        self.unsaved_events >= CHECKPOINT_EVENTS
            || (self.unsaved_events > 0 && since >= CHECKPOINT_BUSY_INTERVAL)
            || since >= CHECKPOINT_INTERVAL
    }

    fn window_due(&self, now: DateTime<Utc>) -> bool {
        now >= self.due_at
    }

    fn set_next_close(&mut self, w: Window) {
        self.next_close = w;
        self.due_at = due_at(&w, self.config.grace);
    }

    /// Moves every due window from the live set to the outbox, in the same write as the
    /// checkpoint. While (re)connecting it waits for the stream to catch up, at most a bound.
    async fn close_due_and_save(&mut self, now: DateTime<Utc>) -> Result<(), SourceError> {
        // Up to when the live totals are complete: the barrier's time once the stream passed
        // it. Disconnected, or hopelessly behind, windows close by the clock (the report
        // then shows the database's figures and says the stream differed).
        let complete_until = match self.barrier {
            _ if !self.live.connected.load(Relaxed) => Some(now),
            Some(b) if self.barrier_passed => Some(b.wall),
            Some(b) if b.set.elapsed() >= MAX_CATCH_UP => {
                warn!(
                    behind_secs = b.set.elapsed().as_secs(),
                    "Change stream has not caught up; closing by the clock."
                );
                Some(now)
            }
            _ => None,
        };
        let mut closed = Vec::new();
        while complete_until.is_some_and(|t| self.window_due(t)) {
            let w = self.next_close;
            let open = match self.live.windows.remove(&w.id()) {
                Some((_, open)) => open,
                None => OpenWindow::new(w, self.started_at.clamp(w.start, w.end)),
            };
            info!(window = %w.id(), events = open.events_applied, caught_up = self.barrier_passed, connected = self.live.connected.load(Relaxed), "Window closed.");
            closed.push(ReportRecord::closed(open, now));
            self.set_next_close(self.config.window.next(&w));
        }
        // Keep the current window visible (and known to be fully streamed) even before a sale.
        let current = self.config.window.window_of(now);
        if current.start >= self.next_close.start {
            let since = self.started_at.max(current.start);
            self.live
                .windows
                .entry(current.id())
                .or_insert_with(|| OpenWindow::new(current, since));
        }
        let any_closed = !closed.is_empty();
        // Not on every event while a due window waits for the stream to catch up: that would
        // flush once per event of the backlog.
        if any_closed || self.due_for_save() {
            self.save(closed).await?;
        }
        if any_closed {
            self.barrier = None;
            crate::failpoint::hit("after_close");
            self.outbox.notify_one();
        }
        Ok(())
    }

    async fn save(&mut self, closed: Vec<ReportRecord>) -> Result<(), SourceError> {
        let cp = Checkpoint {
            token: self.token.clone(),
            open: self.live.snapshot(),
            next_close: self.next_close,
            saved_at: Utc::now(),
        };
        let started = Instant::now();
        self.store
            .save_checkpoint(&cp, &closed, &self.fold.marks)
            .await?;
        metrics::histogram!(crate::telemetry::CHECKPOINT_SECONDS).record(started.elapsed());
        debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            events = self.unsaved_events,
            "Checkpoint saved."
        );
        self.fold.marks = Marks::default();
        self.unsaved_events = 0;
        self.last_save = Instant::now();
        self.live.checkpoints.fetch_add(1, Relaxed);
        self.live
            .checkpoint_at_ms
            .store(cp.saved_at.timestamp_millis(), Relaxed);
        Ok(())
    }
}

/// A point the stream must pass before windows ending before `wall` may close.
#[derive(Debug, Clone, Copy)]
struct Barrier {
    /// The server's cluster time, read just after `wall`.
    at: ClusterTime,
    wall: DateTime<Utc>,
    set: Instant,
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

fn due_at(w: &Window, grace: Duration) -> DateTime<Utc> {
    w.end + TimeDelta::from_std(grace).unwrap_or_default()
}

fn reconnect_backoff() -> backoff::ExponentialBackoff {
    backoff::ExponentialBackoff {
        initial_interval: Duration::from_millis(500),
        max_interval: Duration::from_secs(30),
        max_elapsed_time: None, // always-on: never give up
        ..Default::default()
    }
}
