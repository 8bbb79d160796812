//! What one change event does to the sales: the sale before it and the sale after it, as far
//! as the event tells. Pure; the tailer folds the result into the live totals and marks closed
//! windows for a re-check ([`crate::source`]).
//!
//! With pre-images (`changeStreamPreAndPostImages` on the collection, requested with
//! `fullDocumentBeforeChange: whenAvailable`) every event knows both sides exactly: the after
//! side of an update is the pre-image with the update applied (a looked-up document may already
//! be newer than the update). Without a pre-image an update, replace or delete only says where
//! the sale is now, if anywhere; the report then asks the database.

use crate::rules::{self, Paths, Sale, SkipReason};
use crate::window::{Tally, WindowId};
use bson::{RawBsonRef, RawDocument};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// One document image judged by the rules.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Image<'a> {
    /// A fulfilled sale that counts.
    Sale(Sale<'a>),
    /// Not a fulfilled sale (another status, or no document).
    NotASale,
    /// Fulfilled but not countable (bad amount, time not a date, dated too far ahead).
    Skipped(SkipReason),
}

/// What an event says about the sale it touches.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect<'a> {
    /// Both sides known: an insert, or any change that carried a pre-image.
    Exact { before: Image<'a>, after: Image<'a> },
    /// The sale was not one before (an update that set the fulfilled status): counted as new,
    /// as without pre-images nothing better is known.
    Fulfilled { after: Image<'a> },
    /// The side before is unknown. `after` is where the document is now (if it is a sale);
    /// `window`: the sale's old window, where the event tells.
    Unknown { after: Image<'a>, window: OldWindow },
}

/// Without a pre-image: where the sale was before the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OldWindow {
    /// The change left the time alone: the window of the document's time now (Unix ms).
    At(i64),
    /// Replaced, deleted, time changed, or the document is gone: any window may have changed.
    Any,
}

/// The operation of a change event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Replace,
    Delete,
    /// Anything else (`invalidate`, `drop`, newer kinds): nothing to count.
    Other,
}

impl Op {
    pub fn parse(s: Option<RawBsonRef<'_>>) -> Op {
        match s {
            Some(RawBsonRef::String("insert")) => Op::Insert,
            Some(RawBsonRef::String("update")) => Op::Update,
            Some(RawBsonRef::String("replace")) => Op::Replace,
            Some(RawBsonRef::String("delete")) => Op::Delete,
            _ => Op::Other,
        }
    }
}

/// The parts of a change event that decide its effect.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    pub op: Op,
    /// The new document (insert, replace) or, for an update, the document looked up later.
    pub full: Option<&'a RawDocument>,
    /// The pre-image, where the server keeps them.
    pub before: Option<&'a RawDocument>,
    /// `updateDescription` of an update.
    pub update: Option<&'a RawDocument>,
}

/// The rules for judging images: field paths, the fulfilled value, the latest sale time.
pub(crate) struct Judge {
    pub paths: Paths,
    pub fulfilled: String,
    /// Sales dated after this (now + `POWER_REVENUE_MAX_FUTURE`), in Unix ms, are skipped.
    pub latest_ms: i64,
}

impl Judge {
    /// The effect of one event.
    pub(crate) fn effect<'a>(&self, parts: &Parts<'a>) -> Effect<'a> {
        let image = |doc: Option<&'a RawDocument>| match doc {
            Some(d) => self.judge(rules::lookup4(d, &self.paths)),
            None => Image::NotASale,
        };
        match (parts.op, parts.before) {
            (Op::Insert, _) => Effect::Exact {
                before: Image::NotASale,
                after: image(parts.full),
            },
            (Op::Other, _) => Effect::Exact {
                before: Image::NotASale,
                after: Image::NotASale,
            },
            (Op::Replace, Some(pre)) => Effect::Exact {
                before: image(Some(pre)),
                after: image(parts.full),
            },
            (Op::Delete, Some(pre)) => Effect::Exact {
                before: image(Some(pre)),
                after: Image::NotASale,
            },
            (Op::Update, Some(pre)) => match self.updated(pre, parts.update) {
                Some(values) => Effect::Exact {
                    before: image(Some(pre)),
                    after: self.judge(values),
                },
                // A part of one of our fields changed (e.g. `amount.value`): judge the
                // looked-up document, the old side exactly.
                None => Effect::Unknown {
                    after: image(parts.full),
                    window: OldWindow::Any,
                },
            },
            (Op::Update, None) if self.sets_fulfilled(parts.update) => Effect::Fulfilled {
                after: image(parts.full),
            },
            (Op::Update, None) => Effect::Unknown {
                after: image(parts.full),
                window: match parts
                    .full
                    .and_then(|d| date_ms(rules::lookup4(d, &self.paths)[0]))
                {
                    Some(ms) if !self.touches_time(parts.update) => OldWindow::At(ms),
                    _ => OldWindow::Any,
                },
            },
            (Op::Replace | Op::Delete, None) => Effect::Unknown {
                after: image(parts.full),
                window: OldWindow::Any,
            },
        }
    }

    /// Judges the four field values (time, amount, utility, status).
    pub(crate) fn judge<'a>(
        &self,
        [time, amount, utility, status]: [Option<RawBsonRef<'a>>; 4],
    ) -> Image<'a> {
        if status != Some(RawBsonRef::String(&self.fulfilled)) {
            return Image::NotASale;
        }
        match rules::classify_values(time, amount, utility) {
            Ok(sale) if sale.at_ms > self.latest_ms => Image::Skipped(SkipReason::TimeInFuture),
            Ok(sale) => Image::Sale(sale),
            Err(reason) => Image::Skipped(reason),
        }
    }

    /// The four field values after `update` is applied to `pre`; `None` when a part of one of
    /// them changed (a field below ours), which the event does not let us rebuild.
    fn updated<'a>(
        &self,
        pre: &'a RawDocument,
        update: Option<&'a RawDocument>,
    ) -> Option<[Option<RawBsonRef<'a>>; 4]> {
        let mut values = rules::lookup4(pre, &self.paths);
        let Some(update) = update else {
            return Some(values);
        };
        for (slot, path) in values.iter_mut().zip(self.paths.full()) {
            match field_after(update, path) {
                FieldAfter::Unchanged => {}
                FieldAfter::Set(v) => *slot = v,
                FieldAfter::Partly => return None,
            }
        }
        Some(values)
    }

    /// Whether the update sets the status to the fulfilled value.
    fn sets_fulfilled(&self, update: Option<&RawDocument>) -> bool {
        let Some(update) = update else { return false };
        let status = &self.paths.full()[3];
        matches!(field_after(update, status), FieldAfter::Set(Some(RawBsonRef::String(s))) if s == self.fulfilled)
    }

    fn touches_time(&self, update: Option<&RawDocument>) -> bool {
        let Some(update) = update else { return true };
        !matches!(
            field_after(update, &self.paths.full()[0]),
            FieldAfter::Unchanged
        )
    }
}

/// How an update changed one field path.
#[derive(Debug, Clone, Copy, PartialEq)]
enum FieldAfter<'a> {
    Unchanged,
    /// Set to this value (`None`: removed, or a parent set to something without it).
    Set(Option<RawBsonRef<'a>>),
    /// Something inside it changed.
    Partly,
}

/// How a field name in an update relates to one of our paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation<'a> {
    Same,
    /// The name is a parent of the path; the rest of the path below it.
    Parent(&'a str),
    /// The name is below the path.
    Child,
    Other,
}

/// Reads `updatedFields`, `removedFields` and `truncatedArrays` for `path`. Their names are
/// dotted paths (`$set {"meta.status": …}` arrives as the key `"meta.status"`), so a name may
/// be the path, a parent of it or a child of it.
fn field_after<'a>(update: &'a RawDocument, path: &str) -> FieldAfter<'a> {
    let relation = |name: &str| {
        if name == path {
            Relation::Same
        } else if let Some(rest) = path.strip_prefix(name).and_then(|r| r.strip_prefix('.')) {
            Relation::Parent(rest)
        } else if name.strip_prefix(path).is_some_and(|r| r.starts_with('.')) {
            Relation::Child
        } else {
            Relation::Other
        }
    };
    let mut result = FieldAfter::Unchanged;
    if let Ok(Some(RawBsonRef::Document(set))) = update.get("updatedFields") {
        for (name, value) in set.iter().flatten() {
            match relation(name) {
                Relation::Other => {}
                Relation::Same => result = FieldAfter::Set(Some(value)),
                Relation::Child => return FieldAfter::Partly,
                Relation::Parent(rest) => {
                    result = FieldAfter::Set(match value {
                        RawBsonRef::Document(d) => rules::lookup(d, rest),
                        _ => None,
                    })
                }
            }
        }
    }
    if let Ok(Some(RawBsonRef::Array(removed))) = update.get("removedFields") {
        for name in removed.into_iter().flatten() {
            if let RawBsonRef::String(name) = name {
                match relation(name) {
                    Relation::Other => {}
                    Relation::Child => return FieldAfter::Partly,
                    Relation::Same | Relation::Parent(_) => result = FieldAfter::Set(None),
                }
            }
        }
    }
    if let Ok(Some(RawBsonRef::Array(truncated))) = update.get("truncatedArrays") {
        for entry in truncated.into_iter().flatten() {
            let name = match entry {
                RawBsonRef::Document(d) => d.get_str("field").unwrap_or_default(),
                _ => "",
            };
            if relation(name) != Relation::Other {
                return FieldAfter::Partly;
            }
        }
    }
    result
}

/// A BSON date's Unix ms, if the value is one.
fn date_ms(v: Option<RawBsonRef<'_>>) -> Option<i64> {
    match v {
        Some(RawBsonRef::DateTime(d)) => Some(d.timestamp_millis()),
        _ => None,
    }
}

/// Changes to closed windows since the last checkpoint: per window (the number of changes and
/// the stream's estimate of the revenue they moved), and changes whose window is unknown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Marks {
    pub by_window: BTreeMap<WindowId, Tally>,
    pub anywhere: Tally,
}

impl Marks {
    pub fn is_empty(&self) -> bool {
        self.by_window.is_empty() && self.anywhere.count == 0
    }

    pub(crate) fn mark(&mut self, window: WindowId, delta: Decimal) {
        self.by_window.entry(window).or_default().shift(delta);
    }
}

/// The latest sale time accepted at `now`, in Unix ms.
pub fn latest_ms(now: DateTime<Utc>, max_future: std::time::Duration) -> i64 {
    let ahead = i64::try_from(max_future.as_millis()).unwrap_or(i64::MAX);
    now.timestamp_millis().saturating_add(ahead)
}

#[cfg(test)]
mod tests;
