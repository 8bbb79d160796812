//! The activity in the store: per bucket (`activity/<bucket start>`), the sales each utility
//! made, added in the checkpoint's write (the stream's) or the import's. Read by range for
//! silence baselines, and pruned past what a baseline reaches.

use super::{decode, encode, Store, StoreError};
use crate::activity::Activity;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

const ACTIVITY_PREFIX: &str = "activity/";

/// One bucket's sales per utility.
type Counts = BTreeMap<String, u64>;

/// Keys sort by time for every bucket since 1970 (earlier ones are never kept).
fn activity_key(bucket_ms: i64) -> String {
    format!("{ACTIVITY_PREFIX}{:020}", bucket_ms.max(0))
}

impl Store {
    /// Adds `activity` to the stored buckets, in `batch`.
    pub(super) fn put_activity(
        &self,
        batch: &mut sled::Batch,
        activity: &Activity,
    ) -> Result<(), StoreError> {
        for (&bucket, add) in &activity.by_bucket {
            if bucket < 0 {
                continue;
            }
            let key = activity_key(bucket);
            let mut counts: Counts = match self.tree.get(key.as_bytes())? {
                Some(v) => decode(key.as_bytes(), &v)?,
                None => Counts::new(),
            };
            for (utility, n) in add {
                let c = counts.entry(utility.clone()).or_default();
                *c = c.saturating_add(*n);
            }
            batch.insert(key.as_bytes(), encode(&counts));
        }
        Ok(())
    }

    /// Sales per utility in the buckets starting in `[from, to)`.
    pub(crate) fn sales_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Counts, StoreError> {
        let (lo, hi) = (
            activity_key(from.timestamp_millis()),
            activity_key(to.timestamp_millis()),
        );
        let mut sum = Counts::new();
        for kv in self.tree.range(lo.as_bytes()..hi.as_bytes()) {
            let (k, v) = kv?;
            let counts: Counts = decode(&k, &v)?;
            for (utility, n) in counts {
                let c = sum.entry(utility).or_default();
                *c = c.saturating_add(n);
            }
        }
        Ok(sum)
    }

    /// The keys of the buckets starting before `before`.
    pub(super) fn activity_before(
        &self,
        before: DateTime<Utc>,
    ) -> impl Iterator<Item = sled::Result<sled::IVec>> {
        let hi = activity_key(before.timestamp_millis());
        self.tree
            .range(ACTIVITY_PREFIX.as_bytes()..hi.as_bytes())
            .keys()
    }
}
