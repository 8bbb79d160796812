//! Changes to closed windows (late, refunded, deleted, edited or moved sales): which windows a
//! report re-checks against the database, and the correction line it posts. Pure; the outbox
//! worker does the reading and querying.
//!
//! State is one running tally of changes per window (seen by the stream, settled by delivered
//! reports), plus one for changes whose window the stream could not tell, never one entry per
//! sale. What changed is decided by the database, not by bookkeeping: a report re-runs an
//! earlier window's query and posts the difference from what the reports so far said (worded
//! by [`crate::report::notes`]); a stream tally is never posted.

use crate::store::unsettled;
use crate::window::{Tally, Window, WindowId};
use chrono::{DateTime, Utc};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// What a report does about one window with changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The report's own window: every change seen before its query began is in the query.
    CountedByOwnQuery { seen: Tally },
    /// An earlier, reported window within the horizon: re-check it against the database.
    Recheck { window: WindowId },
    /// Counted and logged, not posted.
    Unposted {
        window: WindowId,
        seen: Tally,
        unsettled: Tally,
        why: Unposted,
    },
}

/// Why changes to a window are not posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unposted {
    /// This service never reported the window: there is no report to correct.
    NeverReported,
    /// Reported, but older than the restatement horizon.
    BeyondHorizon,
}

impl Unposted {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NeverReported => "never_reported",
            Self::BeyondHorizon => "beyond_horizon",
        }
    }
}

/// What the outbox knows of an earlier window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    /// Reconciled and rendered: its figures were (or are being) posted.
    Reported(Window),
    /// In the outbox, not yet prepared: its own query will count the changes.
    Pending,
}

/// Everything [`plan`] decides from, read before the report's own query began.
#[derive(Debug)]
pub(crate) struct Ledger<'a> {
    /// Changes seen per window, and those settled by delivered reports.
    pub seen: &'a BTreeMap<WindowId, Tally>,
    pub settled: &'a BTreeMap<WindowId, Tally>,
    /// Changes whose window is unknown are waiting: re-check every reported window in the
    /// horizon.
    pub anywhere: Pending,
    pub reports: &'a BTreeMap<WindowId, Known>,
    /// Windows ending at or before this are beyond the restatement horizon.
    pub horizon_start: DateTime<Utc>,
}

/// Whether window-unknown changes wait for a re-check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pending {
    Nothing,
    Changes,
}

/// The steps for the report of window `id`, oldest window first. `reconciled`: its own query
/// succeeded. Later windows' changes wait for their own reports.
pub(crate) fn plan(id: WindowId, reconciled: bool, ledger: &Ledger<'_>) -> Vec<Step> {
    let mut steps: BTreeMap<WindowId, Step> = BTreeMap::new();
    for (&window, &seen) in ledger.seen {
        let Some(unsettled) = unsettled(seen, ledger.settled.get(&window)) else {
            continue;
        };
        let step = match (window.cmp(&id), ledger.reports.get(&window)) {
            (Ordering::Greater, _) => continue,
            (Ordering::Equal, _) if reconciled => Step::CountedByOwnQuery { seen },
            (Ordering::Equal, _) | (_, Some(Known::Pending)) => continue,
            (Ordering::Less, None) => Step::Unposted {
                window,
                seen,
                unsettled,
                why: Unposted::NeverReported,
            },
            (Ordering::Less, Some(Known::Reported(w))) if w.end <= ledger.horizon_start => {
                Step::Unposted {
                    window,
                    seen,
                    unsettled,
                    why: Unposted::BeyondHorizon,
                }
            }
            (Ordering::Less, Some(Known::Reported(_))) => Step::Recheck { window },
        };
        steps.insert(window, step);
    }
    if ledger.anywhere == Pending::Changes {
        for (&window, known) in ledger.reports.range(..id) {
            if let Known::Reported(w) = known {
                if w.end > ledger.horizon_start {
                    steps.entry(window).or_insert(Step::Recheck { window });
                }
            }
        }
    }
    steps.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn tally(naira: i64, count: u64) -> Tally {
        Tally {
            revenue: Decimal::from(naira),
            count,
        }
    }

    fn window(id: i64) -> Window {
        let start = DateTime::from_timestamp(id, 0).unwrap();
        Window {
            start,
            end: start + chrono::TimeDelta::seconds(100),
        }
    }

    #[test]
    fn a_report_settles_its_own_and_rechecks_reported_windows_in_the_horizon() {
        let (old, unreported, earlier, pending, own, later) = (
            WindowId(0),
            WindowId(100_000),
            WindowId(200_000),
            WindowId(250_000),
            WindowId(300_000),
            WindowId(400_000),
        );
        let seen = BTreeMap::from([
            (WindowId(50_000), tally(5, 1)),
            (old, tally(4, 1)),
            (unreported, tally(6, 2)),
            (earlier, tally(30, 3)),
            (pending, tally(1, 1)),
            (own, tally(7, 1)),
            (later, tally(9, 1)),
        ]);
        // Window 50 000 is settled already; `earlier` in part.
        let settled = BTreeMap::from([(WindowId(50_000), tally(5, 1)), (earlier, tally(10, 1))]);
        let reports = BTreeMap::from([
            (old, Known::Reported(window(0))),
            (WindowId(50_000), Known::Reported(window(50))),
            (WindowId(150_000), Known::Reported(window(150))),
            (earlier, Known::Reported(window(200))),
            (pending, Known::Pending),
        ]);
        let mut ledger = Ledger {
            seen: &seen,
            settled: &settled,
            anywhere: Pending::Nothing,
            reports: &reports,
            horizon_start: DateTime::from_timestamp(120, 0).unwrap(),
        };
        assert_eq!(
            plan(own, true, &ledger),
            vec![
                Step::Unposted {
                    window: old,
                    seen: tally(4, 1),
                    unsettled: tally(4, 1),
                    why: Unposted::BeyondHorizon,
                },
                Step::Unposted {
                    window: unreported,
                    seen: tally(6, 2),
                    unsettled: tally(6, 2),
                    why: Unposted::NeverReported,
                },
                Step::Recheck { window: earlier },
                Step::CountedByOwnQuery { seen: tally(7, 1) },
            ]
        );
        // A failed own query counted nothing: its changes wait for a re-check.
        assert_eq!(plan(own, false, &ledger).len(), 3);
        // Window-unknown changes: every reported window in the horizon, once.
        ledger.anywhere = Pending::Changes;
        let rechecked: Vec<_> = plan(own, true, &ledger)
            .into_iter()
            .filter_map(|s| match s {
                Step::Recheck { window } => Some(window),
                _ => None,
            })
            .collect();
        assert_eq!(
            rechecked,
            vec![WindowId(50_000), WindowId(150_000), earlier]
        );
    }
}
