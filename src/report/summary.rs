//! The period summary's message (`POWER_REVENUE_SUMMARY`): the whole period's total and
//! transactions in the same lines as a report, per utility, per window, and the change from
//! the previous period. Pure; every figure comes in from the database.
//!
//! Always one message within Slack's limits: at most [`MAX_UTILITIES_SHOWN`] utility lines (the
//! rest summed), at most [`MAX_WINDOW_LINES`] window lines (consecutive windows share a line
//! when a period has more, e.g. 144 ten-minute windows are 48 lines of 30 minutes), and every
//! section packed under 3,000 characters.

use super::blocks;
use super::{
    display_name, local, period_name, time_line, totals_section, transactions, whole_minutes,
    MAX_UTILITIES_SHOWN, RULE,
};
use crate::compare::{Change, Compared};
use crate::money::format_naira;
use crate::window::{Tally, Totals, Window};
use chrono::NaiveTime;
use chrono_tz::Tz;
use serde_json::{json, Value};

pub const DAILY_TITLE: &str = "📆 Daily Revenue Summary";
/// Lines of the per-window section at most.
pub(crate) const MAX_WINDOW_LINES: usize = 48;
const WINDOWS_TITLE: &str = "🕒 Revenue by Window:";
const COMPARE_TITLE: &str = "📈 Compared with";

/// Everything a summary says, as plain values.
#[derive(Debug, Clone)]
pub struct SummaryView<'a> {
    pub period: Window,
    pub tz: Tz,
    /// The nominal period length in seconds; a day (`86400`) makes it the daily summary.
    pub length_secs: u64,
    /// The period's figures per utility.
    pub totals: &'a Totals,
    /// Each window of the period in order, with its figures now.
    pub by_window: &'a [(Window, Tally)],
    /// The period before, with its figures (`None` when its query failed).
    pub previous: &'a Compared,
}

impl SummaryView<'_> {
    fn is_daily(&self) -> bool {
        self.length_secs == 86_400
    }

    /// "📆 Daily Revenue Summary", or "📆 Revenue Summary (12h)".
    pub fn title(&self) -> String {
        if self.is_daily() {
            return DAILY_TITLE.to_owned();
        }
        let length = humantime::format_duration(std::time::Duration::from_secs(self.length_secs));
        format!("📆 Revenue Summary ({length})")
    }

    fn previous_label(&self) -> &'static str {
        if self.is_daily() {
            "previous day"
        } else {
            "previous period"
        }
    }
}

/// The webhook payload: `text` with every line, `blocks` with the same content, the last block
/// the context `Summary <period start>` (a duplicate is recognisable, as a report's `Window`).
pub fn render(view: &SummaryView<'_>) -> Value {
    let title = view.title();
    let time = time_line(&view.period, view.tz);
    let mut text = format!("{title}\n\n🕐 Time: {time}\n\n{RULE}\n\n");
    let mut blocks_out = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": blocks::clip(&title, blocks::MAX_HEADER_TEXT), "emoji": true } }),
        blocks::section(&format!("🕐 *Time:* {time}")),
        json!({ "type": "divider" }),
    ];
    if view.totals.is_empty() {
        text.push_str("📝 No transactions in this period");
        blocks_out.push(blocks::section("📝 *No transactions in this period*"));
    } else {
        totals_section(view.totals, &mut text, &mut blocks_out);
        let (title, lines) = window_lines(view.by_window, view.tz);
        text.push_str(&format!("\n\n{title}\n{}", lines.join("\n")));
        push_packed(&mut blocks_out, &format!("*{title}*"), &lines);
    }
    let lines = compare_lines(view);
    text.push_str(&format!("\n\n{COMPARE_TITLE}\n{}", lines.join("\n")));
    push_packed(&mut blocks_out, &format!("*{COMPARE_TITLE}*"), &lines);
    blocks_out.push(json!({ "type": "context", "elements": [
        { "type": "mrkdwn", "text": format!("Summary {}", view.period.id()) },
    ] }));
    json!({ "text": text, "blocks": blocks_out })
}

/// `title` and `lines` as sections of at most 3,000 characters each, one line per line.
fn push_packed(out: &mut Vec<Value>, title: &str, lines: &[String]) {
    let all: Vec<String> = std::iter::once(title.to_owned())
        .chain(lines.iter().cloned())
        .collect();
    out.extend(blocks::note_sections(&all).into_iter().map(|(b, _)| b));
}

/// The per-window section's title and lines: one per window, or per run of consecutive windows
/// when the period has more than [`MAX_WINDOW_LINES`].
fn window_lines(by_window: &[(Window, Tally)], tz: Tz) -> (String, Vec<String>) {
    let per_line = by_window.len().div_ceil(MAX_WINDOW_LINES).max(1);
    let title = if per_line == 1 {
        WINDOWS_TITLE.to_owned()
    } else {
        format!(
            "{} ({per_line} windows a line)",
            WINDOWS_TITLE.trim_end_matches(':')
        )
    };
    let with_secs = !by_window.iter().all(|(w, _)| whole_minutes(w));
    let lines = by_window
        .chunks(per_line)
        .filter_map(|run| {
            let (first, last) = (run.first()?.0, run.last()?.0);
            let span = Window {
                start: first.start,
                end: last.end,
            };
            let mut sum = Tally::default();
            for (_, t) in run {
                sum.revenue = sum.revenue.checked_add(t.revenue).unwrap_or(sum.revenue);
                sum.count = sum.count.saturating_add(t.count);
            }
            let range = clock_range(&span, tz, with_secs);
            let label = match period_name(&span, tz) {
                Some(name) => format!("{name} ({range})"),
                None => range,
            };
            Some(format!(
                "• {label}: {} ({})",
                format_naira(sum.revenue),
                transactions(sum.count)
            ))
        })
        .collect();
    (title, lines)
}

/// "06:00 – 12:00", "18:00 – 24:00" (a window ending at the next local midnight), with seconds
/// when windows are not whole minutes.
fn clock_range(w: &Window, tz: Tz, with_secs: bool) -> String {
    let fmt = if with_secs { "%H:%M:%S" } else { "%H:%M" };
    let (start, end) = (w.start.with_timezone(&tz), w.end.with_timezone(&tz));
    let ends_at_midnight = match (local(w.start, tz), local(w.end, tz)) {
        (Some(s), Some(e)) => e.date() > s.date() && e.time() == NaiveTime::MIN,
        _ => false,
    };
    let end_text = match (ends_at_midnight, with_secs) {
        (true, true) => "24:00:00".to_owned(),
        (true, false) => "24:00".to_owned(),
        (false, _) => end.format(fmt).to_string(),
    };
    format!("{} – {end_text}", start.format(fmt))
}

/// The previous period's total and the change, then per utility listed in the breakdown its
/// change against the previous period (left out when that period's figures are unknown).
fn compare_lines(view: &SummaryView<'_>) -> Vec<String> {
    let label = view.previous_label();
    let revenue = view.totals.total().revenue;
    let mut out = vec![match &view.previous.totals {
        Some(t) => {
            let before = t.total();
            format!(
                "• {}{}: {}, {} ({})",
                label[..1].to_uppercase(),
                &label[1..],
                format_naira(before.revenue),
                transactions(before.count),
                Change::between(revenue, before.revenue)
            )
        }
        None => format!("• {}{}: n/a", label[..1].to_uppercase(), &label[1..]),
    }];
    if let Some(before) = &view.previous.totals {
        out.extend(
            view.totals
                .ranked()
                .into_iter()
                .take(MAX_UTILITIES_SHOWN)
                .map(|(name, t)| {
                    let then = before
                        .by_utility
                        .get(name)
                        .map_or(rust_decimal::Decimal::ZERO, |x| x.revenue);
                    format!(
                        "• {}: {} vs {label}",
                        display_name(name),
                        Change::between(t.revenue, then)
                    )
                }),
        );
    }
    out
}
