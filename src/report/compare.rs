//! The "📈 Compared with" section of a report: the totals of the window before, the same window
//! yesterday and last week with the change to this one, then per utility shown in the
//! breakdown the change against yesterday.

use super::{display_name, MAX_UTILITIES_SHOWN};
use crate::compare::{utility_change, Change, Compared, Comparison};
use crate::money::format_naira;
use crate::window::Totals;

/// The section's lines after its title, the same in text and blocks (no mrkdwn in them
/// beyond the escaped names). At most 3 + [`MAX_UTILITIES_SHOWN`] lines of bounded length,
/// well within a section's 3000 characters.
pub(super) fn lines(c: &Comparison, now: &Totals) -> Vec<String> {
    let revenue = now.total().revenue;
    let line = |label: &str, x: &Compared| match &x.totals {
        Some(t) => {
            let before = t.total().revenue;
            format!(
                "• {label}: {} ({})",
                format_naira(before),
                Change::between(revenue, before)
            )
        }
        None => format!("• {label}: n/a"),
    };
    let mut out = vec![
        line("Previous window", &c.previous),
        line("Same window yesterday", &c.yesterday),
        line("Same window last week", &c.last_week),
    ];
    if c.yesterday.totals.is_some() {
        out.extend(
            now.ranked()
                .into_iter()
                .take(MAX_UTILITIES_SHOWN)
                .map(|(name, t)| {
                    format!(
                        "• {}: {} vs yesterday",
                        display_name(name),
                        utility_change(c, name, t.revenue)
                    )
                }),
        );
    }
    out
}

pub(super) const TITLE: &str = "📈 Compared with";
