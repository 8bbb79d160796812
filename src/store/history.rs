//! What the store holds of the time before the service's first start: the range whose
//! activity and windows were imported from the database ([`History`]), and each import step
//! written in one flushed batch with the progress that covers it, so an import stopped at any
//! line resumes where it stopped and never counts a sale twice.

use super::{decode, encode, Source, Store, StoreError, Told};
use crate::activity::Activity;
use crate::window::{Totals, Window};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

const KEY_HISTORY: &[u8] = b"history";

/// The imported history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Imported completely: `[covered_from, covered_until)`; from `covered_until` on, the
    /// stream counts.
    pub covered_from: DateTime<Utc>,
    pub covered_until: DateTime<Utc>,
    /// The import under way, if any.
    pub pass: Option<Pass>,
}

/// One import of `[from, until)`, done up to `next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pass {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub next: DateTime<Utc>,
    /// What it read so far: counted sales, windows kept, queries run.
    pub sales: u64,
    pub windows: u64,
    pub queries: u64,
}

impl History {
    /// The first start, the stream counting from `until`: everything from `from` to import.
    pub fn begin(from: DateTime<Utc>, until: DateTime<Utc>) -> History {
        History {
            covered_from: until,
            covered_until: until,
            pass: Some(Pass::new(from, until)),
        }
    }

    /// A later start that needs the history from `from`: an import of what is missing before
    /// what is covered, unless one is under way or nothing is missing.
    pub fn reaching(mut self, from: DateTime<Utc>) -> History {
        if self.pass.is_none() && from < self.covered_from {
            self.pass = Some(Pass::new(from, self.covered_from));
        }
        self
    }

    /// The pass is done: its range joins what is covered.
    pub fn finish(&mut self) -> Option<Pass> {
        let pass = self.pass.take()?;
        self.covered_from = self.covered_from.min(pass.from);
        Some(pass)
    }
}

impl Pass {
    fn new(from: DateTime<Utc>, until: DateTime<Utc>) -> Pass {
        Pass {
            from,
            until,
            next: from,
            sales: 0,
            windows: 0,
            queries: 0,
        }
    }
}

impl Store {
    pub fn history(&self) -> Result<Option<History>, StoreError> {
        self.tree
            .get(KEY_HISTORY)?
            .map(|v| decode(KEY_HISTORY, &v))
            .transpose()
    }

    /// What the channel was told of `w` or, for a window the imported history covers that the
    /// ledger lacks, that it sold nothing (the import keeps every window with a sale).
    pub(crate) fn told_or_covered(&self, w: &Window) -> Result<Option<Totals>, StoreError> {
        if let Some(told) = self.told(w.id())? {
            return Ok(Some(told.now));
        }
        // Covered: inside what is imported, or inside what the pass under way has done.
        let covered = self.history()?.is_some_and(|h| {
            (h.covered_from <= w.start && w.end <= h.covered_until)
                || h.pass
                    .as_ref()
                    .is_some_and(|p| p.from <= w.start && w.end <= p.next)
        });
        Ok(covered.then(Totals::default))
    }

    /// Whether the history the baselines reach is in the store: imported, no pass under way.
    pub(crate) fn history_complete(&self) -> Result<bool, StoreError> {
        Ok(self.history()?.is_some_and(|h| h.pass.is_none()))
    }

    /// After pruning before `before`: what is covered starts there at the earliest. Flushed.
    pub(super) fn history_pruned_before(&self, before: DateTime<Utc>) -> Result<(), StoreError> {
        let Some(mut h) = self.history()? else {
            return Ok(());
        };
        if h.covered_from < before {
            h.covered_from = before.min(h.covered_until);
            self.tree.insert(KEY_HISTORY, encode(&h))?;
            self.db.flush()?;
        }
        Ok(())
    }

    /// Saves `history` alone, flushed.
    pub(crate) async fn put_history(&self, history: &History) -> Result<(), StoreError> {
        self.tree.insert(KEY_HISTORY, encode(history))?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// One import step in one flushed batch: its activity added, its whole windows kept in
    /// the ledger (unless the ledger holds them by now), and `history` (its progress).
    pub(crate) async fn put_history_step(
        &self,
        history: &History,
        activity: &Activity,
        windows: &[(Window, Totals)],
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        self.put_activity(&mut batch, activity)?;
        for (window, figures) in windows {
            if self.told(window.id())?.is_none() {
                let told = Told {
                    window: *window,
                    report: figures.clone(),
                    now: figures.clone(),
                    corrections: 0,
                    source: Source::Imported,
                };
                self.put_reported(&mut batch, &told);
            }
        }
        batch.insert(KEY_HISTORY, encode(history));
        self.tree.apply_batch(batch)?;
        self.db.flush_async().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::WindowSpec;
    use chrono::TimeDelta;
    use chrono_tz::Tz;
    use rust_decimal::Decimal;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_pass_resumes_where_it_stopped_and_joins_what_is_covered() {
        let (from, until) = (at("2025-05-22T00:00:00Z"), at("2025-05-29T12:00:00Z"));
        let mut h = History::begin(from, until);
        assert_eq!((h.covered_from, h.covered_until), (until, until));
        // Started again mid-pass: the same pass, not a new one.
        h.pass.as_mut().unwrap().next = at("2025-05-25T00:00:00Z");
        let resumed = h.clone().reaching(from - TimeDelta::days(1));
        assert_eq!(resumed, h);
        h.pass.as_mut().unwrap().next = until;
        let done = h.finish().unwrap();
        assert_eq!(
            (done.from, h.covered_from, h.covered_until),
            (from, from, until)
        );
        // Nothing more is needed; a longer reach imports only what is missing.
        assert_eq!(h.clone().reaching(from + TimeDelta::days(1)), h);
        let longer = h.clone().reaching(from - TimeDelta::days(2));
        let pass = longer.pass.unwrap();
        assert_eq!(
            (pass.from, pass.until, pass.next),
            (from - TimeDelta::days(2), from, from - TimeDelta::days(2))
        );
    }

    #[tokio::test]
    async fn covered_windows_without_a_sale_read_as_nothing_sold() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let spec = WindowSpec::new(3600, Tz::UTC).unwrap();
        let (from, until) = (at("2025-05-22T00:00:00Z"), at("2025-05-29T12:30:00Z"));
        let sold = spec.window_of(at("2025-05-23T10:00:00Z"));
        let quiet = spec.window_of(at("2025-05-24T10:00:00Z"));
        let straddling = spec.window_of(until);
        let outside = spec.window_of(from - TimeDelta::hours(3));
        let mut h = History::begin(from, until);
        // The first day imported: one window with a sale.
        h.pass.as_mut().unwrap().next = at("2025-05-25T00:00:00Z");
        let mut figures = Totals::default();
        figures.add("IKEDC", Decimal::from(700)).unwrap();
        store
            .put_history_step(&h, &Activity::default(), &[(sold, figures.clone())])
            .await
            .unwrap();
        assert_eq!(store.told_or_covered(&sold).unwrap(), Some(figures));
        assert_eq!(
            store.told_or_covered(&quiet).unwrap(),
            Some(Totals::default())
        );
        assert_eq!(store.told_or_covered(&outside).unwrap(), None);
        assert!(!store.history_complete().unwrap());
        // Finished: the window the stream began in is not the import's to tell.
        h.pass.as_mut().unwrap().next = until;
        h.finish();
        store.put_history(&h).await.unwrap();
        assert!(store.history_complete().unwrap());
        assert_eq!(store.told_or_covered(&straddling).unwrap(), None);
    }
}
