//! The wording of a report's notes: how the stream compared with the database, and the
//! corrections for earlier windows. The outbox worker decides which notes a report carries
//! ([`Note`] holds the facts); this module alone says them.

use super::transactions;
use crate::money::format_naira;
use crate::window::{ClosedBy, Tally, Totals};
use rust_decimal::Decimal;
use std::cmp::Ordering;
use std::fmt;

/// One context line of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// The database query failed: the stream's totals are posted.
    NotReconciled { streamed: Tally },
    /// The stream saw only part of the window: the database's figures are posted.
    BeganMidWindow { streamed: Tally },
    /// The window closed before the stream had caught up (or while it was down): the
    /// database's figures are posted.
    ClosedEarly {
        streamed: Tally,
        closed_by: ClosedBy,
    },
    /// The stream's totals differed from the database's, which are posted.
    StreamDiffered { streamed: Tally },
    /// The live totals were rebuilt from the database after the stream's history was lost.
    Recomputed,
    /// An earlier window (`label`, see [`super::window_label`]) changed since it was reported.
    Correction { label: String, change: Change },
    /// An earlier window has changes the database could not be asked about now.
    NotYetChecked { label: String },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let figures =
            |t: &Tally| format!("{} ({})", format_naira(t.revenue), transactions(t.count));
        match self {
            Self::NotReconciled { streamed } => write!(
                f,
                "⚠️ Not reconciled: the database query failed; live stream totals shown ({}).",
                figures(streamed)
            ),
            Self::BeganMidWindow { streamed } => write!(
                f,
                "ℹ️ Live totals began mid-window ({}); database figures shown.",
                figures(streamed)
            ),
            Self::ClosedEarly {
                streamed,
                closed_by: ClosedBy::Clock { behind_secs },
            } => write!(
                f,
                "ℹ️ Closed before the live stream caught up ({behind_secs} s behind; live totals {}); database figures shown.",
                figures(streamed)
            ),
            Self::ClosedEarly { streamed, .. } => write!(
                f,
                "ℹ️ Closed while the change stream was down (live totals {}); database figures shown.",
                figures(streamed)
            ),
            Self::StreamDiffered { streamed } => write!(
                f,
                "⚠️ Live stream totals differed ({}); database figures shown.",
                figures(streamed)
            ),
            Self::Recomputed => f.write_str(
                "♻️ Recomputed: live totals were rebuilt from the database after the change-stream history was lost.",
            ),
            Self::Correction { label, change } => f.write_str(&correction_line(label, *change)),
            Self::NotYetChecked { label } => write!(
                f,
                "⚠️ Changes to {label} not yet checked against the database; the next report will."
            ),
        }
    }
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
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Change {
            revenue: after
                .revenue
                .checked_sub(before.revenue)
                .unwrap_or_default(),
            count: count(after.count).saturating_sub(count(before.count)),
        }
    }

    /// Nothing changed: no correction to post.
    pub fn is_none(&self) -> bool {
        *self == Change::default()
    }
}

impl From<Tally> for Change {
    fn from(t: Tally) -> Change {
        Change {
            revenue: t.revenue,
            count: i64::try_from(t.count).unwrap_or(i64::MAX),
        }
    }
}

/// The line for a change to window `label`. Sales only added read as "Late for …: +₦…, N
/// transactions"; anything else (a refund, delete, edit or move) is a correction with a sign
/// on both figures: "Correction for …: -₦1,500.00, -1 transaction".
fn correction_line(label: &str, change: Change) -> String {
    let revenue_sign = if change.revenue >= Decimal::ZERO {
        "+"
    } else {
        ""
    };
    let revenue = format!("{revenue_sign}{}", format_naira(change.revenue));
    if change.revenue >= Decimal::ZERO && change.count > 0 {
        return format!(
            "Late for {label}: {revenue}, {}",
            transactions(change.count.unsigned_abs())
        );
    }
    let count_sign = match change.count.cmp(&0) {
        Ordering::Less => "-",
        Ordering::Equal => "",
        Ordering::Greater => "+",
    };
    format!(
        "Correction for {label}: {revenue}, {count_sign}{}",
        transactions(change.count.unsigned_abs())
    )
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

    fn line(label: &str, change: Change) -> String {
        Note::Correction {
            label: label.into(),
            change,
        }
        .to_string()
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
            line("Mon 06:00", added),
            "Late for Mon 06:00: +₦1,500.00, 2 transactions"
        );
        assert!(Change::between(&totals(100, 1), &totals(100, 1)).is_none());
        let gone = Change::between(&totals(1600, 3), &totals(100, 1));
        assert_eq!(
            line("Mon 06:00", gone),
            "Correction for Mon 06:00: -₦1,500.00, -2 transactions"
        );
        assert_eq!(
            line("x", tally(7, 1).into()),
            "Late for x: +₦7.00, 1 transaction"
        );
        let refund = Change {
            revenue: Decimal::from(-1500),
            count: -1,
        };
        assert_eq!(
            line("Morning 2025-05-29", refund),
            "Correction for Morning 2025-05-29: -₦1,500.00, -1 transaction"
        );
        let edit = Change {
            revenue: Decimal::from(250),
            count: 0,
        };
        assert_eq!(
            line("x", edit),
            "Correction for x: +₦250.00, 0 transactions"
        );
    }

    #[test]
    fn reconciliation_notes_keep_their_wording() {
        let streamed = tally(1500, 2);
        assert_eq!(
            Note::NotReconciled { streamed }.to_string(),
            "⚠️ Not reconciled: the database query failed; live stream totals shown (₦1,500.00 (2 transactions))."
        );
        assert_eq!(
            Note::BeganMidWindow { streamed }.to_string(),
            "ℹ️ Live totals began mid-window (₦1,500.00 (2 transactions)); database figures shown."
        );
        assert_eq!(
            Note::ClosedEarly { streamed, closed_by: ClosedBy::Clock { behind_secs: 31 } }.to_string(),
            "ℹ️ Closed before the live stream caught up (31 s behind; live totals ₦1,500.00 (2 transactions)); database figures shown."
        );
        assert_eq!(
            Note::ClosedEarly { streamed, closed_by: ClosedBy::Disconnected }.to_string(),
            "ℹ️ Closed while the change stream was down (live totals ₦1,500.00 (2 transactions)); database figures shown."
        );
        assert_eq!(
            Note::StreamDiffered { streamed }.to_string(),
            "⚠️ Live stream totals differed (₦1,500.00 (2 transactions)); database figures shown."
        );
        assert!(Note::Recomputed.to_string().starts_with("♻️ Recomputed: "));
        assert_eq!(
            Note::NotYetChecked { label: "Morning 2025-05-29".into() }.to_string(),
            "⚠️ Changes to Morning 2025-05-29 not yet checked against the database; the next report will."
        );
    }
}
