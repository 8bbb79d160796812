//! The ledger: what the channel was told of each window, per utility. One key per window
//! (`ledger/<window id>`), written in the same flushed batch as the `Sent` mark of the report
//! that told it (the window's own report, or a later one's correction), so it never holds a
//! figure Slack did not take, nor misses one it did. Comparisons and summaries are built from
//! it, not from new queries; a window it does not hold (from before the service's first start,
//! or whose report was never delivered) is read from the database once and kept as
//! [`Source::Imported`].

use super::{decode, encode, Store, StoreError};
use crate::window::{Totals, Window, WindowId};
use serde::{Deserialize, Serialize};

const LEDGER_PREFIX: &str = "ledger/";

/// What the channel knows of one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Told {
    pub window: Window,
    /// The figures its report posted (for an imported window: the database's when read).
    pub report: Totals,
    /// The report plus every correction posted since: what the channel now holds, and what
    /// the next correction is measured from.
    pub now: Totals,
    /// Corrections posted for it since its report.
    pub corrections: u32,
    pub source: Source,
}

/// Where a ledger entry's figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Posted by this service (the report, then its corrections).
    Reported,
    /// Read from the database once (never reported by this service); no correction follows.
    Imported,
}

impl Told {
    /// A report's figures, as Slack took them.
    pub(crate) fn reported(window: Window, figures: &Totals) -> Told {
        Told {
            window,
            report: figures.clone(),
            now: figures.clone(),
            corrections: 0,
            source: Source::Reported,
        }
    }
}

fn ledger_key(id: WindowId) -> String {
    // Zero-padded so byte order is time order.
    format!("{LEDGER_PREFIX}{:020}", id.0)
}

impl Store {
    /// What the channel was told of window `id`, if the ledger holds it.
    pub fn told(&self, id: WindowId) -> Result<Option<Told>, StoreError> {
        let key = ledger_key(id);
        self.tree
            .get(key.as_bytes())?
            .map(|v| decode(key.as_bytes(), &v))
            .transpose()
    }

    /// Adds a delivered report's own figures to `batch`.
    pub(super) fn put_reported(&self, batch: &mut sled::Batch, told: &Told) {
        batch.insert(ledger_key(told.window.id()).as_bytes(), encode(told));
    }

    /// Adds a delivered correction to `batch`: window `id` now holds `now`. A window the
    /// ledger lacks (never reported) is left alone: there was nothing to correct.
    pub(super) fn put_corrected(
        &self,
        batch: &mut sled::Batch,
        id: WindowId,
        now: &Totals,
    ) -> Result<(), StoreError> {
        if let Some(mut told) = self.told(id)? {
            if told.now != *now {
                told.corrections = told.corrections.saturating_add(1);
            }
            told.now = now.clone();
            batch.insert(ledger_key(id).as_bytes(), encode(&told));
        }
        Ok(())
    }

    /// Keeps the database's figures for a window this service never reported, unless the
    /// ledger holds it by now. Flushed.
    pub(crate) async fn import(&self, window: Window, figures: &Totals) -> Result<(), StoreError> {
        let key = ledger_key(window.id());
        let told = Told {
            window,
            report: figures.clone(),
            now: figures.clone(),
            corrections: 0,
            source: Source::Imported,
        };
        // A race with another writer (the import, a delivered report) loses only this copy:
        // a reported window's own entry replaces an imported one in its `Sent` write.
        if !self.tree.contains_key(key.as_bytes())? {
            self.tree.insert(key.as_bytes(), encode(&told))?;
            self.db.flush_async().await?;
        }
        Ok(())
    }
}
