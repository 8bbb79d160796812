//! Durable state in sled: the checkpoint (resume token + open windows' totals + the next window
//! to close) and the report outbox. Everything lives in one tree so that one `apply_batch`
//! covers a token and the totals it belongs to; every write is flushed before it is relied on.
//! Changes to closed windows and what reports settle of them live in [`changes`]; the silence
//! watcher's small state in [`silence`]; what the channel was told of each window, per
//! utility, in [`ledger`].

use crate::activity::Activity;
use crate::change::Marks;
use crate::window::{OpenWindow, Window, WindowId};
use chrono::{DateTime, Utc};
use mongodb::change_stream::event::ResumeToken;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod activity;
mod alerts;
mod changes;
mod history;
mod index;
mod ledger;
mod outbox;
mod perms;
mod silence;
mod summaries;
mod windows;

pub use changes::{unsettled, Settlement, UnpostedChanges};
pub use history::{History, Pass};
pub use index::Pruned;
pub use ledger::{Source, Told};
pub use outbox::{
    AlertRecord, Delivery, DeliveryStatus, MessageId, Messages, Outboxed, Progress, Ready,
    Reconciled, ReportRecord, Reported, Sent, Stage, Step, SummaryRecord, Transition,
    Undeliverable,
};
pub(crate) use silence::{SilenceRecord, SilenceTold, SilentRecord};

const KEY_FORMAT: &[u8] = b"format";
const KEY_TOKEN: &[u8] = b"token";
const KEY_CHECKPOINT: &[u8] = b"checkpoint";
const REPORT_PREFIX: &str = "report/";
/// What this build stores: a state directory of any other format is refused as it opens
/// ([`StoreError::Format`]), never read as this one. Changes with what is stored.
const FORMAT: &[u8] = b"power-revenue/3";
/// How every format's value begins; what follows is its version.
const FORMAT_PREFIX: &[u8] = b"power-revenue/";
/// sled's page cache: the whole state (a checkpoint, and a report and two tallies per window)
/// fits many times over.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// Beside sled's files: says this directory once held our state (see [`Store::open`]).
const MARKER_FILE: &str = "power-revenue.state";
/// Where the running service listens for HTTP, for `status` run beside it (the configured
/// address may be port 0).
const HTTP_ADDR_FILE: &str = "power-revenue.http";
/// What sled itself keeps in its directory.
const SLED_FILES: &[&str] = &["conf", "db", "blobs", "snap."];

/// Writes `bytes` to a new file that only the owner can read (0600, whatever the umask) and
/// syncs it.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(perms::FILE_MODE)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The first entry that neither sled nor power-revenue would have put there (dotfiles such as
/// a `.gitkeep` are allowed).
fn foreign_entry(dir: &Path) -> std::io::Result<Option<String>> {
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with('.')
            || name == MARKER_FILE
            || name == HTTP_ADDR_FILE
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
    #[error("state directory {dir:?} is writable by group or others (mode {mode:04o}), so anyone could have changed the revenue it holds; run `chmod 700 {dir:?}` and start again")]
    Writable { dir: PathBuf, mode: u32 },
    #[error("state directory holds data of another program or version ({0}); point POWER_REVENUE_STATE_DIR at an empty directory")]
    Foreign(String),
    #[error("state directory {dir} holds power-revenue state of format {found}, this build reads format {reads}; move it aside (the service then starts at the current window)")]
    Format {
        dir: PathBuf,
        found: String,
        reads: String,
    },
    #[error("state write failed: {0}")]
    Io(#[from] sled::Error),
    #[error("state directory {0}")]
    Damaged(String),
    #[error("state record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    /// The state was written with other windows: every window id, total and checkpoint in it
    /// belongs to those, and reading them as these would count sales twice.
    #[error("state directory {dir} holds windows of {was}; POWER_REVENUE_WINDOW and POWER_REVENUE_TIMEZONE now say {now}: set them back, or point POWER_REVENUE_STATE_DIR at an empty directory (the service then starts at the current window)")]
    WindowsChanged {
        dir: PathBuf,
        was: String,
        now: String,
    },
    /// [`Store::mark_delivered`] with a record not yet moved to `Sent` (a bug in the caller).
    #[error("the report for window {0} is not marked sent, so it settles nothing yet")]
    NotSent(WindowId),
}

impl StoreError {
    /// Disk hiccups may pass; a locked, foreign or corrupt store will not.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Io(_))
    }

    /// A setting disagrees with the state: the settings are what to fix (exit 2).
    pub fn is_setting(&self) -> bool {
        matches!(self, Self::WindowsChanged { .. })
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

#[derive(Clone)]
pub struct Store {
    tree: sled::Tree,
    db: sled::Db,
}

/// Records the address the running service's HTTP listener is bound to.
pub(crate) fn record_http_addr(dir: &Path, addr: std::net::SocketAddr) -> std::io::Result<()> {
    // Written aside and renamed, so a reader never sees half an address.
    let aside = dir.join(format!(".{HTTP_ADDR_FILE}.new"));
    std::fs::write(&aside, addr.to_string())?;
    std::fs::rename(aside, dir.join(HTTP_ADDR_FILE))
}

/// The address [`record_http_addr`] recorded, if any.
pub(crate) fn recorded_http_addr(dir: &Path) -> Option<std::net::SocketAddr> {
    std::fs::read_to_string(dir.join(HTTP_ADDR_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
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
        perms::prepare_dir(dir)?;
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
        perms::tighten_contents(dir);
        let tree = db.open_tree("state")?;
        match tree.get(KEY_FORMAT)? {
            Some(v) if v.as_ref() == FORMAT => {}
            Some(v) if v.starts_with(FORMAT_PREFIX) => {
                return Err(StoreError::Format {
                    dir: dir.into(),
                    found: version(&v),
                    reads: version(FORMAT),
                })
            }
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
            write_private(&marker, FORMAT).map_err(open_error)?;
        }
        Ok(Store { tree, db })
    }

    pub(crate) fn load_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
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

    /// Writes the checkpoint, newly closed windows' outbox records, new late sales and the
    /// activity counted since the last checkpoint in one atomic, flushed batch: a window
    /// leaves the open set exactly when its report enters the outbox, and a late sale or a
    /// counted one is saved exactly with the token that covers it.
    pub async fn save_checkpoint(
        &self,
        cp: &Checkpoint,
        closed: &[ReportRecord],
        marks: &Marks,
        activity: &Activity,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(KEY_CHECKPOINT, encode(cp));
        if let Some(token) = &cp.token {
            batch.insert(KEY_TOKEN, encode_token(token));
        }
        for r in closed {
            batch.insert(report_key(r.window.id()).as_bytes(), encode(r));
            Self::index_pending(&mut batch, r.window.id());
        }
        self.put_marks(&mut batch, marks)?;
        self.put_activity(&mut batch, activity)?;
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

    pub fn report(&self, id: WindowId) -> Result<Option<ReportRecord>, StoreError> {
        let key = report_key(id);
        self.tree
            .get(key.as_bytes())?
            .map(|b| decode(key.as_bytes(), &b))
            .transpose()
    }

    /// All outbox records, oldest window first (tests: the service reads them by index or
    /// range).
    #[cfg(test)]
    pub fn reports(&self) -> Result<Vec<ReportRecord>, StoreError> {
        self.tree
            .scan_prefix(REPORT_PREFIX)
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    /// The start of the oldest window the store holds a record of: one key read.
    pub fn oldest_report_start(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.tree.scan_prefix(REPORT_PREFIX).next() {
            Some(kv) => {
                let (k, v) = kv?;
                Ok(Some(decode::<ReportRecord>(&k, &v)?.window.start))
            }
            None => Ok(None),
        }
    }

    /// The `n` most recent outbox records, newest first: reads only those keys.
    pub fn latest_reports(&self, n: usize) -> Result<Vec<ReportRecord>, StoreError> {
        self.tree
            .scan_prefix(REPORT_PREFIX)
            .rev()
            .take(n)
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    /// At most `take` outbox records whose window starts in `[from, to)` (either end open
    /// when `None`), oldest first. Reads only those keys: a history page costs its own size,
    /// however many windows the store holds. Windows before 1970 (never closed by this
    /// service) are not found.
    pub fn reports_between(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        take: usize,
    ) -> Result<Vec<ReportRecord>, StoreError> {
        // Keys are whole milliseconds: the key range is the bounds widened to them, and each
        // record is then held to the exact bounds.
        let lo = report_key(WindowId(from.map_or(0, |t| t.timestamp_millis().max(0))));
        let hi = match to {
            Some(t) => report_key(WindowId(t.timestamp_millis().saturating_add(1).max(0))),
            // Past every report key (`report/` then digits).
            None => format!("{REPORT_PREFIX}:"),
        };
        let mut out = Vec::new();
        for kv in self.tree.range(lo.as_bytes()..hi.as_bytes()) {
            if out.len() >= take {
                break;
            }
            let (k, v) = kv?;
            let r: ReportRecord = decode(&k, &v)?;
            let start = r.window.start;
            if from.is_none_or(|f| f <= start) && to.is_none_or(|t| start < t) {
                out.push(r);
            }
        }
        Ok(out)
    }
}

/// The version in a format value (`3` of `power-revenue/3`).
fn version(format: &[u8]) -> String {
    String::from_utf8_lossy(&format[FORMAT_PREFIX.len().min(format.len())..]).into_owned()
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
mod tests;
