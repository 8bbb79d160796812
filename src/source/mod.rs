//! The change stream: tails fulfilled sales, folds them into the live per-window totals,
//! checkpoints token + totals together, and hands windows that are due to the outbox.
//!
//! This task is the only writer of the totals, so whatever it saves between two events is a
//! consistent pair: every event up to the saved token is in the saved totals, none after it.

mod checkpoint;
mod closer;
mod error;
mod fold;
mod live;
mod mode;
pub mod oplog;
mod rebuild;
mod stream;

pub use error::SourceError;
pub use fold::{cluster_time, document_id, ClusterTime, Event, Fold, Folded};
pub use live::{Live, LogLimiter, CAUGHT_UP_LAG};
pub use stream::{event_token, stream_pipeline, Batch, RawChangeStream};

use crate::alert::{Alert, Alerter};
use crate::config::Config;
use crate::store::Store;
use crate::window::earlier_by;
use backoff::backoff::Backoff;
use bson::{Document, RawDocument};
use chrono::{DateTime, Utc};
use closer::{Cadence, Closer, Now, Position, Step};
use mongodb::change_stream::event::ResumeToken;
use mongodb::Collection;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Checkpoints: often while events arrive (a process killed every few seconds while working
/// off a backlog must still make progress; a flush costs well under a millisecond), and every
/// second when idle so the saved position (and readiness) stays fresh. A due window waits at
/// most `max_catch_up` for the stream to catch up with its boundary; then it closes by the
/// clock, and sales still in the backlog become late corrections (reports must not wait on a
/// stream that may never catch up).
const CADENCE: Cadence = Cadence {
    busy: Duration::from_millis(200),
    events: 10_000,
    idle: Duration::from_secs(1),
    max_catch_up: Duration::from_secs(30),
};
/// While events arrive, the clocks are read only every this many events.
const CLOCK_EVERY_EVENTS: usize = 32;
/// Longest wait for a getMore on an idle stream; bounds shutdown and close latency.
const MAX_AWAIT: Duration = Duration::from_millis(500);
/// Events per getMore: large enough that the round trip is amortised, small enough that a
/// batch is a few hundred KB.
const BATCH_SIZE: u32 = 1000;
/// Opening (or resuming) the stream that takes longer counts as a failed attempt: an overloaded
/// server must not keep windows from closing by the clock meanwhile. Also the server's limit
/// (`maxTimeMS`) on the opening `aggregate`, so it gives up when we do.
pub(crate) const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// At most one immediate resume (without backoff) in this long.
const QUICK_RESUME_EVERY: Duration = Duration::from_secs(10);

/// The sales collection through two clients: the stream has its own, so that it never waits
/// behind a query (nor for a connection a query holds), and operators can tell the two apart
/// by application name (`currentOp`, the server's slow-query log).
#[derive(Debug, Clone)]
pub struct Sales {
    pub stream: Collection<Document>,
    /// `$facet`s, the restatement mode, the oplog headroom.
    pub queries: Collection<Document>,
}

pub(crate) struct Tailer {
    coll: Collection<Document>,
    queries: Collection<Document>,
    config: Arc<Config>,
    store: Store,
    live: Arc<Live>,
    outbox: Arc<Notify>,
    alerts: Alerter,
    /// The stream's position: every event before it is in the live totals, none after it.
    token: Option<ResumeToken>,
    /// When windows close and checkpoints are due.
    closer: Closer,
    /// Since when the stream has no gap (windows opened before are only partly streamed).
    started_at: DateTime<Utc>,
    /// Also holds the changes to closed windows since the last checkpoint.
    fold: Fold,
    /// Since when the stream has been down, while it is.
    down_since: Option<Instant>,
    /// Batches received since the stream was (re)opened.
    batches: u64,
    /// Empty batches in a row (two at the end of the oplog: see [`Live::caught_up`]).
    empty_batches: u32,
    skip_log: LogLimiter,
    late_log: LogLimiter,
    /// The restatement mode's read after the last (re)connect, while it runs: dropped (and
    /// aborted) with the tailer or by the next connect's.
    mode_read: Option<tokio_util::task::AbortOnDropHandle<()>>,
}

impl Tailer {
    /// Restores the checkpoint (token, open windows, next window to close) into `live`.
    pub(crate) fn restore(
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
        let oldest = config.window.window_of(earlier_by(now, config.max_catchup));
        if next_close.start < oldest.start {
            warn!(skipped_from = %next_close.id(), resume_at = %oldest.id(), "Missed windows beyond the catch-up limit are not reported.");
            alerts.raise(Alert::CatchUpLimited {
                down_since: next_close.start,
                resume_at: oldest.start,
            });
            live.windows.retain(|id, _| *id >= oldest.id());
            next_close = oldest;
        }
        let resuming = token.is_some();
        let closer = Closer::new(
            config.window,
            config.grace,
            CADENCE,
            next_close,
            Now::read(),
        );
        // Resuming from a token, the stream has no gap: every window is fully streamed.
        let started_at = if resuming {
            DateTime::<Utc>::MIN_UTC
        } else {
            now
        };
        let mut fold = Fold::new(
            config.fields.clone(),
            &config.fulfilled_status,
            config.window,
            next_close.start,
        )
        .with_max_future(config.max_future)
        .with_bucket_ms(config.bucket_ms())
        .with_started_at(started_at);
        // Windows rebuilt before a restart: the events replayed up to their read are in them.
        for open in live.windows.iter() {
            if let Some(at) = open.read_at {
                fold.fence(open.window.id(), at);
            }
        }
        Ok(Tailer {
            coll: sales.stream,
            queries: sales.queries,
            config,
            store,
            live,
            outbox,
            alerts,
            token,
            closer,
            started_at,
            fold,
            down_since: None,
            batches: 0,
            empty_batches: 0,
            skip_log: LogLimiter::new("skipped", 20, Duration::from_secs(10)),
            late_log: LogLimiter::new("late", 20, Duration::from_secs(10)),
            mode_read: None,
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
                    self.mode_read = Some(mode::read_after_connect(
                        self.queries.clone(),
                        self.live.clone(),
                    ));
                    if self.token.is_none() {
                        // A fresh stream's starting point, saved at once: a crash before the
                        // first event must not restart at a later "now" and miss sales. After
                        // history loss the rebuild saves it, with the totals it read: saved
                        // alone, a crash in between would resume there with the old totals.
                        self.token = stream.start_token();
                        if !rebuild {
                            self.save_position().await?;
                        }
                    }
                    if std::mem::take(&mut rebuild) {
                        let opened_at = stream.opened_at().map(cluster_time);
                        self.rebuild_open_windows(opened_at).await?;
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
                    self.alerts.raise(Alert::HistoryLost { code });
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
        self.save_position().await?;
        info!("Change stream stopped; final checkpoint saved.");
        Ok(())
    }

    fn on_connected(&mut self, backoff: &mut backoff::ExponentialBackoff) {
        if self.live.connected.swap(true, Relaxed) || self.down_since.is_some() {
            self.live.reconnects.fetch_add(1, Relaxed);
        }
        self.closer.connected_now();
        self.empty_batches = 0;
        self.live.caught_up.store(false, Relaxed);
        info!(resuming = self.token.is_some(), "Change stream open.");
        backoff.reset();
        self.down_since = None;
    }

    fn on_disconnected(&mut self) {
        self.closer.disconnected();
        self.live.connected.store(false, Relaxed);
        self.live.caught_up.store(false, Relaxed);
        let since = *self.down_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.config.alert_stream_down {
            self.alerts.raise(Alert::StreamDown {
                down_secs: since.elapsed().as_secs(),
            });
        }
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
        }
    }

    /// Folds one server batch, closing windows and saving between events where due. The token
    /// saved is always the position just after the last event applied.
    async fn apply_batch(&mut self, batch: &Batch) -> Result<(), SourceError> {
        let events = batch.events().map_err(SourceError::classify)?;
        self.apply_events(events, || batch.end_token()).await
    }

    /// [`Self::apply_batch`] on the batch's events (`None`: one that cannot be read) and the
    /// position after them, if the server says.
    async fn apply_events<'b>(
        &mut self,
        events: impl Iterator<Item = Option<&'b RawDocument>>,
        end_token: impl FnOnce() -> Option<ResumeToken>,
    ) -> Result<(), SourceError> {
        let mut now = Now::read();
        let mut last = None;
        for (i, event) in events.enumerate() {
            let Some(event) = event else {
                // The reply is malformed past this point: resume after the last event applied
                // (its effects are in the totals), never before it, and re-read the rest.
                if let Some(token) = last.and_then(event_token) {
                    self.token = Some(token);
                }
                return Err(SourceError::Malformed);
            };
            // The clock every few events: a read per event is a measurable share of the hot
            // path, and a few microseconds of staleness changes nothing here.
            let clock_read = i % CLOCK_EVERY_EVENTS == 0;
            if clock_read && i > 0 {
                now = Now::read();
            }
            let read = Event::read(event);
            if let Some(at) = read.cluster_time {
                let committed_ms = ((at >> 32) as i64).saturating_mul(1000);
                self.live.last_event_ms.store(committed_ms, Relaxed);
                self.live.lag_ms.store(
                    now.wall
                        .timestamp_millis()
                        .saturating_sub(committed_ms)
                        .max(0),
                    Relaxed,
                );
            }
            self.apply(event, &read, now.wall);
            last = Some(event);
            if self.closer.event(read.cluster_time) == Step::Poll || clock_read {
                self.step(now, Some(event)).await?;
            }
        }
        // The whole batch is applied: the stream's position is after it.
        let end = end_token();
        if last.is_none() {
            self.closer
                .empty_batch(end.clone().map_or(Position::Unsaid, Position::Token));
        }
        if let Some(token) = end.or_else(|| last.and_then(event_token)) {
            self.token = Some(token);
        }
        self.note_caught_up(last);
        self.step(Now::read(), None).await
    }

    /// After a batch (`last`: its last event, if any): whether the stream has caught up
    /// ([`Live::caught_up`]).
    fn note_caught_up(&mut self, last: Option<&RawDocument>) {
        let caught_up = match last {
            Some(_) => {
                self.empty_batches = 0;
                let lag_ms = u64::try_from(self.live.lag_ms.load(Relaxed)).unwrap_or(0);
                u128::from(lag_ms) <= CAUGHT_UP_LAG.as_millis()
            }
            // Caught up stays so on an idle stream; behind, two in a row prove the end.
            None => {
                self.empty_batches = self.empty_batches.saturating_add(1);
                self.empty_batches >= 2 || self.live.caught_up.load(Relaxed)
            }
        };
        self.live.caught_up.store(caught_up, Relaxed);
    }

    fn apply(&mut self, event: &bson::RawDocument, read: &Event<'_>, now: DateTime<Utc>) {
        match self.fold.apply_read(read, now, &self.live) {
            Folded::Counted | Folded::Ignored => {}
            Folded::Late { window, delta } => {
                self.live.events_late.fetch_add(1, Relaxed);
                if self.late_log.allow() {
                    warn!(window = %window.id(), %delta, document_id = %document_id(event), "A sale of a closed window changed; the next report re-checks it if this service reported that window, and counts it otherwise.");
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
                    warn!(document_id = %document_id(event), reason = reason.as_str(), "Sale skipped.");
                }
            }
        }
    }
}

fn reconnect_backoff() -> backoff::ExponentialBackoff {
    backoff::ExponentialBackoff {
        initial_interval: Duration::from_millis(500),
        max_interval: Duration::from_secs(30),
        max_elapsed_time: None, // always-on: never give up
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
