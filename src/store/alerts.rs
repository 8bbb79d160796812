//! Alerts in the store: each queued with a flushed write (`alert/<id>`) and indexed as pending
//! (`pending_alert/<id>`) until Slack took it or refused it for good, in the write that says
//! so. Retention prunes them by age like the windows.

use super::{decode, encode, AlertRecord, Store, StoreError};
use crate::store::Outboxed;
use crate::window::WindowId;

pub(super) const ALERT_PREFIX: &str = "alert/";
const PENDING_ALERT_PREFIX: &str = "pending_alert/";

fn key(prefix: &str, id: i64) -> String {
    format!("{prefix}{:020}", id.max(0))
}

impl Store {
    /// Queues an alert with `make` (given its id), flushed: its id is `id` (the raiser's, in
    /// raising order), or the next free one (one kept by a process before a restart).
    /// Blocking.
    pub(crate) fn queue_alert(
        &self,
        id: i64,
        make: impl FnOnce(i64) -> AlertRecord,
    ) -> Result<AlertRecord, StoreError> {
        let mut id = id.max(0);
        while self.tree.contains_key(key(ALERT_PREFIX, id).as_bytes())? {
            id = id.saturating_add(1);
        }
        let record = make(id);
        let mut batch = sled::Batch::default();
        batch.insert(key(ALERT_PREFIX, id).as_bytes(), encode(&record));
        batch.insert(key(PENDING_ALERT_PREFIX, id).as_bytes(), &[]);
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(record)
    }

    /// Saves an alert's progress; one no longer pending leaves the index in the same write.
    pub(crate) async fn put_alert(&self, a: &AlertRecord) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(key(ALERT_PREFIX, a.id).as_bytes(), encode(a));
        if !a.is_pending() {
            batch.remove(key(PENDING_ALERT_PREFIX, a.id).as_bytes());
        }
        self.tree.apply_batch(batch)?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// Whether the key of `prefix` and `id` is a pending alert's (never pruned).
    pub(super) fn alert_pending(&self, prefix: &str, id: WindowId) -> Result<bool, StoreError> {
        Ok(prefix == ALERT_PREFIX
            && self
                .tree
                .contains_key(key(PENDING_ALERT_PREFIX, id.0).as_bytes())?)
    }

    /// The alerts still to post, oldest first.
    pub fn pending_alerts(&self) -> Result<Vec<AlertRecord>, StoreError> {
        let mut out = Vec::new();
        for k in self.tree.scan_prefix(PENDING_ALERT_PREFIX).keys() {
            let k = k?;
            let alert = key(ALERT_PREFIX, 0);
            let id = &k[PENDING_ALERT_PREFIX.len()..];
            let full = [&alert.as_bytes()[..ALERT_PREFIX.len()], id].concat();
            if let Some(v) = self.tree.get(&full)? {
                out.push(decode(&full, &v)?);
            }
        }
        Ok(out)
    }
}
