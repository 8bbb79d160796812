//! The silence watcher's state in the store: which utilities are silent and when each was last
//! alerted, one small record under `silence/state`, so a restart neither alerts an alerted
//! silence again nor loses its "resumed" notice. Written only when it changes.

use super::{decode, encode, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const KEY_SILENCE: &[u8] = b"silence/state";

/// Whether a silence was told to people (stored form of the machine's own enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SilenceTold {
    /// The alert went out: its end gets a "resumed" notice.
    Alerted,
    /// The alert was held back by the rate limit: its end goes unsaid too.
    HeldBack,
}

/// One utility silent when the record was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SilentRecord {
    /// The stored name.
    pub utility: String,
    /// Its last sale seen, or when watching began.
    pub since: DateTime<Utc>,
    /// Its usual sales per silence period when it fell silent.
    pub usual_sales: u64,
    /// Whether its alert went out.
    pub told: SilenceTold,
}

/// The watcher's durable state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SilenceRecord {
    /// The silent utilities, by name.
    pub silent: Vec<SilentRecord>,
    /// When each utility's last silence alert went out, for the rate limit (entries older
    /// than the limit are dropped).
    pub alerted_at: BTreeMap<String, DateTime<Utc>>,
}

impl Store {
    /// The silence state last saved, if any.
    pub(crate) fn silence(&self) -> Result<Option<SilenceRecord>, StoreError> {
        self.tree
            .get(KEY_SILENCE)?
            .map(|b| decode(KEY_SILENCE, &b))
            .transpose()
    }

    /// Replaces the silence state, flushed.
    pub(crate) async fn put_silence(&self, record: &SilenceRecord) -> Result<(), StoreError> {
        self.tree.insert(KEY_SILENCE, encode(record))?;
        self.db.flush_async().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_silence_state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let record = SilenceRecord {
            silent: vec![SilentRecord {
                utility: "IKEDC".into(),
                since: at("2025-05-29T10:00:00Z"),
                usual_sales: 42,
                told: SilenceTold::Alerted,
            }],
            alerted_at: [("IKEDC".to_owned(), at("2025-05-29T10:30:00Z"))].into(),
        };
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.silence().unwrap(), None);
            store.put_silence(&record).await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.silence().unwrap(), Some(record));
    }
}
