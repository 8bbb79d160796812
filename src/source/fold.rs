//! Folding one change event into the live totals: decode the projected raw event, apply the
//! rules, find the window. No I/O; the hot path of the service (see `benches/fold.rs`).

use super::live::Live;
use crate::config::Fields;
use crate::rules::{self, Paths, SkipReason};
use crate::window::{OpenWindow, Window, WindowSpec};
use bson::{RawBsonRef, RawDocument};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::sync::atomic::Ordering::Relaxed;

/// What became of one event.
#[derive(Debug, PartialEq)]
pub enum Folded {
    Counted,
    /// The sale's window was already closed (handed to the outbox).
    Late {
        window: Window,
        utility: String,
        amount: Decimal,
    },
    Skipped(&'static str),
}

/// A MongoDB cluster time (`Timestamp` seconds and increment) as one ordered number.
pub type ClusterTime = u64;

/// A cluster time the server did not say: never reached by any event.
pub const CLUSTER_TIME_UNKNOWN: ClusterTime = u64::MAX;

pub fn cluster_time(ts: bson::Timestamp) -> ClusterTime {
    (u64::from(ts.time) << 32) | u64::from(ts.increment)
}

/// The parts of a projected change event the tailer reads, found in one pass.
pub struct Event<'a> {
    pub cluster_time: Option<ClusterTime>,
    pub full_document: Option<&'a RawDocument>,
}

impl<'a> Event<'a> {
    pub fn read(event: &'a RawDocument) -> Event<'a> {
        let [time, full] = crate::raw::find(event, ["clusterTime", "fullDocument"]);
        Event {
            cluster_time: match time {
                Some(RawBsonRef::Timestamp(ts)) => Some(cluster_time(ts)),
                _ => None,
            },
            full_document: match full {
                Some(RawBsonRef::Document(doc)) => Some(doc),
                _ => None,
            },
        }
    }
}

pub struct Fold {
    pub spec: WindowSpec,
    /// Windows starting before this are closed.
    pub open_from: DateTime<Utc>,
    /// When this process began streaming (windows opened later are only partly streamed).
    pub started_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    paths: Paths,
    /// The window of the previous sale, and its bounds in milliseconds: almost every sale
    /// falls into it, and finding a window from scratch (time-zone arithmetic) costs more
    /// than the rest of the fold.
    recent: Option<(Window, std::ops::Range<i64>)>,
}

impl Fold {
    pub fn new(fields: Fields, spec: WindowSpec, open_from: DateTime<Utc>) -> Fold {
        Fold {
            paths: Paths::new(&fields),
            spec,
            open_from,
            started_at: open_from,
            now: open_from,
            recent: None,
        }
    }

    fn window_of(&mut self, at_ms: i64, at: impl FnOnce() -> DateTime<Utc>) -> Window {
        match &self.recent {
            Some((w, ms)) if ms.contains(&at_ms) => *w,
            _ => {
                let w = self.spec.window_of(at());
                let ms = w.start.timestamp_millis()..w.end.timestamp_millis();
                self.recent.insert((w, ms)).0
            }
        }
    }

    pub fn apply(&mut self, event: &RawDocument, live: &Live) -> Folded {
        self.apply_read(&Event::read(event), live)
    }

    pub fn apply_read(&mut self, event: &Event<'_>, live: &Live) -> Folded {
        let sale = match event.full_document {
            Some(doc) => rules::classify_at(doc, &self.paths),
            None => Err(SkipReason::NoDocument),
        };
        let sale = match sale {
            Ok(sale) => sale,
            Err(reason) => return Folded::Skipped(reason.as_str()),
        };
        let window = self.window_of(sale.at_ms, || sale.at());
        if window.start < self.open_from {
            return Folded::Late {
                window,
                utility: sale.utility.into_owned(),
                amount: sale.amount,
            };
        }
        let since = self.started_at.max(window.start);
        let mut open = live
            .windows
            .entry(window.id())
            .or_insert_with(|| OpenWindow::new(window, since));
        if open.totals.add(&sale.utility, sale.amount).is_err() {
            return Folded::Skipped("total_overflow");
        }
        open.events_applied += 1;
        open.last_event_at = Some(self.now);
        live.events_applied.fetch_add(1, Relaxed);
        Folded::Counted
    }
}

/// The document id of an event, for logs.
pub fn document_id(event: &RawDocument) -> String {
    event
        .get_document("documentKey")
        .ok()
        .and_then(|k| k.get("_id").ok().flatten())
        .and_then(|v| bson::Bson::try_from(v).ok())
        .map_or_else(|| "?".to_owned(), |b| b.to_string())
}
