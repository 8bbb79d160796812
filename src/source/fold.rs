//! Folding one change event into the live totals: decode the projected raw event, judge the
//! sale before and after it ([`crate::change`]), move the difference between open windows and
//! mark closed windows whose sales changed. No I/O; the hot path (see `benches/fold.rs`).

use super::live::Live;
use crate::activity::{bucket_of, Activity};
use crate::change::{latest_ms, Effect, Image, Judge, Marks, OldWindow, Op, Parts};
use crate::config::Fields;
use crate::rules::{Paths, Sale, SkipReason};
use crate::window::{OpenWindow, Window, WindowId, WindowSpec};
use bson::{RawBsonRef, RawDocument};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

/// What became of one event (the most notable of its effects, for counters and logs).
#[derive(Debug, PartialEq)]
pub enum Folded {
    /// An open window's live totals changed.
    Counted,
    /// A sale of a closed window changed (added, removed or moved): marked for a re-check.
    Late {
        window: Window,
        delta: Decimal,
    },
    /// A sale changed whose old window cannot be told (no pre-image): every reported window
    /// within the horizon is re-checked.
    ChangedSomewhere,
    Skipped(SkipReason),
    /// Nothing that counts changed (another status, or the same sale before and after).
    Ignored,
}

/// Whether a sale that counts is a new one for the activity, or an edit of one counted before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sold {
    New,
    Edited,
}

/// A MongoDB cluster time (`Timestamp` seconds and increment) as one ordered number.
pub type ClusterTime = u64;

pub fn cluster_time(ts: bson::Timestamp) -> ClusterTime {
    (u64::from(ts.time) << 32) | u64::from(ts.increment)
}

/// The parts of a projected change event the tailer reads, found in one pass.
pub struct Event<'a> {
    pub cluster_time: Option<ClusterTime>,
    pub parts: Parts<'a>,
}

impl<'a> Event<'a> {
    pub fn read(event: &'a RawDocument) -> Event<'a> {
        let doc = |v: Option<RawBsonRef<'a>>| match v {
            Some(RawBsonRef::Document(d)) => Some(d),
            _ => None,
        };
        // Inserts are almost every event and need neither pre-image nor update description:
        // this walk stops at the full document, and only other operations walk on.
        let [time, full, op] =
            crate::raw::find(event, ["clusterTime", "fullDocument", "operationType"]);
        let op = Op::parse(op);
        let (before, update) = match op {
            Op::Insert | Op::Other => (None, None),
            _ => {
                let [before, update] =
                    crate::raw::find(event, ["fullDocumentBeforeChange", "updateDescription"]);
                (doc(before), doc(update))
            }
        };
        Event {
            cluster_time: match time {
                Some(RawBsonRef::Timestamp(ts)) => Some(cluster_time(ts)),
                _ => None,
            },
            parts: Parts {
                op,
                full: doc(full),
                before,
                update,
            },
        }
    }
}

/// Folds change events into the live totals. Owns what an event's effect depends on besides
/// the event: which windows are open, since when the stream has no gap, and which windows'
/// totals were read from the database (fenced).
pub struct Fold {
    spec: WindowSpec,
    /// Windows starting before this are closed.
    open_from: DateTime<Utc>,
    /// Since when the stream has no gap (windows opened earlier are only partly streamed).
    started_at: DateTime<Utc>,
    /// The time of the event being applied, as the caller last read the clock.
    now: DateTime<Utc>,
    /// Sales dated further ahead of `now` are skipped.
    max_future: std::time::Duration,
    /// Windows whose totals were read from the database after the stream opened, with the
    /// cluster time of that read: events up to it are in those totals already.
    fences: BTreeMap<WindowId, ClusterTime>,
    /// The cluster time of the event being applied.
    at: Option<ClusterTime>,
    /// Changes to closed windows, taken by the next checkpoint.
    pub marks: Marks,
    /// Sales counted into open windows per bucket and utility, taken by the next checkpoint.
    pub activity: Activity,
    /// The activity's bucket length, ms ([`crate::activity::bucket_ms`]).
    bucket_ms: i64,
    judge: Judge,
    /// The window of the previous sale, and its bounds in milliseconds: almost every sale
    /// falls into it, and finding a window from scratch (time-zone arithmetic) costs more
    /// than the rest of the fold.
    recent: Option<(Window, std::ops::Range<i64>)>,
}

impl Fold {
    /// A fold whose windows from `open_from` on are open, streamed without a gap since then.
    pub fn new(
        fields: Fields,
        fulfilled: &str,
        spec: WindowSpec,
        open_from: DateTime<Utc>,
    ) -> Fold {
        let bucket_ms = crate::activity::bucket_ms(&spec, None);
        Fold {
            judge: Judge {
                paths: Paths::new(&fields),
                fulfilled: fulfilled.to_owned(),
                latest_ms: i64::MAX,
            },
            spec,
            open_from,
            started_at: open_from,
            now: open_from,
            max_future: std::time::Duration::from_secs(86_400),
            fences: BTreeMap::new(),
            at: None,
            marks: Marks::default(),
            activity: Activity::default(),
            bucket_ms,
            recent: None,
        }
    }

    /// Sales dated further ahead of the event's `now` than this are skipped.
    pub fn with_max_future(mut self, max_future: std::time::Duration) -> Fold {
        self.max_future = max_future;
        self
    }

    /// Activity buckets of `bucket_ms` ([`crate::config::Config::bucket_ms`]).
    pub(crate) fn with_bucket_ms(mut self, bucket_ms: i64) -> Fold {
        self.bucket_ms = bucket_ms.max(1);
        self
    }

    /// Since when the stream has had no gap.
    pub(crate) fn with_started_at(mut self, started_at: DateTime<Utc>) -> Fold {
        self.started_at = started_at;
        self
    }

    /// Windows starting before `open_from` are closed from now on.
    pub(crate) fn close_before(&mut self, open_from: DateTime<Utc>) {
        self.open_from = open_from;
        if !self.fences.is_empty() {
            self.fences
                .retain(|id, _| id.0 >= open_from.timestamp_millis());
        }
    }

    /// `window`'s totals were just read from the database at cluster time `read_at`: events
    /// up to it are in them, and only later ones may change them.
    pub(crate) fn fence(&mut self, window: WindowId, read_at: ClusterTime) {
        self.fences.insert(window, read_at);
    }

    /// Whether the event being applied is already in `window`'s totals (read at a fence).
    fn fenced(&self, window: WindowId) -> bool {
        if self.fences.is_empty() {
            return false;
        }
        match (self.fences.get(&window), self.at) {
            (Some(read_at), Some(at)) => at <= *read_at,
            _ => false,
        }
    }

    fn window_of(&mut self, at_ms: i64) -> Window {
        match &self.recent {
            Some((w, ms)) if ms.contains(&at_ms) => *w,
            _ => {
                let at = DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
                let w = self.spec.window_of(at);
                let ms = w.start.timestamp_millis()..w.end.timestamp_millis();
                self.recent.insert((w, ms)).0
            }
        }
    }

    /// Applies one raw change event, `now` being the caller's clock.
    pub fn apply(&mut self, event: &RawDocument, now: DateTime<Utc>, live: &Live) -> Folded {
        self.apply_read(&Event::read(event), now, live)
    }

    /// Applies one change event already read.
    pub(crate) fn apply_read(
        &mut self,
        event: &Event<'_>,
        now: DateTime<Utc>,
        live: &Live,
    ) -> Folded {
        self.now = now;
        self.at = event.cluster_time;
        self.judge.latest_ms = latest_ms(now, self.max_future);
        // Inserts (almost every event) straight to their window: what `Effect::Exact` with
        // nothing before would do, without building it.
        if let (Op::Insert, Some(full)) = (event.parts.op, event.parts.full) {
            return match self
                .judge
                .judge(crate::rules::lookup4(full, &self.judge.paths))
            {
                Image::Sale(sale) => self.add(&sale, live, Sold::New),
                Image::Skipped(reason) => Folded::Skipped(reason),
                Image::NotASale => Folded::Ignored,
            };
        }
        let (out, after, sold) = match self.judge.effect(&event.parts) {
            Effect::Exact { before, after } => {
                if let (Image::Sale(b), Image::Sale(a)) = (&before, &after) {
                    if b == a {
                        return Folded::Ignored;
                    }
                }
                let (out, sold) = match before {
                    Image::Sale(sale) => (self.remove(&sale, live), Sold::Edited),
                    _ => (Folded::Ignored, Sold::New),
                };
                (out, after, sold)
            }
            Effect::Fulfilled { after } => (Folded::Ignored, after, Sold::New),
            Effect::Unknown { after, window } => {
                let out = match window {
                    OldWindow::At(ms) => {
                        let w = self.window_of(ms);
                        if w.start < self.open_from {
                            self.marks.mark(w.id(), Decimal::ZERO);
                            Folded::Late {
                                window: w,
                                delta: Decimal::ZERO,
                            }
                        } else {
                            Folded::Ignored
                        }
                    }
                    OldWindow::Any => {
                        self.marks.anywhere.shift(Decimal::ZERO);
                        Folded::ChangedSomewhere
                    }
                };
                // A replaced document that is a sale counts (as it always did); a looked-up
                // document after an update only marks its window, the amount before unknown.
                match (event.parts.op, after, window) {
                    (Op::Replace, after, _) => (out, after, Sold::New),
                    (_, Image::Sale(sale), OldWindow::Any) => {
                        let w = self.window_of(sale.at_ms);
                        if w.start < self.open_from {
                            self.marks.mark(w.id(), Decimal::ZERO);
                        }
                        return out;
                    }
                    _ => return out,
                }
            }
        };
        match after {
            Image::Sale(sale) => self.add(&sale, live, sold).max_with(out),
            Image::Skipped(reason) => Folded::Skipped(reason),
            Image::NotASale => out,
        }
    }

    /// A sale that now counts: into its open window, or marked on its closed one; a new one
    /// (not an edit of one counted before) in the activity either way.
    fn add(&mut self, sale: &Sale<'_>, live: &Live, sold: Sold) -> Folded {
        let window = self.window_of(sale.at_ms);
        if sold == Sold::New {
            self.activity
                .count(bucket_of(sale.at_ms, self.bucket_ms), &sale.utility);
        }
        if window.start < self.open_from {
            self.marks.mark(window.id(), sale.amount);
            return Folded::Late {
                window,
                delta: sale.amount,
            };
        }
        if self.fenced(window.id()) {
            return Folded::Ignored;
        }
        let since = self.started_at.max(window.start);
        let mut open = live
            .windows
            .entry(window.id())
            .or_insert_with(|| OpenWindow::new(window, since));
        if open.totals.add(&sale.utility, sale.amount).is_err() {
            return Folded::Skipped(SkipReason::TotalOverflow);
        }
        open.events_applied += 1;
        open.last_event_at = Some(self.now);
        live.events_applied.fetch_add(1, Relaxed);
        Folded::Counted
    }

    /// A sale that no longer counts as it was: out of its open window, or marked on its
    /// closed one.
    fn remove(&mut self, sale: &Sale<'_>, live: &Live) -> Folded {
        let window = self.window_of(sale.at_ms);
        if window.start < self.open_from {
            self.marks.mark(window.id(), -sale.amount);
            return Folded::Late {
                window,
                delta: -sale.amount,
            };
        }
        if self.fenced(window.id()) {
            return Folded::Ignored;
        }
        if let Some(mut open) = live.windows.get_mut(&window.id()) {
            open.totals.remove(&sale.utility, sale.amount);
            open.events_applied += 1;
            open.last_event_at = Some(self.now);
        }
        live.events_applied.fetch_add(1, Relaxed);
        Folded::Counted
    }
}

impl Folded {
    /// The more notable of two outcomes: a skip, then a closed window, then an open one.
    fn max_with(self, other: Folded) -> Folded {
        let rank = |f: &Folded| match f {
            Folded::Skipped(_) => 4,
            Folded::Late { .. } => 3,
            Folded::ChangedSomewhere => 2,
            Folded::Counted => 1,
            Folded::Ignored => 0,
        };
        if rank(&other) > rank(&self) {
            other
        } else {
            self
        }
    }
}

/// The document id of an event, for logs: exact, with anything in a string id that would act
/// on a terminal or forge a log line escaped ([`crate::display::escaped`]).
pub fn document_id(event: &RawDocument) -> String {
    event
        .get_document("documentKey")
        .ok()
        .and_then(|k| k.get("_id").ok().flatten())
        .and_then(|v| bson::Bson::try_from(v).ok())
        .map_or_else(
            || "?".to_owned(),
            |b| crate::display::escaped(&b.to_string()).into_owned(),
        )
}

#[cfg(test)]
mod tests;
