//! Durable state in sled: the checkpoint (resume token + open windows' totals + the next window
//! to close) and the report outbox. Everything lives in one tree so that one `apply_batch`
//! covers a token and the totals it belongs to; every write is flushed before it is relied on.

use crate::change::Marks;
use crate::window::{OpenWindow, Tally, Totals, Window, WindowId};
use chrono::{DateTime, Utc};
use mongodb::change_stream::event::ResumeToken;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const KEY_FORMAT: &[u8] = b"format";
const KEY_TOKEN: &[u8] = b"token";
const KEY_CHECKPOINT: &[u8] = b"checkpoint";
const REPORT_PREFIX: &str = "report/";
/// Per closed window, the sales that arrived after it closed (written only by the tailer). One
/// key per window, never per sale: state stays O(windows) however many sales arrive late.
const LATE_PREFIX: &str = "late/";
/// Per window, how many of those late sales reports have settled (written only by the outbox
/// worker); the difference is what the next report must check.
const CARRIED_PREFIX: &str = "carried/";
/// Changes whose window the stream could not tell (no pre-image): seen by the tailer, and
/// settled by reports, as for the per-window tallies above.
const KEY_ANY_SEEN: &[u8] = b"changes_any";
const KEY_ANY_SETTLED: &[u8] = b"changes_any_settled";
/// Changes to windows that were never reported, and to windows beyond the restatement horizon:
/// counted (never posted) when a delivered report settles them.
const KEY_UNREPORTED: &[u8] = b"stats/unreported";
const KEY_BEYOND_HORIZON: &[u8] = b"stats/beyond_horizon";
const FORMAT: &[u8] = b"power-revenue/1";
/// sled's page cache: the whole state (a checkpoint, and a report and two tallies per window)
/// fits many times over.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// Beside sled's files: says this directory once held our state (see [`Store::open`]).
const MARKER_FILE: &str = "power-revenue.state";
/// What sled itself keeps in its directory.
const SLED_FILES: &[&str] = &["conf", "db", "blobs", "snap."];

/// The first entry that neither sled nor power-revenue would have put there (dotfiles such as
/// a `.gitkeep` are allowed).
fn foreign_entry(dir: &Path) -> std::io::Result<Option<String>> {
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with('.')
            || name == MARKER_FILE
            || SLED_FILES
                .iter()
                .any(|f| name == *f || (f.ends_with('.') && name.starts_with(f)));
        if !ours {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Any tree other than ours, or sled's default tree, holding keys.
fn holds_other_data(db: &sled::Db) -> Result<bool, StoreError> {
    if !db.is_empty() {
        return Ok(true);
    }
    for name in db.tree_names() {
        if name.as_ref() != b"state"
            && name.as_ref() != b"__sled__default"
            && !db.open_tree(&name)?.is_empty()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {0} is in use by another power-revenue process; stop it, or point POWER_REVENUE_STATE_DIR elsewhere")]
    Locked(PathBuf),
    #[error("cannot open state directory {dir}: {reason}; check that it exists, is writable and belongs to power-revenue")]
    Open { dir: PathBuf, reason: String },
    #[error("state directory holds data of another program or version ({0}); point POWER_REVENUE_STATE_DIR at an empty directory")]
    Foreign(String),
    #[error("state write failed: {0}")]
    Io(#[from] sled::Error),
    #[error("state directory {0}")]
    Damaged(String),
    #[error("state record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
}

impl StoreError {
    /// Disk hiccups may pass; a locked, foreign or corrupt store will not.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Io(_))
    }
}

/// What a restart resumes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    #[serde(skip)]
    pub token: Option<ResumeToken>,
    pub open: Vec<OpenWindow>,
    /// The oldest window not yet handed to the outbox.
    pub next_close: Window,
    pub saved_at: DateTime<Utc>,
}

/// Delivery state of one window's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Delivery {
    /// Closed; waiting for reconciliation and rendering.
    Closed,
    /// Rendered; waiting for Slack's 2xx.
    Ready,
    Sent {
        at: DateTime<Utc>,
    },
    /// Slack refused it for good (e.g. `no_service`); a human must act.
    Undeliverable {
        reason: String,
    },
}

/// What the database said about a closed window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// `None` when the query failed after retries: the report carries the streamed totals.
    pub database: Option<Totals>,
    pub error: Option<String>,
}

/// One window's report in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRecord {
    pub window: Window,
    pub streamed: Totals,
    pub streamed_partial: bool,
    pub events_applied: u64,
    /// The live totals were rebuilt from the database (change-stream history was lost).
    #[serde(default)]
    pub recomputed: bool,
    pub reconciliation: Option<Reconciliation>,
    /// The database's totals when a later report last re-checked this window for late sales;
    /// what the reports so far add up to, so the next correction is measured from here.
    #[serde(default)]
    pub rechecked: Option<Totals>,
    /// What this report settles once Slack has taken it (applied with the `Sent` mark; a
    /// report that is never delivered settles nothing, so its corrections come again).
    #[serde(default)]
    pub settles: Settlement,
    /// The exact Slack payload, fixed before the first attempt so retries send the same bytes.
    pub payload: Option<serde_json::Value>,
    /// The further messages of a report too long for one (see
    /// [`crate::report::render_parts`]), posted after `payload` in order.
    #[serde(default)]
    pub follow_ups: Vec<serde_json::Value>,
    /// How many of the messages (`payload`, then `follow_ups`) Slack has accepted: a restart
    /// continues with the next one and never reposts one.
    #[serde(default)]
    pub parts_sent: usize,
    pub delivery: Delivery,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl ReportRecord {
    pub fn closed(open: OpenWindow, now: DateTime<Utc>) -> Self {
        Self {
            window: open.window,
            streamed_partial: open.is_partial(),
            streamed: open.totals,
            events_applied: open.events_applied,
            recomputed: open.recomputed,
            reconciliation: None,
            rechecked: None,
            settles: Settlement::default(),
            payload: None,
            follow_ups: Vec::new(),
            parts_sent: 0,
            delivery: Delivery::Closed,
            attempts: 0,
            last_error: None,
            updated_at: now,
        }
    }

    pub fn is_pending(&self) -> bool {
        matches!(self.delivery, Delivery::Closed | Delivery::Ready)
    }

    /// What the posts so far say this window holds: the latest database reading, else the
    /// stream's totals (when its own reconciliation failed).
    pub fn reported(&self) -> &Totals {
        self.rechecked
            .as_ref()
            .or_else(|| self.reconciliation.as_ref()?.database.as_ref())
            .unwrap_or(&self.streamed)
    }
}

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

#[derive(Clone)]
pub struct Store {
    tree: sled::Tree,
    db: sled::Db,
}

impl Store {
    /// Opens (or creates) the state directory. Refuses a directory holding anything else, and
    /// one whose data sled no longer finds: starting fresh there would silently forget the
    /// checkpoint and re-report or skip windows.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let open_error = |e: std::io::Error| StoreError::Open {
            dir: dir.into(),
            reason: e.kind().to_string(),
        };
        std::fs::create_dir_all(dir).map_err(open_error)?;
        if let Some(name) = foreign_entry(dir).map_err(open_error)? {
            return Err(StoreError::Foreign(format!(
                "{} contains {name:?}, which is not power-revenue state",
                dir.display()
            )));
        }
        let marker = dir.join(MARKER_FILE);
        let claimed = marker.exists();
        let db = sled::Config::new()
            .path(dir)
            // sled would cache up to 1 GB by default.
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|e| match &e {
            sled::Error::Io(io) if io.to_string().contains("lock") => {
                StoreError::Locked(dir.into())
            }
            sled::Error::Io(io) => StoreError::Open {
                dir: dir.into(),
                reason: io.kind().to_string(),
            },
            other => StoreError::Damaged(format!(
                "{} is damaged ({other}); move it aside (the service then starts at the current window) or restore a backup",
                dir.display()
            )),
        })?;
        let tree = db.open_tree("state")?;
        match tree.get(KEY_FORMAT)? {
            Some(v) if v.as_ref() == FORMAT => {}
            Some(v) => {
                return Err(StoreError::Foreign(format!(
                    "format {}",
                    String::from_utf8_lossy(&v)
                )))
            }
            None if claimed => {
                return Err(StoreError::Damaged(format!(
                    "{} held power-revenue state but its data is gone or damaged; move it aside (the service then starts at the current window) or restore a backup",
                    dir.display()
                )))
            }
            None if !tree.is_empty() || holds_other_data(&db)? => {
                return Err(StoreError::Foreign("sled data of another program".into()))
            }
            None => {
                tree.insert(KEY_FORMAT, FORMAT)?;
                db.flush()?;
            }
        }
        if !claimed {
            // After the format key is durable: a crash in between is a fresh start again.
            std::fs::write(&marker, FORMAT)
                .and_then(|()| std::fs::File::open(&marker)?.sync_all())
                .map_err(open_error)?;
        }
        Ok(Store { tree, db })
    }

    pub fn load_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let Some(bytes) = self.tree.get(KEY_CHECKPOINT)? else {
            return Ok(None);
        };
        let mut cp: Checkpoint = decode(KEY_CHECKPOINT, &bytes)?;
        cp.token = match self.tree.get(KEY_TOKEN)? {
            Some(raw) => Some(decode_token(&raw)?),
            None => None,
        };
        Ok(Some(cp))
    }

    /// Writes the checkpoint, newly closed windows' outbox records and new late sales in one
    /// atomic, flushed batch: a window leaves the open set exactly when its report enters the
    /// outbox, and a late sale is saved exactly with the token that covers it.
    pub async fn save_checkpoint(
        &self,
        cp: &Checkpoint,
        closed: &[ReportRecord],
        marks: &Marks,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(KEY_CHECKPOINT, encode(cp));
        if let Some(token) = &cp.token {
            batch.insert(KEY_TOKEN, encode_token(token));
        }
        for r in closed {
            batch.insert(report_key(r.window.id()).as_bytes(), encode(r));
        }
        for (id, add) in &marks.by_window {
            let k = late_key(LATE_PREFIX, *id);
            self.add_tally(&mut batch, k.as_bytes(), add)?;
        }
        if marks.anywhere.count > 0 {
            self.add_tally(&mut batch, KEY_ANY_SEEN, &marks.anywhere)?;
        }
        self.tree.apply_batch(batch)?;
        self.db.flush_async().await?;
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
        t.revenue = t.revenue.checked_add(add.revenue).unwrap_or(t.revenue);
        t.count = t.count.saturating_add(add.count);
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
    pub fn changes_anywhere(&self) -> Result<(Tally, Tally), StoreError> {
        Ok((self.tally(KEY_ANY_SEEN)?, self.tally(KEY_ANY_SETTLED)?))
    }

    /// Changes no report carries (never-reported windows, beyond the horizon).
    pub fn unposted(&self) -> Result<UnpostedChanges, StoreError> {
        Ok(UnpostedChanges {
            unreported: self.tally(KEY_UNREPORTED)?,
            beyond_horizon: self.tally(KEY_BEYOND_HORIZON)?,
        })
    }

    /// Marks a report sent and applies what it settles, in one flushed batch: a correction is
    /// posted from exactly one delivered report, and an earlier window's new baseline is
    /// written exactly when the report saying so was delivered.
    pub async fn mark_delivered(&self, r: &ReportRecord) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(report_key(r.window.id()).as_bytes(), encode(r));
        let settles = &r.settles;
        for (id, totals) in &settles.rechecked {
            if let Some(mut earlier) = self.report(*id)? {
                earlier.rechecked = Some(totals.clone());
                batch.insert(report_key(*id).as_bytes(), encode(&earlier));
            }
        }
        for (id, seen) in &settles.marks {
            let key = late_key(CARRIED_PREFIX, *id);
            // `seen` counts every change of the window, so the old per-sale keys it
            // supersedes go (see `tallies`).
            for old in self.tree.scan_prefix(format!("{key}/")).keys() {
                batch.remove(old?);
            }
            batch.insert(key.as_bytes(), encode(seen));
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

    /// Replaces one outbox record, flushed.
    pub async fn put_report(&self, r: &ReportRecord) -> Result<(), StoreError> {
        self.tree
            .insert(report_key(r.window.id()).as_bytes(), encode(r))?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// All late sales per window, settled or not.
    pub fn late(&self) -> Result<BTreeMap<WindowId, Tally>, StoreError> {
        self.tallies(LATE_PREFIX)
    }

    /// Per window, the late sales that reports have settled.
    pub fn settled_late(&self) -> Result<BTreeMap<WindowId, Tally>, StoreError> {
        self.tallies(CARRIED_PREFIX)
    }

    /// Late sales per closed window that no report has settled yet.
    pub fn unsettled_late(&self) -> Result<BTreeMap<WindowId, Tally>, StoreError> {
        let settled = self.settled_late()?;
        Ok(self
            .late()?
            .into_iter()
            .filter_map(|(id, seen)| unsettled(seen, settled.get(&id)).map(|rest| (id, rest)))
            .collect())
    }

    fn tallies(&self, prefix: &str) -> Result<BTreeMap<WindowId, Tally>, StoreError> {
        let mut out: BTreeMap<WindowId, Tally> = BTreeMap::new();
        for kv in self.tree.scan_prefix(prefix) {
            let (k, v) = kv?;
            // Earlier builds kept one key per late sale (`late/<window>/<cluster time>`);
            // such keys add up into their window.
            let id = std::str::from_utf8(&k[prefix.len()..])
                .ok()
                .and_then(|s| s.split('/').next()?.parse().ok())
                .ok_or_else(|| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    reason: "bad key".into(),
                })?;
            let t: Tally = decode(&k, &v)?;
            let sum = out.entry(WindowId(id)).or_default();
            sum.revenue = sum.revenue.checked_add(t.revenue).unwrap_or(sum.revenue);
            sum.count = sum.count.saturating_add(t.count);
        }
        Ok(out)
    }

    pub fn report(&self, id: WindowId) -> Result<Option<ReportRecord>, StoreError> {
        let key = report_key(id);
        self.tree
            .get(key.as_bytes())?
            .map(|b| decode(key.as_bytes(), &b))
            .transpose()
    }

    /// All outbox records, oldest window first.
    pub fn reports(&self) -> Result<Vec<ReportRecord>, StoreError> {
        self.tree
            .scan_prefix(REPORT_PREFIX)
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }
}

fn late_key(prefix: &str, id: WindowId) -> String {
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

fn report_key(id: WindowId) -> String {
    // Zero-padded so byte order is time order.
    format!("{REPORT_PREFIX}{:020}", id.0)
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("state records serialize")
}

fn decode<T: for<'de> Deserialize<'de>>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

#[derive(Serialize, Deserialize)]
struct TokenDoc {
    t: ResumeToken,
}

/// Tokens are stored as BSON, never JSON: they may carry binary `_typeBits`.
fn encode_token(t: &ResumeToken) -> Vec<u8> {
    bson::to_vec(&TokenDoc { t: t.clone() }).expect("resume tokens serialize")
}

/// Reads a token back from its stored form (a document `{ t: <token> }`).
pub(crate) fn decode_token(bytes: &[u8]) -> Result<ResumeToken, StoreError> {
    bson::from_slice::<TokenDoc>(bytes)
        .map(|d| d.t)
        .map_err(|e| StoreError::Corrupt {
            key: "token".into(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::WindowSpec;
    use chrono_tz::Tz;
    use rust_decimal::Decimal;

    fn tally2(t: Tally) -> Tally {
        Tally {
            revenue: t.revenue * Decimal::from(2),
            count: t.count * 2,
        }
    }

    fn window() -> Window {
        WindowSpec::new(3600, Tz::UTC)
            .unwrap()
            .window_of(DateTime::from_timestamp(1_748_520_000, 0).unwrap())
    }

    /// Opens again in this process: sled's background threads let go of the directory's lock
    /// a moment after the `Db` is dropped, so wait for that (bounded) instead of failing.
    async fn reopen(dir: &Path) -> Store {
        for _ in 0..100 {
            match Store::open(dir) {
                Err(StoreError::Locked(_)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await
                }
                other => return other.unwrap(),
            }
        }
        panic!("{} still locked after 2 s", dir.display());
    }

    #[tokio::test]
    async fn checkpoint_and_outbox_round_trip_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let w = window();
        let mut open = OpenWindow::new(w, w.start);
        open.totals.add("IKEDC", Decimal::new(150050, 2)).unwrap();
        let five = Tally {
            revenue: Decimal::from(5),
            count: 1,
        };
        {
            let store = Store::open(dir.path()).unwrap();
            assert!(store.load_checkpoint().unwrap().is_none());
            let cp = Checkpoint {
                token: None,
                open: vec![open.clone()],
                next_close: w,
                saved_at: w.start,
            };
            let mut closed = ReportRecord::closed(open.clone(), w.end);
            let late = Marks {
                by_window: BTreeMap::from([(w.id(), five)]),
                anywhere: five,
            };
            store
                .save_checkpoint(&cp, std::slice::from_ref(&closed), &late)
                .await
                .unwrap();
            store.save_checkpoint(&cp, &[], &late).await.unwrap();
            assert_eq!(store.unsettled_late().unwrap()[&w.id()].count, 2);
            assert_eq!(store.changes_anywhere().unwrap().0.count, 2);
            // Undelivered, a report settles nothing; delivered, it settles what it says.
            closed.settles.marks = late.by_window.clone();
            closed.settles.anywhere = Some(five);
            closed.settles.unreported = five;
            store.put_report(&closed).await.unwrap();
            assert_eq!(store.unsettled_late().unwrap()[&w.id()].count, 2);
            store.mark_delivered(&closed).await.unwrap();
        }
        let store = reopen(dir.path()).await;
        let cp = store.load_checkpoint().unwrap().unwrap();
        assert_eq!(cp.open, vec![open]);
        let reports = store.reports().unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].streamed.total().revenue, Decimal::new(150050, 2));
        assert!(reports[0].is_pending());
        assert_eq!(store.unsettled_late().unwrap()[&w.id()], five);
        assert_eq!(store.late().unwrap()[&w.id()].count, 2);
        assert_eq!(store.changes_anywhere().unwrap(), (tally2(five), five));
        assert_eq!(store.unposted().unwrap().unreported, five);
        // One key per window however many sales arrive late: state is O(windows).
        assert_eq!(store.tree.scan_prefix(LATE_PREFIX).count(), 1);
    }

    #[tokio::test]
    async fn per_sale_late_keys_of_earlier_builds_add_up_and_are_superseded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let w = window();
        let five = Tally {
            revenue: Decimal::from(5),
            count: 1,
        };
        for (prefix, at) in [(LATE_PREFIX, 1), (LATE_PREFIX, 2), (CARRIED_PREFIX, 1)] {
            let key = format!("{}/{at:020}", late_key(prefix, w.id()));
            store.tree.insert(key.as_bytes(), encode(&five)).unwrap();
        }
        assert_eq!(store.late().unwrap()[&w.id()].count, 2);
        assert_eq!(store.unsettled_late().unwrap()[&w.id()], five);
        let mut r = ReportRecord::closed(OpenWindow::new(w, w.start), w.end);
        r.settles.marks = store.late().unwrap();
        store.mark_delivered(&r).await.unwrap();
        assert!(store.unsettled_late().unwrap().is_empty());
        assert_eq!(store.settled_late().unwrap()[&w.id()].count, 2);
    }

    #[test]
    fn a_second_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        // sled's lock is per process (flock), so test the message via a child process instead
        // in tests/cli.rs; here only check a foreign tree is refused.
        drop(_first);
        let db = sled::open(dir.path()).unwrap();
        db.open_tree("state")
            .unwrap()
            .insert(KEY_FORMAT, b"other/9".as_slice())
            .unwrap();
        db.flush().unwrap();
        drop(db);
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Foreign(_))
        ));
    }
}
