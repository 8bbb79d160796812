//! The wording of a report's notes: how the stream compared with the database, and the
//! corrections for earlier windows. The outbox worker decides which notes a report carries
//! ([`Note`] holds the facts); this module alone says them.

use super::{display_name, transactions};
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
    /// An earlier window (`label`, see [`super::window_label`]) changed since it was reported:
    /// in all (`change`), and per utility whose figures moved (`by_utility`, by name).
    Correction {
        label: String,
        change: Change,
        by_utility: Vec<(String, Change)>,
    },
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
            Self::Correction {
                label,
                change,
                by_utility,
            } => {
                // "Late for" only when every utility only gained: a refund beside two late
                // sales is a correction, whatever the window's total did.
                let only_added = by_utility
                    .iter()
                    .all(|(_, c)| c.revenue >= Decimal::ZERO && c.count >= 0);
                f.write_str(&correction_line(label, *change, only_added))
            }
            Self::NotYetChecked { label } => write!(
                f,
                "⚠️ Changes to {label} not yet checked against the database; the next report will."
            ),
        }
    }
}

/// What opens a line that belongs under the note before it (a utility's share of a
/// correction): such a line follows its note directly, not after a blank line.
pub(crate) const UNDER: &str = "↳ ";

impl Note {
    /// The note as the lines a report carries: one, or for a correction its window's line and
    /// then one line per utility whose figures changed (`↳ EKEDC: +₦2,200.00, +2
    /// transactions`), so that report + corrections = the database per utility too.
    pub(crate) fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.to_string()];
        if let Self::Correction { by_utility, .. } = self {
            lines.extend(
                by_utility
                    .iter()
                    .map(|(name, change)| utility_line(name, *change)),
            );
        }
        lines
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
        Change::of(&reported.total(), &now.total())
    }

    /// Nothing changed: no correction to post.
    pub fn is_none(&self) -> bool {
        *self == Change::default()
    }

    /// Per utility whose figures differ, by name: from what the reports so far said to what
    /// the database holds now. Empty when nothing changed for any utility (a move between two
    /// utilities changes both, though the window's total stays).
    pub fn by_utility(reported: &Totals, now: &Totals) -> Vec<(String, Change)> {
        let names: std::collections::BTreeSet<&String> = reported
            .by_utility
            .keys()
            .chain(now.by_utility.keys())
            .collect();
        let zero = Tally::default();
        names
            .into_iter()
            .filter_map(|name| {
                let before = reported.by_utility.get(name).unwrap_or(&zero);
                let after = now.by_utility.get(name).unwrap_or(&zero);
                let change = Change::of(before, after);
                (!change.is_none()).then(|| (name.clone(), change))
            })
            .collect()
    }

    fn of(before: &Tally, after: &Tally) -> Change {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Change {
            revenue: after
                .revenue
                .checked_sub(before.revenue)
                .unwrap_or_default(),
            count: count(after.count).saturating_sub(count(before.count)),
        }
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

/// `+₦2,200.00` / `-₦1,500.00` / `+₦0.00`.
fn signed_naira(revenue: Decimal) -> String {
    let sign = if revenue >= Decimal::ZERO { "+" } else { "" };
    format!("{sign}{}", format_naira(revenue))
}

/// `+2` / `-1` / `0`, then " transaction(s)".
fn signed_transactions(count: i64) -> String {
    let sign = match count.cmp(&0) {
        Ordering::Less => "-",
        Ordering::Equal => "",
        Ordering::Greater => "+",
    };
    format!("{sign}{}", transactions(count.unsigned_abs()))
}

/// One utility's share of a correction, shown under its window's line, the name shown as in
/// the report's breakdown: `↳ EKEDC: +₦2,200.00, +2 transactions`.
fn utility_line(name: &str, change: Change) -> String {
    format!(
        "{UNDER}{}: {}, {}",
        display_name(name),
        signed_naira(change.revenue),
        signed_transactions(change.count)
    )
}

/// The line for a change to window `label`. Sales only added read as "Late for …: +₦…, N
/// transactions"; anything else (a refund, delete, edit or move) is a correction with a sign
/// on both figures: "Correction for …: -₦1,500.00, -1 transaction".
fn correction_line(label: &str, change: Change, only_added: bool) -> String {
    let revenue = signed_naira(change.revenue);
    if only_added && change.revenue >= Decimal::ZERO && change.count > 0 {
        return format!(
            "Late for {label}: {revenue}, {}",
            transactions(change.count.unsigned_abs())
        );
    }
    format!(
        "Correction for {label}: {revenue}, {}",
        signed_transactions(change.count)
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
            by_utility: vec![],
        }
        .to_string()
    }

    fn totals_of(rows: &[(&str, i64, u64)]) -> Totals {
        Totals {
            by_utility: rows
                .iter()
                .map(|&(name, naira, count)| (name.to_owned(), tally(naira, count)))
                .collect(),
        }
    }

    #[test]
    fn a_correction_carries_one_line_per_utility_that_changed() {
        // Reported; then a sale moved IKEDC → EKEDC, the AEDC sale refunded, a late EKEDC sale.
        let reported = totals_of(&[("IKEDC", 1500, 1), ("AEDC", 700, 1), ("EKEDC", 300, 1)]);
        let now = totals_of(&[("EKEDC", 2500, 3)]);
        let note = Note::Correction {
            label: "A".into(),
            change: Change::between(&reported, &now),
            by_utility: Change::by_utility(&reported, &now),
        };
        assert_eq!(
            note.lines(),
            [
                "Correction for A: +₦0.00, 0 transactions",
                "↳ AEDC: -₦700.00, -1 transaction",
                "↳ EKEDC: +₦2,200.00, +2 transactions",
                "↳ IKEDC: -₦1,500.00, -1 transaction",
            ]
        );
        // A refund beside two late sales: the total grew, yet it is a correction.
        let mixed = totals_of(&[("IKEDC", 1500, 1), ("EKEDC", 2300, 3)]);
        let lines = Note::Correction {
            label: "A".into(),
            change: Change::between(&reported, &mixed),
            by_utility: Change::by_utility(&reported, &mixed),
        }
        .lines();
        assert_eq!(lines[0], "Correction for A: +₦1,300.00, +1 transaction");
        // Unchanged utilities get no line; nothing changed at all, no line at all.
        let edited = totals_of(&[("IKEDC", 1750, 1), ("AEDC", 700, 1), ("EKEDC", 300, 1)]);
        assert_eq!(
            Change::by_utility(&reported, &edited),
            [(
                "IKEDC".to_owned(),
                Change {
                    revenue: Decimal::from(250),
                    count: 0
                }
            )]
        );
        assert!(Change::by_utility(&reported, &reported).is_empty());
        // Names are shown as in the breakdown: escaped, never markup.
        let hostile = totals_of(&[("<!channel> & co", 5, 1)]);
        let lines = Note::Correction {
            label: "A".into(),
            change: Change::between(&Totals::default(), &hostile),
            by_utility: Change::by_utility(&Totals::default(), &hostile),
        }
        .lines();
        assert_eq!(
            lines[1],
            "↳ &lt;!channel&gt; &amp; co: +₦5.00, +1 transaction"
        );
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
