//! Late sales (committed after their window closed): which of them a report settles, and the
//! correction line it posts. Pure; the outbox worker does the reading and querying.
//!
//! State is one running tally per window (seen late, settled by reports), never one entry per
//! sale, so a flood of late sales costs nothing that grows with it. What was already counted is
//! decided by the database, not by bookkeeping: a report re-runs an earlier window's query and
//! posts the difference from what the reports so far said (see [`correction_line`]).

use crate::money::format_naira;
use crate::report::transactions;
use crate::store::unsettled;
use crate::window::{Tally, Totals, WindowId};
use rust_decimal::Decimal;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// What a report does about one window's unsettled late sales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The report's own window: seen before its query began, so the query counted them.
    CountedByOwnQuery { seen: Tally },
    /// An earlier window: re-check it against the database (or, with no report of its own,
    /// add what the stream saw).
    Earlier {
        window: WindowId,
        seen: Tally,
        unsettled: Tally,
    },
}

/// The steps for the report of window `id`, from the late sales `seen` per window (read before
/// its query began) and those already `settled`. `reconciled`: its own query succeeded.
/// Later windows' late sales wait for their own reports.
pub fn plan(
    id: WindowId,
    reconciled: bool,
    seen: &BTreeMap<WindowId, Tally>,
    settled: &BTreeMap<WindowId, Tally>,
) -> Vec<Step> {
    seen.iter()
        .filter_map(|(&window, &seen)| {
            let unsettled = unsettled(seen, settled.get(&window))?;
            match window.cmp(&id) {
                Ordering::Greater => None,
                Ordering::Equal => reconciled.then_some(Step::CountedByOwnQuery { seen }),
                Ordering::Less => Some(Step::Earlier {
                    window,
                    seen,
                    unsettled,
                }),
            }
        })
        .collect()
}

/// A signed difference in revenue and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Change {
    pub revenue: Decimal,
    pub count: i64,
}

impl Change {
    /// From what the reports so far said to what the database holds now.
    pub fn between(reported: &Totals, now: &Totals) -> Change {
        let (before, after) = (reported.total(), now.total());
        Change {
            revenue: after.revenue - before.revenue,
            count: after.count as i64 - before.count as i64,
        }
    }
}

impl From<Tally> for Change {
    fn from(t: Tally) -> Change {
        Change {
            revenue: t.revenue,
            count: t.count as i64,
        }
    }
}

/// The report line for a change to window `label`, if there is one. Sales only added read as
/// "Late for …: +₦…"; anything else (a sale gone or changed in the database since) is shown
/// signed as a correction.
pub fn correction_line(label: &str, change: Change) -> Option<String> {
    if change == Change::default() {
        return None;
    }
    if change.revenue >= Decimal::ZERO && change.count >= 0 {
        return Some(format!(
            "Late for {label}: +{}, {}",
            format_naira(change.revenue),
            transactions(change.count as u64)
        ));
    }
    let sign = if change.revenue >= Decimal::ZERO {
        "+"
    } else {
        ""
    };
    Some(format!(
        "Correction for {label}: {sign}{}, {:+} transactions (the database changed after its report)",
        format_naira(change.revenue),
        change.count
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(naira: i64, count: u64) -> Tally {
        Tally {
            revenue: Decimal::from(naira),
            count,
        }
    }

    #[test]
    fn a_report_settles_its_own_and_rechecks_earlier_windows_only() {
        let (earlier, own, later) = (WindowId(100), WindowId(200), WindowId(300));
        let seen = BTreeMap::from([
            (WindowId(50), tally(5, 1)),
            (earlier, tally(30, 3)),
            (own, tally(7, 1)),
            (later, tally(9, 1)),
        ]);
        // Window 50 is settled already; 100 in part.
        let settled = BTreeMap::from([(WindowId(50), tally(5, 1)), (earlier, tally(10, 1))]);
        assert_eq!(
            plan(own, true, &seen, &settled),
            vec![
                Step::Earlier {
                    window: earlier,
                    seen: tally(30, 3),
                    unsettled: tally(20, 2)
                },
                Step::CountedByOwnQuery { seen: tally(7, 1) },
            ]
        );
        // A failed own query counted nothing: its late sales wait for a re-check.
        assert_eq!(plan(own, false, &seen, &settled).len(), 1);
    }

    #[test]
    fn corrections_read_as_late_sales_or_signed_changes() {
        let totals = |naira: i64, n: u64| {
            let mut t = Totals::default();
            for _ in 0..n {
                t.add("IKEDC", Decimal::from(naira) / Decimal::from(n))
                    .unwrap();
            }
            t
        };
        let added = Change::between(&totals(100, 1), &totals(1600, 3));
        assert_eq!(
            correction_line("Mon 06:00", added).unwrap(),
            "Late for Mon 06:00: +₦1,500.00, 2 transactions"
        );
        assert_eq!(
            correction_line("x", Change::between(&totals(100, 1), &totals(100, 1))),
            None
        );
        let gone = Change::between(&totals(1600, 3), &totals(100, 1));
        assert_eq!(
            correction_line("Mon 06:00", gone).unwrap(),
            "Correction for Mon 06:00: -₦1,500.00, -2 transactions (the database changed after its report)"
        );
        assert_eq!(
            correction_line("x", tally(7, 1).into()).unwrap(),
            "Late for x: +₦7.00, 1 transaction"
        );
    }
}
