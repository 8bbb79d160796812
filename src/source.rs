//! The change stream: tails fulfilled sales, folds them into the live per-window totals,
//! checkpoints token + totals together, and hands windows that are due to the outbox.
//!
//! This task is the only writer of the totals, so whatever it saves between two events is a
//! consistent pair: every event up to the saved token is in the saved totals, none after it.

use crate::config::{Config, Fields};
use crate::rules::{self, SkipReason};
use crate::store::{Checkpoint, ReportRecord, Store, StoreError};
use crate::window::{OpenWindow, Totals, Window, WindowId};
use backoff::backoff::Backoff;
use bson::{doc, Document, RawDocument, RawDocumentBuf};
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use mongodb::change_stream::event::ResumeToken;
use mongodb::change_stream::ChangeStream;
use mongodb::error::ErrorKind;
use mongodb::options::FullDocumentType;
use mongodb::Collection;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Save at least this often while anything changed…
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// …or after this many events, whichever comes first.
const CHECKPOINT_EVENTS: u64 = 10_000;
/// Longest wait for a getMore on an idle stream; bounds shutdown and close latency.
const MAX_AWAIT: Duration = Duration::from_millis(500);
/// After (re)connecting, a due window waits at most this long for the stream to catch up.
const MAX_CATCH_UP: Duration = Duration::from_secs(30);

/// Server error codes after which a token can never be resumed.
const HISTORY_LOST: [i32; 3] = [286, 280, 260];

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("the saved resume token is no longer in the oplog (code {code}); the stream cannot resume from it")]
    HistoryLost { code: i32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SourceError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Mongo(e) => !matches!(
                *e.kind,
                ErrorKind::Authentication { .. } | ErrorKind::InvalidArgument { .. }
            ),
            Self::HistoryLost { .. } => false,
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

/// The live, readable state: open windows and counters. Written only by [`Tailer`].
#[derive(Debug, Default)]
pub struct Live {
    pub windows: DashMap<WindowId, OpenWindow>,
    pub events_applied: AtomicU64,
    pub events_skipped: AtomicU64,
    pub events_late: AtomicU64,
    pub reconnects: AtomicU64,
    pub checkpoints: AtomicU64,
    pub connected: AtomicBool,
    /// Unix ms of the last durable checkpoint (0: none yet).
    pub checkpoint_at_ms: AtomicI64,
}

impl Live {
    /// Open windows, oldest first.
    pub fn snapshot(&self) -> Vec<OpenWindow> {
        let mut v: Vec<_> = self.windows.iter().map(|e| e.value().clone()).collect();
        v.sort_by_key(|w| w.window.start);
        v
    }
}

pub struct Tailer {
    coll: Collection<Document>,
    config: Arc<Config>,
    store: Store,
    live: Arc<Live>,
    outbox: Arc<Notify>,
    token: Option<ResumeToken>,
    next_close: Window,
    started_at: DateTime<Utc>,
    late: BTreeMap<WindowId, Totals>,
    unsaved_events: u64,
    last_save: Instant,
    caught_up: bool,
    connected_at: Instant,
}

impl Tailer {
    /// Restores the checkpoint (token, open windows, next window to close) into `live`.
    pub fn restore(
        coll: Collection<Document>,
        config: Arc<Config>,
        store: Store,
        live: Arc<Live>,
        outbox: Arc<Notify>,
        now: DateTime<Utc>,
    ) -> Result<Tailer, SourceError> {
        let (token, next_close) = match store.load_checkpoint()? {
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
        Ok(Tailer {
            coll,
            config,
            store,
            live,
            outbox,
            token,
            next_close,
            started_at: now,
            late: BTreeMap::new(),
            unsaved_events: 0,
            last_save: Instant::now(),
            caught_up: false,
            connected_at: Instant::now(),
        })
    }

    /// Runs until `shutdown`, reconnecting with backoff; saves a final checkpoint on the way out.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), SourceError> {
        let mut backoff = reconnect_backoff();
        while !shutdown.is_cancelled() {
            match self.open_stream().await {
                Ok(stream) => {
                    if self.live.connected.swap(true, Relaxed) {
                        self.live.reconnects.fetch_add(1, Relaxed);
                    }
                    info!(resuming = self.token.is_some(), "Change stream open.");
                    backoff.reset();
                    self.caught_up = false;
                    self.connected_at = Instant::now();
                    if let Err(error) = self.tail(stream, &shutdown).await {
                        if !error.is_retryable() {
                            return Err(error);
                        }
                        warn!(%error, "Change stream interrupted; reconnecting.");
                    }
                }
                Err(error) if error.is_retryable() => {
                    warn!(%error, "Cannot open the change stream; retrying with backoff.");
                }
                Err(error) => return Err(error),
            }
            self.live.connected.store(false, Relaxed);
            let pause = backoff.next_backoff().unwrap_or(Duration::from_secs(30));
            self.wait_disconnected(pause, &shutdown).await?;
        }
        self.save(Vec::new()).await?;
        info!("Change stream stopped; final checkpoint saved.");
        Ok(())
    }

    async fn open_stream(&self) -> Result<ChangeStream<RawDocumentBuf>, SourceError> {
        let mut watch = self
            .coll
            .watch()
            .pipeline(stream_pipeline(
                &self.config.fields,
                &self.config.fulfilled_status,
            ))
            .full_document(FullDocumentType::UpdateLookup)
            .max_await_time(MAX_AWAIT)
            .batch_size(1000);
        if let Some(token) = &self.token {
            watch = watch.start_after(token.clone());
        }
        let stream = watch.await.map_err(SourceError::classify)?;
        Ok(stream.with_type::<RawDocumentBuf>())
    }

    async fn tail(
        &mut self,
        mut stream: ChangeStream<RawDocumentBuf>,
        shutdown: &CancellationToken,
    ) -> Result<(), SourceError> {
        loop {
            if shutdown.is_cancelled() {
                self.token = stream.resume_token().or(self.token.take());
                return Ok(());
            }
            // Dropping an in-flight getMore on shutdown is safe: the token only advances when
            // events are handed out, so unread events are read again after a restart.
            let next = tokio::select! {
                next = stream.next_if_any() => next,
                _ = shutdown.cancelled() => continue,
            };
            match next {
                Ok(Some(event)) => self.apply(&event),
                Ok(None) => self.caught_up = true,
                Err(e) => {
                    // The token covers exactly what was applied: resume from it.
                    self.token = stream.resume_token().or(self.token.take());
                    return Err(SourceError::classify(e));
                }
            }
            if self.due_for_save() || self.window_due(Utc::now()) {
                self.token = stream.resume_token().or(self.token.take());
                self.close_due_and_save(Utc::now()).await?;
            }
        }
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

    fn apply(&mut self, event: &RawDocument) {
        self.unsaved_events += 1;
        let outcome = match event.get("fullDocument") {
            Ok(Some(bson::RawBsonRef::Document(doc))) => rules::classify(doc, &self.config.fields),
            _ => Err(SkipReason::NoDocument),
        };
        match outcome {
            Ok(sale) => {
                let window = self.config.window.window_of(sale.at);
                if window.start < self.next_close.start {
                    self.late_sale(window, &sale.utility, sale.amount);
                    return;
                }
                let since = self.started_at.max(window.start);
                let mut open = self
                    .live
                    .windows
                    .entry(window.id())
                    .or_insert_with(|| OpenWindow::new(window, since));
                match open.totals.add(&sale.utility, sale.amount) {
                    Ok(()) => {
                        open.events_applied += 1;
                        open.last_event_at = Some(Utc::now());
                        self.live.events_applied.fetch_add(1, Relaxed);
                    }
                    Err(_) => self.skipped(event, "total_overflow"),
                }
            }
            Err(reason) => self.skipped(event, reason.as_str()),
        }
    }

    fn late_sale(&mut self, window: Window, utility: &str, amount: rust_decimal::Decimal) {
        self.live.events_late.fetch_add(1, Relaxed);
        warn!(window = %window.id(), %utility, %amount, "Sale arrived after its window closed; counted as late.");
        let _ = self
            .late
            .entry(window.id())
            .or_default()
            .add(utility, amount);
    }

    fn skipped(&self, event: &RawDocument, reason: &'static str) {
        self.live.events_skipped.fetch_add(1, Relaxed);
        let id = event
            .get_document("documentKey")
            .ok()
            .and_then(|k| k.get("_id").ok().flatten())
            .and_then(|v| bson::Bson::try_from(v).ok())
            .map_or_else(|| "?".to_owned(), |b| b.to_string());
        warn!(document_id = %id, reason, "Sale skipped.");
    }

    fn due_for_save(&self) -> bool {
        self.unsaved_events >= CHECKPOINT_EVENTS || self.last_save.elapsed() >= CHECKPOINT_INTERVAL
    }

    fn window_due(&self, now: DateTime<Utc>) -> bool {
        let grace = chrono::TimeDelta::from_std(self.config.grace).unwrap_or_default();
        now >= self.next_close.end + grace
    }

    /// Moves every due window from the live set to the outbox, in the same write as the
    /// checkpoint. While (re)connecting it waits for the stream to catch up, at most a bound.
    async fn close_due_and_save(&mut self, now: DateTime<Utc>) -> Result<(), SourceError> {
        let settled = self.caught_up
            || !self.live.connected.load(Relaxed)
            || self.connected_at.elapsed() >= MAX_CATCH_UP;
        let mut closed = Vec::new();
        while settled && self.window_due(now) {
            let w = self.next_close;
            let open = match self.live.windows.remove(&w.id()) {
                Some((_, open)) => open,
                None => OpenWindow::new(w, self.started_at.clamp(w.start, w.end)),
            };
            info!(window = %w.id(), events = open.events_applied, "Window closed.");
            closed.push(ReportRecord::closed(open, now));
            self.next_close = self.config.window.next(&w);
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
        if any_closed || self.unsaved_events > 0 || self.last_save.elapsed() >= CHECKPOINT_INTERVAL
        {
            self.save(closed).await?;
        }
        if any_closed {
            self.outbox.notify_one();
        }
        Ok(())
    }

    async fn save(&mut self, mut records: Vec<ReportRecord>) -> Result<(), SourceError> {
        for (id, late) in std::mem::take(&mut self.late) {
            let record = records.iter_mut().find(|r| r.window.id() == id);
            let mut stored = match record {
                Some(r) => r.clone(),
                None => match self.store.report(id)? {
                    Some(r) => r,
                    None => continue,
                },
            };
            for (_, t) in late.by_utility {
                stored.late.revenue += t.revenue;
                stored.late.count += t.count;
            }
            records.retain(|r| r.window.id() != id);
            records.push(stored);
        }
        let cp = Checkpoint {
            token: self.token.clone(),
            open: self.live.snapshot(),
            next_close: self.next_close,
            saved_at: Utc::now(),
        };
        let started = Instant::now();
        self.store.save_checkpoint(&cp, &records).await?;
        debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            events = self.unsaved_events,
            "Checkpoint saved."
        );
        self.unsaved_events = 0;
        self.last_save = Instant::now();
        self.live.checkpoints.fetch_add(1, Relaxed);
        self.live
            .checkpoint_at_ms
            .store(cp.saved_at.timestamp_millis(), Relaxed);
        Ok(())
    }
}

/// Server-side filter and projection: only fulfilled sales, only the fields we read.
pub fn stream_pipeline(fields: &Fields, fulfilled: &str) -> Vec<Document> {
    let mut project = doc! { "operationType": 1, "documentKey": 1 };
    for f in [&fields.time, &fields.amount, &fields.utility] {
        project.insert(format!("fullDocument.{f}"), 1);
    }
    vec![
        doc! { "$match": { "$or": [
            { "operationType": { "$in": ["insert", "replace"] }, format!("fullDocument.{}", fields.status): fulfilled },
            { "operationType": "update", format!("updateDescription.updatedFields.{}", fields.status): fulfilled },
        ] } },
        doc! { "$project": project },
    ]
}

fn reconnect_backoff() -> backoff::ExponentialBackoff {
    backoff::ExponentialBackoff {
        initial_interval: Duration::from_millis(500),
        max_interval: Duration::from_secs(30),
        max_elapsed_time: None, // always-on: never give up
        ..Default::default()
    }
}
