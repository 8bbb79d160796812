//! Every output shape built from the store and the live state, in one place: the status
//! (`power-revenue status [--json]`, `GET /api/v1/status`), the open windows
//! (`GET /api/v1/windows/current`, read by the dashboard) and the closed windows
//! (`GET /api/v1/windows`). An open window, a closed window's record and a ranked per-utility
//! row are each mapped once here and shown the same way everywhere; the CLI's text rendering
//! lives in [`crate::status`], routing in [`crate::http`]. Field names are stable (the README
//! documents them). Never contains a secret; names are carried as stored (data), with their
//! displayed form ([`crate::display::utility_name`]) beside them.

use crate::compare::ComparisonView;
use crate::config::Config;
use crate::setup::RestatementMode;
use crate::silence::SilentView;
use crate::source::Live;
use crate::store::Outboxed;
use crate::store::{Delivery, DeliveryStatus, ReportRecord, Store, StoreError, Told};
use crate::window::{OpenWindow, Tally, Totals, Window, WindowId};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

mod summary;
pub use summary::SummaryStatus;

/// One per-utility row of a ranked breakdown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UtilityView {
    /// The name as stored (the totals key): data, exact.
    pub utility: String,
    /// The name as shown ([`crate::display::utility_name`]): what the dashboard prints.
    pub display: String,
    /// `revenue` (naira, a decimal string with its places: "1500.50") and `count`.
    #[serde(flatten)]
    pub tally: Tally,
}

/// Totals with their per-utility rows, highest revenue first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TotalsView {
    /// `revenue` and `count` of the whole.
    #[serde(flatten)]
    pub total: Tally,
    /// Highest revenue first (ties by name).
    pub by_utility: Vec<UtilityView>,
}

impl TotalsView {
    /// The one mapping of ranked per-utility rows.
    pub fn of(totals: &Totals) -> TotalsView {
        TotalsView {
            total: totals.total(),
            by_utility: totals
                .ranked()
                .into_iter()
                .map(|(u, tally)| UtilityView {
                    utility: u.to_owned(),
                    display: crate::display::utility_name(u).into_owned(),
                    tally,
                })
                .collect(),
        }
    }
}

/// An open window with its running totals: the one mapping, used by the status and the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenWindowView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub totals: TotalsView,
    pub events_applied: u64,
    pub last_event_at: Option<DateTime<Utc>>,
    /// The stream began after the window did (first start): totals cover only part of it.
    pub partial: bool,
}

impl OpenWindowView {
    pub fn of(w: &OpenWindow) -> OpenWindowView {
        OpenWindowView {
            start: w.window.start,
            end: w.window.end,
            totals: TotalsView::of(&w.totals),
            events_applied: w.events_applied,
            last_event_at: w.last_event_at,
            partial: w.is_partial(),
        }
    }
}

/// `GET /api/v1/windows/current`.
#[derive(Debug, Serialize)]
pub struct CurrentView {
    pub time_zone: String,
    pub now: DateTime<Utc>,
    pub stream_connected: bool,
    /// When the last applied sale was committed in the database.
    pub last_event_at: Option<DateTime<Utc>>,
    /// How far behind the stream was at the last applied sale.
    pub lag_secs: f64,
    /// Open windows, oldest first (usually one: the current window).
    pub windows: Vec<OpenWindowView>,
    /// Utilities that usually sell now and have sold nothing for the silence period, longest
    /// silent first (the HTTP layer fills it from the silence watcher).
    pub silent: Vec<SilentView>,
}

impl CurrentView {
    pub fn build(live: &Live, config: &Config, now: DateTime<Utc>) -> CurrentView {
        CurrentView {
            time_zone: config.window.tz().name().to_owned(),
            now,
            stream_connected: live.connected.load(Relaxed),
            last_event_at: millis(live.last_event_ms.load(Relaxed)),
            lag_secs: live.lag_ms.load(Relaxed) as f64 / 1000.0,
            windows: live.snapshot().iter().map(OpenWindowView::of).collect(),
            silent: Vec::new(),
        }
    }
}

/// A closed window's record, the part the status and the API share: its figures and how far
/// its report got.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The database's figures (what the report posts); `null` until reconciled, or if the
    /// query failed.
    pub reconciled: Option<TotalsView>,
    /// What the channel holds after the corrections posted since the report (the ledger);
    /// `null` while no correction changed the window.
    pub rechecked: Option<TotalsView>,
    /// The live stream's figures at close.
    pub streamed: TotalsView,
    /// What the window holds as far as the service knows: its report's figures plus the
    /// corrections posted since, i.e. `rechecked`, else `reconciled`, else `streamed`. What
    /// the history (`from`/`to`) and its CSV show.
    pub totals: TotalsView,
    /// Which of the three `totals` is.
    pub totals_from: FiguresFrom,
    /// Whether the two agreed; `null` until reconciled.
    pub matched_stream: Option<bool>,
    pub recomputed: bool,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl RecordView {
    /// The one mapping of a closed window's record, with what the ledger holds of it.
    pub fn of(r: &ReportRecord, told: Option<&Told>) -> RecordView {
        let db = r.reconciled().and_then(|x| x.database());
        let corrected = told.filter(|t| t.corrections > 0).map(|t| &t.now);
        RecordView {
            start: r.window.start,
            end: r.window.end,
            reconciled: db.map(TotalsView::of),
            rechecked: corrected.map(TotalsView::of),
            streamed: TotalsView::of(&r.streamed),
            totals: TotalsView::of(told_now(r, told)),
            totals_from: FiguresFrom::of(r, corrected.is_some()),
            matched_stream: db.map(|d| *d == r.streamed),
            recomputed: r.recomputed,
            sent_at: match r.delivery() {
                Delivery::Sent(sent) => Some(sent.at),
                _ => None,
            },
            attempts: r.attempts,
            last_error: r.last_error.clone(),
        }
    }
}

/// Where a closed window's current figures ([`RecordView::totals`]) come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FiguresFrom {
    /// A later report's re-check of the database (the report plus its corrections).
    Rechecked,
    /// The window's own `$facet` (what its report posts).
    Reconciled,
    /// The live stream at close: not reconciled yet, or the query failed.
    Streamed,
}

/// What the channel holds of `r`'s window: the ledger's figures, else what the report shows.
pub(crate) fn told_now<'a>(r: &'a ReportRecord, told: Option<&'a Told>) -> &'a Totals {
    told.map_or_else(|| r.shown(), |t| &t.now)
}

impl FiguresFrom {
    fn of(r: &ReportRecord, corrected: bool) -> FiguresFrom {
        if corrected {
            Self::Rechecked
        } else if r.reconciled().and_then(|x| x.database()).is_some() {
            Self::Reconciled
        } else {
            Self::Streamed
        }
    }
}

/// One element of `GET /api/v1/windows` (`last=N`: newest first; `from`/`to`: oldest first).
#[derive(Debug, Serialize)]
pub struct ClosedWindowView {
    #[serde(flatten)]
    pub record: RecordView,
    /// `closed` | `ready` | `sent` | `undeliverable`.
    pub delivery: &'static str,
    /// The report's comparisons (figures and changes as posted); `null` until it is
    /// prepared.
    pub compared: Option<ComparisonView>,
}

impl ClosedWindowView {
    pub fn from_record(r: &ReportRecord, told: Option<&Told>) -> ClosedWindowView {
        ClosedWindowView {
            record: RecordView::of(r, told),
            delivery: r.stage().as_str(),
            compared: r.compared.as_ref().map(|c| {
                let now = r.reconciled().and_then(|x| x.database());
                ComparisonView::of(c, now.unwrap_or(&r.streamed))
            }),
        }
    }
}

/// The status: checkpoint age, open windows with running totals, last report, pending
/// reports. Deserialized too: `status` reads it from the running service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusView {
    pub running: bool,
    /// Where sales are read from: the URI with its password redacted, database.collection.
    pub source: Option<String>,
    pub checkpoint_saved_at: Option<DateTime<Utc>>,
    pub checkpoint_age_secs: Option<i64>,
    pub has_resume_token: bool,
    pub next_window_to_close: Option<Window>,
    pub open_windows: Vec<WindowView>,
    pub last_reported: Option<ReportStatus>,
    pub pending_reports: Vec<ReportStatus>,
    pub undeliverable_reports: Vec<ReportStatus>,
    /// Changes to closed windows (late, refunded, deleted, edited, moved sales: how many, and
    /// the stream's estimate of the revenue moved) that the next report will check.
    pub late_awaiting_report: Vec<(WindowId, Tally)>,
    pub restatements: Restatements,
    pub counters: Option<Counters>,
    /// Silent utilities, as in `windows/current`; empty when the service is not running.
    pub silent: Vec<SilentView>,
    /// The latest period summary, if any.
    pub last_summary: Option<SummaryStatus>,
}

/// How sales that change after their report reach later reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restatements {
    /// `pre_images` or `recheck`; `None` while the service is not running.
    pub mode: Option<RestatementMode>,
    /// Reported windows ending within this many seconds are corrected.
    pub horizon_secs: u64,
    /// Changes whose window is unknown (no pre-image): the next report re-checks every
    /// reported window within the horizon.
    pub unknown_window_changes_awaiting_report: u64,
    /// Back-dated sales and other changes to windows this service never reported (counted,
    /// not posted: there is no report to correct).
    pub unreported_windows: Tally,
    /// Changes to reported windows older than the horizon (counted and logged, not posted).
    pub beyond_horizon: Tally,
}

/// An open window in the status: its first shape (`window`, `total`, `by_utility` as
/// `[name, tally]` pairs), then the API's ([`OpenWindowView`]), both from one mapping.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowView {
    pub window: Window,
    pub total: Tally,
    pub by_utility: Vec<(String, Tally)>,
    #[serde(flatten)]
    pub open: OpenWindowView,
}

impl WindowView {
    pub fn of(w: &OpenWindow) -> WindowView {
        let open = OpenWindowView::of(w);
        WindowView {
            window: Window {
                start: open.start,
                end: open.end,
            },
            total: open.totals.total,
            by_utility: open
                .totals
                .by_utility
                .iter()
                .map(|row| (row.utility.clone(), row.tally))
                .collect(),
            open,
        }
    }
}

/// A report in the status: its first shape, then the API's record ([`RecordView`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportStatus {
    pub window: Window,
    pub delivery: DeliveryStatus,
    /// What its posts add up to: the database's figures (as last re-checked after late
    /// sales), else the stream's.
    pub total: Option<Tally>,
    /// Sales that arrived after the window closed…
    pub late: Tally,
    /// …of which the next report will carry these.
    pub late_not_yet_reported: Tally,
    #[serde(flatten)]
    pub record: RecordView,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Counters {
    pub stream_connected: bool,
    pub events_applied: u64,
    pub events_skipped: u64,
    pub skipped_by_reason: BTreeMap<String, u64>,
    pub events_late: u64,
    pub reconnects: u64,
    pub checkpoints: u64,
}

impl StatusView {
    pub fn build(
        store: &Store,
        live: Option<&Live>,
        horizon: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<StatusView, StoreError> {
        let cp = store.load_checkpoint()?;
        let open = match live {
            Some(l) => l.snapshot(),
            None => cp.as_ref().map(|c| c.open.clone()).unwrap_or_default(),
        };
        // Bounded reads only: the indexes, and the changes within the horizon.
        let horizon_start = crate::window::earlier_by(now, horizon);
        let unsettled = store.unsettled_since(WindowId(horizon_start.timestamp_millis()))?;
        let view = |r: &ReportRecord| -> Result<ReportStatus, StoreError> {
            let (late, settled) = store.changes_of(r.window.id())?;
            let told = store.told(r.window.id())?;
            Ok(ReportStatus {
                window: r.window,
                delivery: r.status(),
                total: Some(told_now(r, told.as_ref()).total()),
                late,
                late_not_yet_reported: crate::store::unsettled(late, Some(&settled))
                    .unwrap_or_default(),
                record: RecordView::of(r, told.as_ref()),
            })
        };
        let views = |records: Vec<ReportRecord>| -> Result<Vec<ReportStatus>, StoreError> {
            records.iter().map(view).collect()
        };
        let (any_seen, any_settled) = store.changes_anywhere()?;
        let unposted = store.unposted()?;
        Ok(StatusView {
            running: live.is_some(),
            source: None,
            checkpoint_saved_at: cp.as_ref().map(|c| c.saved_at),
            checkpoint_age_secs: cp.as_ref().map(|c| (now - c.saved_at).num_seconds()),
            has_resume_token: cp.as_ref().is_some_and(|c| c.token.is_some()),
            next_window_to_close: cp.as_ref().map(|c| c.next_close),
            open_windows: open.iter().map(WindowView::of).collect(),
            last_reported: store.last_sent()?.as_ref().map(view).transpose()?,
            pending_reports: views(store.pending_reports()?)?,
            undeliverable_reports: views(store.undeliverable_reports(MAX_UNDELIVERABLE_SHOWN)?)?,
            late_awaiting_report: unsettled.into_iter().collect(),
            restatements: Restatements {
                mode: live.and_then(|l| {
                    *l.restatement_mode
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                }),
                horizon_secs: horizon.as_secs(),
                unknown_window_changes_awaiting_report: any_seen
                    .count
                    .saturating_sub(any_settled.count),
                unreported_windows: unposted.unreported,
                beyond_horizon: unposted.beyond_horizon,
            },
            last_summary: store.latest_summary()?.as_ref().map(SummaryStatus::of),
            counters: live.map(|l| Counters {
                stream_connected: l.connected.load(Relaxed),
                events_applied: l.events_applied.load(Relaxed),
                events_skipped: l.events_skipped.load(Relaxed),
                skipped_by_reason: l.skipped_by_reason(),
                events_late: l.events_late.load(Relaxed),
                reconnects: l.reconnects.load(Relaxed),
                checkpoints: l.checkpoints.load(Relaxed),
            }),
            silent: Vec::new(),
        })
    }
}

/// Undeliverable reports `status` lists, newest first.
const MAX_UNDELIVERABLE_SHOWN: usize = 20;

/// A time the tailer keeps as Unix milliseconds in an atomic, 0 meaning "not yet".
pub(crate) fn millis(ms: i64) -> Option<DateTime<Utc>> {
    (ms > 0)
        .then(|| Utc.timestamp_millis_opt(ms).single())
        .flatten()
}

#[cfg(test)]
mod tests;
