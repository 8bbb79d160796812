//! The outbox's indexes, each written in the same batch as the records it points at: the
//! pending reports (`pending/<id>`), the undeliverable ones (`undeliverable/<id>`) and the
//! last one sent (`last_sent`). The outbox and `status` read only what they show, never every
//! record; retention prunes records past it ([`Store::prune`]).

use super::{decode, encode, ReportRecord, Stage, Store, StoreError};
use crate::store::Outboxed;
use crate::window::WindowId;
use chrono::{DateTime, Utc};

const PENDING_PREFIX: &str = "pending/";
const UNDELIVERABLE_PREFIX: &str = "undeliverable/";
const KEY_LAST_SENT: &[u8] = b"last_sent";
/// Per-window keys retention prunes: records, their changes, the ledger, summaries (by
/// period start) and the undeliverable index. Pending reports are never pruned.
const PRUNED: &[&str] = &[
    super::REPORT_PREFIX,
    super::changes::LATE_PREFIX,
    super::changes::CARRIED_PREFIX,
    "ledger/",
    "summary/",
    UNDELIVERABLE_PREFIX,
    super::alerts::ALERT_PREFIX,
];

fn key(prefix: &str, id: WindowId) -> String {
    format!("{prefix}{:020}", id.0.max(0))
}

fn id_of(prefix: &str, k: &[u8]) -> Result<WindowId, StoreError> {
    std::str::from_utf8(&k[prefix.len()..])
        .ok()
        .and_then(|s| s.parse().ok())
        .map(WindowId)
        .ok_or_else(|| StoreError::Corrupt {
            key: String::from_utf8_lossy(k).into_owned(),
            reason: "bad key".into(),
        })
}

/// Keys one pruning write removes at most: the first prune of a large directory is many
/// short writes, not one long one.
const PRUNE_BATCH: usize = 10_000;

/// Removals, written and flushed every [`PRUNE_BATCH`].
#[derive(Default)]
struct Removals {
    batch: sled::Batch,
    len: usize,
}

impl Removals {
    fn remove(&mut self, store: &Store, k: sled::IVec) -> Result<(), StoreError> {
        self.batch.remove(k);
        self.len += 1;
        if self.len >= PRUNE_BATCH {
            self.apply(store)?;
        }
        Ok(())
    }

    fn apply(&mut self, store: &Store) -> Result<(), StoreError> {
        if self.len > 0 {
            store.tree.apply_batch(std::mem::take(&mut self.batch))?;
            store.db.flush()?;
            self.len = 0;
        }
        Ok(())
    }
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub keys: usize,
}

impl Store {
    /// Adds a newly closed report to the pending index, in `batch`.
    pub(super) fn index_pending(batch: &mut sled::Batch, id: WindowId) {
        batch.insert(key(PENDING_PREFIX, id).as_bytes(), &[]);
    }

    /// Moves a report that left the outbox (sent, or refused for good) out of the pending
    /// index, in `batch`.
    pub(super) fn index_settled(batch: &mut sled::Batch, r: &ReportRecord) {
        let id = r.window.id();
        batch.remove(key(PENDING_PREFIX, id).as_bytes());
        match r.stage() {
            Stage::Sent => batch.insert(KEY_LAST_SENT, encode(&id)),
            Stage::Undeliverable => batch.insert(key(UNDELIVERABLE_PREFIX, id).as_bytes(), &[]),
            Stage::Closed | Stage::Ready => {}
        }
    }

    /// The reports still to deliver, oldest window first.
    pub fn pending_reports(&self) -> Result<Vec<ReportRecord>, StoreError> {
        self.indexed(PENDING_PREFIX, usize::MAX, false)
    }

    /// The `n` latest undeliverable reports, newest first.
    pub fn undeliverable_reports(&self, n: usize) -> Result<Vec<ReportRecord>, StoreError> {
        self.indexed(UNDELIVERABLE_PREFIX, n, true)
    }

    /// The last report sent.
    pub fn last_sent(&self) -> Result<Option<ReportRecord>, StoreError> {
        match self.tree.get(KEY_LAST_SENT)? {
            Some(v) => self.report(decode(KEY_LAST_SENT, &v)?),
            None => Ok(None),
        }
    }

    fn indexed(
        &self,
        prefix: &str,
        n: usize,
        newest_first: bool,
    ) -> Result<Vec<ReportRecord>, StoreError> {
        let keys = self.tree.scan_prefix(prefix).keys();
        let keys: Box<dyn Iterator<Item = _>> = if newest_first {
            Box::new(keys.rev())
        } else {
            Box::new(keys)
        };
        let mut out = Vec::new();
        for k in keys.take(n) {
            let id = id_of(prefix, &k?)?;
            if let Some(r) = self.report(id)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Removes every per-window key of windows (and periods) starting before `before`, but a
    /// pending report's; and the activity buckets before `activity_before`. Blocking (run it
    /// off the async workers), in writes of at most [`PRUNE_BATCH`] keys, each flushed.
    pub fn prune(
        &self,
        before: DateTime<Utc>,
        activity_before: DateTime<Utc>,
    ) -> Result<Pruned, StoreError> {
        let cutoff = WindowId(before.timestamp_millis().max(0));
        let mut batch = Removals::default();
        let mut pruned = Pruned::default();
        for prefix in PRUNED {
            let hi = key(prefix, cutoff);
            for k in self.tree.range(prefix.as_bytes()..hi.as_bytes()).keys() {
                let k = k?;
                let id = id_of(prefix, &k)?;
                if self.tree.contains_key(key(PENDING_PREFIX, id).as_bytes())?
                    || self.alert_pending(prefix, id)?
                {
                    continue;
                }
                batch.remove(self, k)?;
                pruned.keys += 1;
            }
        }
        for k in self.activity_before(activity_before) {
            batch.remove(self, k?)?;
            pruned.keys += 1;
        }
        batch.apply(self)?;
        // What the import covered before the cutoff is gone now: a window there must not
        // read as one that sold nothing.
        self.history_pruned_before(before)?;
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::Activity;
    use crate::change::Marks;
    use crate::store::{Checkpoint, Messages, Reconciled, Settlement};
    use crate::window::{ClosedBy, OpenWindow, Window, WindowSpec};
    use chrono::TimeDelta;
    use chrono_tz::Tz;

    fn windows(n: usize) -> Vec<Window> {
        let spec = WindowSpec::new(600, Tz::UTC).unwrap();
        let mut w = spec.window_of(DateTime::from_timestamp(1_748_520_000, 0).unwrap());
        let mut out = vec![];
        for _ in 0..n {
            out.push(w);
            w = spec.next(&w);
        }
        out
    }

    /// Closes `ws` into the outbox with a checkpoint, as the tailer does.
    async fn close(store: &Store, ws: &[Window]) -> Vec<ReportRecord> {
        let closed: Vec<ReportRecord> = ws
            .iter()
            .map(|w| ReportRecord::closed(OpenWindow::new(*w, w.start), ClosedBy::Stream, w.end))
            .collect();
        let last = *ws.last().unwrap();
        let cp = Checkpoint {
            token: None,
            open: vec![],
            next_close: last,
            saved_at: last.end,
        };
        let mut activity = Activity::default();
        for w in ws {
            activity.add(w.start.timestamp_millis(), "IKEDC", 3);
        }
        store
            .save_checkpoint(&cp, &closed, &Marks::default(), &activity)
            .await
            .unwrap();
        closed
    }

    fn ready(r: &mut ReportRecord) {
        let messages = Messages::new(serde_json::json!({ "text": "report" }), vec![]);
        r.ready(
            Reconciled::Database(r.streamed.clone()),
            messages,
            Settlement::default(),
            r.window.end,
        )
        .unwrap();
    }

    #[tokio::test]
    async fn indexes_follow_the_outbox_and_retention_keeps_what_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ws = windows(4);
        let mut records = close(&store, &ws).await;
        assert_eq!(store.pending_reports().unwrap().len(), 4);
        // The first two sent, the third refused for good, the fourth still pending.
        for r in &mut records[..2] {
            ready(r);
            r.part_accepted(r.window.end).unwrap();
            r.sent(r.window.end).unwrap();
            store.mark_delivered(r).await.unwrap();
        }
        ready(&mut records[2]);
        records[2].refused("no_service".into(), ws[2].end).unwrap();
        store.put_report_then(&records[2], None).await.unwrap();
        let ids = |rs: Vec<ReportRecord>| rs.iter().map(|r| r.window.id()).collect::<Vec<_>>();
        assert_eq!(ids(store.pending_reports().unwrap()), [ws[3].id()]);
        assert_eq!(ids(store.undeliverable_reports(5).unwrap()), [ws[2].id()]);
        assert_eq!(store.last_sent().unwrap().unwrap().window, ws[1]);
        assert!(store.told(ws[0].id()).unwrap().is_some());
        assert_eq!(store.oldest_report_start().unwrap(), Some(ws[0].start));

        // Everything but the last window is past the retention: the sent and undeliverable
        // records go with their ledger figures and activity; the pending one stays.
        let cutoff = ws[3].start + TimeDelta::minutes(10);
        let pruned = store.prune(cutoff, cutoff).unwrap();
        assert!(pruned.keys >= 3 + 2 + 1 + 4, "{pruned:?}");
        assert!(store.report(ws[0].id()).unwrap().is_none());
        assert!(store.told(ws[0].id()).unwrap().is_none());
        assert!(store.undeliverable_reports(5).unwrap().is_empty());
        assert_eq!(ids(store.pending_reports().unwrap()), [ws[3].id()]);
        assert_eq!(store.oldest_report_start().unwrap(), Some(ws[3].start));
        assert!(store
            .sales_between(ws[0].start, ws[3].end)
            .unwrap()
            .is_empty());
        // Nothing more to prune.
        assert_eq!(store.prune(cutoff, cutoff).unwrap().keys, 0);
    }
}
