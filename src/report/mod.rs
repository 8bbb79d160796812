//! Reports: the Slack message for a closed window, rendered from plain values (pure), and the
//! webhook client ([`slack`]). `text` keeps the Lambda's plain-text layout line for line
//! (phones and scripts read it); `blocks` carry the same content for Slack's richer view.
//! Every word the service posts is worded here: the report, its notes and corrections
//! ([`notes`]) and the error alerts ([`alerts`]).

pub mod alerts;
pub mod blocks;
mod compare;
pub mod notes;
pub mod summary;

use crate::compare::Comparison;
use crate::display;
use crate::money::format_naira;
use crate::window::{Tally, Totals, Window};
use blocks::Head;
use chrono::{DateTime, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

const TITLE: &str = "⚡ Power Transaction Revenue Report";
const RULE: &str = "━━━━━━━━━━━━━━━━━━━━";
/// Utilities listed by name; the rest are summed into one "…and N more" line. Keeps the
/// breakdown section well under Slack's 3000-character limit.
pub(crate) const MAX_UTILITIES_SHOWN: usize = 20;
/// Characters of a utility name as shown: escaped, "…" included.
const MAX_NAME_CHARS: usize = display::MAX_NAME_CHARS;

/// Everything a report says, as plain values.
#[derive(Debug, Clone)]
pub struct ReportView<'a> {
    pub window: Window,
    pub tz: Tz,
    /// The figures to post: the database's, or the stream's when not reconciled.
    pub totals: &'a Totals,
    /// Context lines: reconciliation notes, late sales.
    pub notes: Vec<String>,
    /// The figures of the windows compared with; `None` leaves the section out.
    pub compared: Option<&'a Comparison>,
}

/// The webhook payload as one message: `{"text": …, "blocks": […]}`. `text` carries every note;
/// `blocks` stay within Slack's limits (notes past 50 blocks are summed up in a "…N more lines
/// in the text" line). With many notes `text` can pass Slack's 40,000 characters: to post, use
/// [`render_parts`].
pub(crate) fn render(view: &ReportView<'_>) -> Value {
    blocks::message(head(view), &view.notes, &view.window.id().to_string(), None)
}

/// The payloads to post, in order: one, or when the notes make the text too long for one
/// message, the report with the notes that fit and follow-ups with the rest. Each is within
/// all of Slack's limits.
pub fn render_parts(view: &ReportView<'_>) -> Vec<Value> {
    blocks::parts(head(view), &view.notes, &view.window.id().to_string())
}

/// The report without its notes.
fn head(view: &ReportView<'_>) -> Head {
    let (period, time) = (
        period_line(&view.window, view.tz),
        time_line(&view.window, view.tz),
    );
    let mut text = format!("{TITLE}\n\n📅 Period: {period}\n🕐 Time: {time}\n\n{RULE}\n\n");
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": TITLE, "emoji": true } }),
        blocks::section(&format!("📅 *Period:* {period}\n🕐 *Time:* {time}")),
        json!({ "type": "divider" }),
    ];
    if view.totals.is_empty() {
        text.push_str("📝 No new transactions yet\n\nNo power transactions were processed during this period.");
        blocks.push(blocks::section(
            "📝 *No new transactions yet*\nNo power transactions were processed during this period.",
        ));
    } else {
        totals_section(view.totals, &mut text, &mut blocks);
    }
    if let Some(c) = view.compared {
        // After everything the seed says, so its lines (and scripts reading them) stay put.
        let lines = compare::lines(c, view.totals).join("\n");
        text.push_str(&format!("\n\n{}\n{lines}", compare::TITLE));
        blocks.push(blocks::section(&format!("*{}*\n{lines}", compare::TITLE)));
    }
    Head { text, blocks }
}

/// The seed's total, transactions and per-utility breakdown, in text and blocks: the same
/// lines in a report and a summary.
fn totals_section(totals: &Totals, text: &mut String, out: &mut Vec<Value>) {
    let total = totals.total();
    let lines = breakdown_lines(totals);
    text.push_str(&format!(
        "💰 Total Revenue Generated:\n{}\n\n📊 Total Transactions: {}\n\n{RULE}\n\n🏢 Revenue Breakdown by Utility:\n{}",
        format_naira(total.revenue),
        total.count,
        lines.join("\n")
    ));
    out.push(json!({ "type": "section", "fields": [
        blocks::field(&format!("*💰 Total Revenue Generated:*\n{}", format_naira(total.revenue))),
        blocks::field(&format!("*📊 Total Transactions:*\n{}", total.count)),
    ] }));
    out.push(json!({ "type": "divider" }));
    out.push(blocks::section(&format!(
        "*🏢 Revenue Breakdown by Utility:*\n{}",
        lines.join("\n")
    )));
}

fn breakdown_lines(totals: &Totals) -> Vec<String> {
    let ranked = totals.ranked();
    let mut lines: Vec<String> = ranked
        .iter()
        .take(MAX_UTILITIES_SHOWN)
        .map(|(name, t)| {
            format!(
                "• {}: {} ({})",
                display_name(name),
                format_naira(t.revenue),
                transactions(t.count)
            )
        })
        .collect();
    if ranked.len() > MAX_UTILITIES_SHOWN {
        let mut rest = Tally::default();
        for (_, t) in &ranked[MAX_UTILITIES_SHOWN..] {
            rest.revenue += t.revenue;
            rest.count += t.count;
        }
        lines.push(format!(
            "• …and {} more: {} ({})",
            ranked.len() - MAX_UTILITIES_SHOWN,
            format_naira(rest.revenue),
            transactions(rest.count)
        ));
    }
    lines
}

pub fn transactions(n: u64) -> String {
    if n == 1 {
        "1 transaction".into()
    } else {
        format!("{n} transactions")
    }
}

/// Utility names come from the data: made inert first ([`display::utility_name`]: no line
/// breaks, terminal or bidi controls, so a name cannot forge a breakdown line), then Slack's
/// control characters escaped so it cannot ping `<!channel>` or `<@U…>` or open a link, then
/// cut to [`MAX_NAME_CHARS`]. Escaping before cutting, by whole characters or entities, keeps
/// the name within the limit (a name of `&`s grows fivefold when escaped) and never leaves
/// half an entity. Emphasis (`*bold*`, `_x_`) has no escape in Slack's mrkdwn and may render;
/// it can style a name but not add a line.
fn display_name(name: &str) -> String {
    let pieces: Vec<String> = display::utility_name(name)
        .chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            c => c.to_string(),
        })
        .collect();
    let len = |p: &String| p.chars().count();
    if pieces.iter().map(len).sum::<usize>() <= MAX_NAME_CHARS {
        return pieces.concat();
    }
    let mut out = String::new();
    let mut used = 1; // the "…"
    for p in &pieces {
        used += len(p);
        if used > MAX_NAME_CHARS {
            break;
        }
        out.push_str(p);
    }
    out.push('…');
    out
}

/// "Afternoon Period (12:00 PM – 6:00 PM)" for the day's four 6-hour stretches of wall clock,
/// else the clock range.
pub(crate) fn period_line(w: &Window, tz: Tz) -> String {
    let (start, end) = (w.start.with_timezone(&tz), w.end.with_timezone(&tz));
    let with_secs = !whole_minutes(w);
    let range = format!(
        "{} – {}",
        clock12(&start, with_secs),
        clock12(&end, with_secs)
    );
    match period_name(w, tz) {
        Some(name) => format!("{name} Period ({range})"),
        None => range,
    }
}

/// The name of a window that covers exactly one of the day's 6-hour stretches of wall clock
/// (00:00–06:00 is "Night", …). Decided on the clock, not on elapsed time: across a DST change
/// the stretch lasts 5 or 7 hours and must keep its name. A bound that ends a skipped stretch
/// of clock stands for every reading in it (the 00:00 of a day that starts at 01:00).
fn period_name(w: &Window, tz: Tz) -> Option<&'static str> {
    let (start_from, start) = readings(w.start, tz)?;
    let (end_from, end) = readings(w.end, tz)?;
    let mark = start.date().and_hms_opt(start.hour() / 6 * 6, 0, 0)?;
    let mark_end = mark.checked_add_signed(TimeDelta::hours(6))?;
    // mark_end is midnight of the next day when the window ends at 24:00.
    if mark < start_from || !(end_from <= mark_end && mark_end <= end) {
        return None;
    }
    Some(match start.hour() {
        0..=5 => "Night",
        6..=11 => "Morning",
        12..=17 => "Afternoon",
        _ => "Evening",
    })
}

/// The wall-clock readings instant `t` stands for as a window bound: from the first reading a
/// gap just skipped (if `t` ends one) to its own. `None` within a day of chrono's range ends,
/// where the local reading cannot be represented.
fn readings(t: DateTime<Utc>, tz: Tz) -> Option<(NaiveDateTime, NaiveDateTime)> {
    let own = local(t, tz)?;
    let skipped_from = t
        .checked_sub_signed(TimeDelta::nanoseconds(1))
        .map(|before| tz.offset_from_utc_datetime(&before.naive_utc()).fix())
        .and_then(|offset| t.naive_utc().checked_add_offset(offset));
    // Before a repeated stretch the old offset reads later than the new one: not a gap.
    Some((skipped_from.map_or(own, |r| r.min(own)), own))
}

fn local(t: DateTime<Utc>, tz: Tz) -> Option<NaiveDateTime> {
    t.naive_utc()
        .checked_add_offset(tz.offset_from_utc_datetime(&t.naive_utc()).fix())
}

/// "Morning 2025-05-29" for 6 h windows, else "10:20 – 10:30 2025-05-29": names a window in
/// one short phrase (late-sale corrections).
pub fn window_label(w: &Window, tz: Tz) -> String {
    let period = period_line(w, tz);
    let date = w.start.with_timezone(&tz).format("%Y-%m-%d");
    match period.split_once(" Period") {
        Some((name, _)) => format!("{name} {date}"),
        None => format!("{period} {date}"),
    }
}

/// "12:00 – 18:00 UTC on 2025-05-29"; the last window of a day ends at 24:00. When the zone's
/// abbreviation changes inside the window (DST), both are shown:
/// "00:00 EDT – 06:00 EST on 2025-11-02".
pub fn time_line(w: &Window, tz: Tz) -> String {
    let (start, end) = (w.start.with_timezone(&tz), w.end.with_timezone(&tz));
    let fmt = if whole_minutes(w) {
        "%H:%M"
    } else {
        "%H:%M:%S"
    };
    let ends_at_midnight = match (local(w.start, tz), local(w.end, tz)) {
        (Some(s), Some(e)) => e.date() > s.date() && e.time() == NaiveTime::MIN,
        _ => false,
    };
    let end_text = if ends_at_midnight {
        if whole_minutes(w) {
            "24:00".to_owned()
        } else {
            "24:00:00".to_owned()
        }
    } else {
        end.format(fmt).to_string()
    };
    let (start_zone, end_zone) = (start.format("%Z").to_string(), end.format("%Z").to_string());
    let date = start.format("%Y-%m-%d");
    if start_zone == end_zone {
        format!("{} – {end_text} {start_zone} on {date}", start.format(fmt))
    } else {
        format!(
            "{} {start_zone} – {end_text} {end_zone} on {date}",
            start.format(fmt)
        )
    }
}

fn whole_minutes(w: &Window) -> bool {
    w.start.timestamp() % 60 == 0 && w.end.timestamp() % 60 == 0
}

fn clock12(t: &DateTime<Tz>, with_secs: bool) -> String {
    if with_secs {
        t.format("%-I:%M:%S %p").to_string()
    } else {
        t.format("%-I:%M %p").to_string()
    }
}

#[cfg(test)]
mod tests;
