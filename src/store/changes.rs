//! Changes to closed windows in the store: the tallies the tailer writes (changes seen per
//! window, and those whose window is unknown), the marks delivered reports settle, and the
//! counters of changes no report carries. One key per window, never per sale.

use super::{
    decode, encode, report_key, Delivery, ReportRecord, Store, StoreError, SummaryRecord, Told,
};
use crate::change::Marks;
use crate::store::Outboxed;
use crate::window::{Tally, Totals, WindowId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per closed window, the changes the stream saw after it closed (late, refunded, edited, moved
/// sales; written only by the tailer). One key per window, never per sale: state stays
/// O(windows) however many sales change.
pub(super) const LATE_PREFIX: &str = "late/";
/// Per window, how many of those changes delivered reports have settled (written only by the
/// outbox worker); the difference is what the next report must check.
pub(super) const CARRIED_PREFIX: &str = "carried/";
/// Changes whose window the stream could not tell (no pre-image): seen by the tailer, and
/// settled by reports, as for the per-window tallies above.
const KEY_ANY_SEEN: &[u8] = b"changes_any";
const KEY_ANY_SETTLED: &[u8] = b"changes_any_settled";
/// Changes to windows that were never reported, and to windows beyond the restatement horizon:
/// counted (never posted) when a delivered report settles them.
const KEY_UNREPORTED: &[u8] = b"stats/unreported";
const KEY_BEYOND_HORIZON: &[u8] = b"stats/beyond_horizon";

/// What a report settles when it is delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// Per window, the changes seen when the report was prepared (the new settled mark).
    pub marks: BTreeMap<WindowId, Tally>,
    /// The window-unknown changes seen then, where the report re-checked the whole horizon.
    pub anywhere: Option<Tally>,
    /// Earlier windows re-checked against the database: what their reports now add up to.
    pub rechecked: BTreeMap<WindowId, Totals>,
    /// Changes to windows never reported, and beyond the horizon (counted, not posted).
    pub unreported: Tally,
    pub beyond_horizon: Tally,
    /// How many correction lines the report carries.
    pub corrections: u64,
}

/// Counters of changes that no report carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnpostedChanges {
    /// Back-dated sales and other changes to windows this service never reported.
    pub unreported: Tally,
    /// Changes to reported windows older than the restatement horizon.
    pub beyond_horizon: Tally,
}

impl Store {
    /// Adds the tailer's marks to `batch` (the checkpoint's write).
    pub(super) fn put_marks(
        &self,
        batch: &mut sled::Batch,
        marks: &Marks,
    ) -> Result<(), StoreError> {
        for (id, add) in &marks.by_window {
            let k = late_key(LATE_PREFIX, *id);
            self.add_tally(batch, k.as_bytes(), add)?;
        }
        if marks.anywhere.count > 0 {
            self.add_tally(batch, KEY_ANY_SEEN, &marks.anywhere)?;
        }
        Ok(())
    }

    /// Puts the stored tally at `key` plus `add` into `batch`.
    fn add_tally(
        &self,
        batch: &mut sled::Batch,
        key: &[u8],
        add: &Tally,
    ) -> Result<(), StoreError> {
        let mut t = self.tally(key)?;
        t.merge_changes(add);
        batch.insert(key, encode(&t));
        Ok(())
    }

    fn tally(&self, key: &[u8]) -> Result<Tally, StoreError> {
        match self.tree.get(key)? {
            Some(v) => decode(key, &v),
            None => Ok(Tally::default()),
        }
    }

    /// Window-unknown changes: seen by the stream, and settled by reports.
    pub(crate) fn changes_anywhere(&self) -> Result<(Tally, Tally), StoreError> {
        Ok((self.tally(KEY_ANY_SEEN)?, self.tally(KEY_ANY_SETTLED)?))
    }

    /// Changes no report carries (never-reported windows, beyond the horizon).
    pub(crate) fn unposted(&self) -> Result<UnpostedChanges, StoreError> {
        Ok(UnpostedChanges {
            unreported: self.tally(KEY_UNREPORTED)?,
            beyond_horizon: self.tally(KEY_BEYOND_HORIZON)?,
        })
    }

    /// Saves a report moved to `Sent` ([`ReportRecord::sent`]) and applies what it settled, in
    /// one flushed batch: a correction is posted from exactly one delivered report, and an
    /// earlier window's new baseline is written exactly when the report saying so was
    /// delivered.
    #[cfg(test)]
    pub(crate) async fn mark_delivered(&self, r: &ReportRecord) -> Result<(), StoreError> {
        self.mark_delivered_then(r, None).await
    }

    /// [`Self::mark_delivered`], queueing the summary of `then` (the period this report's
    /// window ends, if summaries are on) in the same write, unless it is queued already.
    pub async fn mark_delivered_then(
        &self,
        r: &ReportRecord,
        then: Option<SummaryRecord>,
    ) -> Result<(), StoreError> {
        let Delivery::Sent(sent) = r.delivery() else {
            return Err(StoreError::NotSent(r.window.id()));
        };
        let mut batch = sled::Batch::default();
        batch.insert(report_key(r.window.id()).as_bytes(), encode(r));
        Self::index_settled(&mut batch, r);
        if let Some(summary) = &then {
            self.queue_summary(&mut batch, summary)?;
        }
        // The ledger learns what Slack took: this report's figures and its corrections.
        self.put_reported(&mut batch, &Told::reported(r.window, r.shown()));
        let settles = &sent.what.settles;
        for (id, totals) in &settles.rechecked {
            self.put_corrected(&mut batch, *id, totals)?;
        }
        for (id, seen) in &settles.marks {
            batch.insert(late_key(CARRIED_PREFIX, *id).as_bytes(), encode(seen));
        }
        if let Some(seen) = &settles.anywhere {
            batch.insert(KEY_ANY_SETTLED, encode(seen));
        }
        if settles.unreported.count > 0 {
            self.add_tally(&mut batch, KEY_UNREPORTED, &settles.unreported)?;
        }
        if settles.beyond_horizon.count > 0 {
            self.add_tally(&mut batch, KEY_BEYOND_HORIZON, &settles.beyond_horizon)?;
        }
        self.tree.apply_batch(batch)?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// Window `id`'s changes: seen by the stream, and settled by reports.
    pub(crate) fn changes_of(&self, id: WindowId) -> Result<(Tally, Tally), StoreError> {
        Ok((
            self.tally(late_key(LATE_PREFIX, id).as_bytes())?,
            self.tally(late_key(CARRIED_PREFIX, id).as_bytes())?,
        ))
    }

    /// Changes no report has settled yet, per window starting at or after `from` (the
    /// restatement horizon: older ones are never posted): a range of keys, not all of them.
    pub(crate) fn unsettled_since(
        &self,
        from: WindowId,
    ) -> Result<BTreeMap<WindowId, Tally>, StoreError> {
        let lo = late_key(LATE_PREFIX, WindowId(from.0.max(0)));
        let mut out = BTreeMap::new();
        for kv in self.tree.range(lo.as_bytes()..) {
            let (k, v) = kv?;
            if !k.starts_with(LATE_PREFIX.as_bytes()) {
                break;
            }
            let id = std::str::from_utf8(&k[LATE_PREFIX.len()..])
                .ok()
                .and_then(|s| s.parse().ok())
                .map(WindowId)
                .ok_or_else(|| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    reason: "bad key".into(),
                })?;
            let seen: Tally = decode(&k, &v)?;
            let settled = self.tally(late_key(CARRIED_PREFIX, id).as_bytes())?;
            if let Some(rest) = unsettled(seen, Some(&settled)) {
                out.insert(id, rest);
            }
        }
        Ok(out)
    }

    /// All late sales per window, settled or not.
    pub fn late(&self) -> Result<BTreeMap<WindowId, Tally>, StoreError> {
        self.tallies(LATE_PREFIX)
    }

    /// Per window, the late sales that reports have settled.
    pub(crate) fn settled_late(&self) -> Result<BTreeMap<WindowId, Tally>, StoreError> {
        self.tallies(CARRIED_PREFIX)
    }

    fn tallies(&self, prefix: &str) -> Result<BTreeMap<WindowId, Tally>, StoreError> {
        self.tree
            .scan_prefix(prefix)
            .map(|kv| {
                let (k, v) = kv?;
                let id = std::str::from_utf8(&k[prefix.len()..])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| StoreError::Corrupt {
                        key: String::from_utf8_lossy(&k).into_owned(),
                        reason: "bad key".into(),
                    })?;
                Ok((WindowId(id), decode(&k, &v)?))
            })
            .collect()
    }
}

pub(super) fn late_key(prefix: &str, id: WindowId) -> String {
    format!("{prefix}{:020}", id.0)
}

/// What of `seen` late sales is not yet `settled`.
pub fn unsettled(seen: Tally, settled: Option<&Tally>) -> Option<Tally> {
    let done = settled.copied().unwrap_or_default();
    (seen.count > done.count).then(|| Tally {
        revenue: seen.revenue.checked_sub(done.revenue).unwrap_or_default(),
        count: seen.count - done.count,
    })
}
