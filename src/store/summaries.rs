//! Summaries in the store: one record per period ([`SummaryRecord`]), keyed by the period's
//! start. Queued only together with the write that settles the period's last report, and only
//! if absent, so a period is summed up once however often that write is retried.

use super::{decode, encode, ReportRecord, Store, StoreError, SummaryRecord};
use crate::window::WindowId;

const SUMMARY_PREFIX: &str = "summary/";

fn summary_key(id: WindowId) -> String {
    // Zero-padded so byte order is time order.
    format!("{SUMMARY_PREFIX}{:020}", id.0)
}

impl Store {
    /// Adds `summary` to `batch` unless its period is queued already. Only the outbox worker
    /// writes summaries, one write at a time, so the check cannot race another writer.
    pub(super) fn queue_summary(
        &self,
        batch: &mut sled::Batch,
        summary: &SummaryRecord,
    ) -> Result<(), StoreError> {
        let key = summary_key(summary.period.id());
        if !self.tree.contains_key(key.as_bytes())? {
            batch.insert(key.as_bytes(), encode(summary));
        }
        Ok(())
    }

    /// Saves a report refused for good (undeliverable), queueing `then` as
    /// [`Self::mark_delivered_then`] does: a period whose last report cannot be posted is
    /// still summed up.
    pub(crate) async fn put_report_then(
        &self,
        r: &ReportRecord,
        then: Option<SummaryRecord>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(super::report_key(r.window.id()).as_bytes(), encode(r));
        Self::index_settled(&mut batch, r);
        if let Some(summary) = &then {
            self.queue_summary(&mut batch, summary)?;
        }
        self.tree.apply_batch(batch)?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// Replaces one summary record, flushed.
    pub(crate) async fn put_summary(&self, s: &SummaryRecord) -> Result<(), StoreError> {
        self.tree
            .insert(summary_key(s.period.id()).as_bytes(), encode(s))?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// The most recent summary record, reading only its key.
    pub fn latest_summary(&self) -> Result<Option<SummaryRecord>, StoreError> {
        match self.tree.scan_prefix(SUMMARY_PREFIX).next_back() {
            Some(kv) => {
                let (k, v) = kv?;
                Ok(Some(decode(&k, &v)?))
            }
            None => Ok(None),
        }
    }

    /// All summaries, oldest period first: a few a day, pruned by retention.
    pub fn summaries(&self) -> Result<Vec<SummaryRecord>, StoreError> {
        self.tree
            .scan_prefix(SUMMARY_PREFIX)
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Outboxed;
    use crate::store::Reconciled;
    use crate::window::{ClosedBy, OpenWindow, Totals, Window};
    use chrono::{DateTime, Utc};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn a_period_is_queued_once_however_often_its_last_report_is_settled() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        assert_eq!(store.latest_summary().unwrap(), None);
        let window = Window {
            start: at("2025-05-29T18:00:00Z"),
            end: at("2025-05-30T00:00:00Z"),
        };
        let period = Window {
            start: at("2025-05-29T00:00:00Z"),
            end: window.end,
        };
        let now = window.end;
        let mut r =
            ReportRecord::closed(OpenWindow::new(window, window.start), ClosedBy::Stream, now);
        r.ready(
            Reconciled::Database(Totals::default()),
            crate::store::Messages::new(serde_json::json!({"text": "r"}), vec![]),
            Default::default(),
            now,
        )
        .unwrap();
        r.part_accepted(now).unwrap();
        r.sent(now).unwrap();
        store
            .mark_delivered_then(&r, Some(SummaryRecord::closed(period, now)))
            .await
            .unwrap();
        let mut queued = store.summaries().unwrap();
        assert_eq!(queued.len(), 1);
        // Moved on, then the same write again (a retried round): not queued afresh.
        queued[0].attempts = 3;
        store.put_summary(&queued[0]).await.unwrap();
        store
            .mark_delivered_then(&r, Some(SummaryRecord::closed(period, now)))
            .await
            .unwrap();
        store
            .put_report_then(&r, Some(SummaryRecord::closed(period, now)))
            .await
            .unwrap();
        let again = store.summaries().unwrap();
        assert_eq!(again, queued);
        assert_eq!(store.latest_summary().unwrap().as_ref(), again.last());
        // Reports are not mistaken for summaries, nor the other way round.
        assert_eq!(store.reports().unwrap().len(), 1);
    }
}
