//! Fitting a report into Slack's limits: note lines grouped into sections, blocks capped, and
//! a report too long for one message split into parts. Slack refuses (not truncates) a message
//! that breaks a Block Kit limit, and a refused report is never shown, so every payload built
//! here stays within all of them whatever the notes hold.

use serde_json::{json, Value};

/// Blocks per message.
pub(crate) const MAX_BLOCKS: usize = 50;
/// Elements per context block.
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// Characters in a section's text.
pub(crate) const MAX_SECTION_TEXT: usize = 3000;
/// Characters in one section field.
pub(crate) const MAX_FIELD_TEXT: usize = 2000;
/// Characters in a header's text.
pub const MAX_HEADER_TEXT: usize = 150;
/// Characters in a message's top-level `text`.
pub(crate) const MAX_TEXT: usize = 40_000;
/// Room kept in a part's text for its "part k of n" line, whose length is known only once the
/// parts are counted.
const PART_LINE_RESERVE: usize = 120;
/// A single note longer than this is cut: it could never share a message with the report.
const MAX_NOTE: usize = 30_000;

/// Length as Slack may count it. Slack says "characters"; UTF-16 units are never fewer than
/// chars (emoji count two), so a budget that holds in these holds either way.
pub(crate) fn slack_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `s` cut on a char boundary so that it is at most `max` long, ending in "…" when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if slack_len(s) <= max {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 1; // the "…"
    for c in s.chars() {
        used += c.len_utf16();
        if used > max {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// A section block of mrkdwn text, cut to the section limit (a safety net: callers keep their
/// text well below it).
pub fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT) } })
}

/// A section field of mrkdwn text, cut to the field limit.
pub fn field(text: &str) -> Value {
    json!({ "type": "mrkdwn", "text": clip(text, MAX_FIELD_TEXT) })
}

/// The part of a message that is not notes: the report itself, or a continuation line.
#[derive(Clone)]
pub struct Head {
    pub text: String,
    pub blocks: Vec<Value>,
}

/// One payload: `head`, then each note on a line of its own in `text` (as the Lambda did) and
/// grouped into sections in `blocks`, then `closing` (in both), then the context block whose
/// one element is `Window <id>` (scripts find a report's window there).
pub fn message(head: Head, notes: &[String], window: &str, closing: Option<&str>) -> Value {
    let Head {
        mut text,
        mut blocks,
    } = head;
    for note in notes.iter().map(String::as_str).chain(closing) {
        // A utility's share of a correction sits right under its window's line.
        text.push_str(if note.starts_with(super::notes::UNDER) {
            "\n"
        } else {
            "\n\n"
        });
        text.push_str(note);
    }
    let mut sections = note_sections(notes);
    // The context block and the closing line take one each; a cut one more for its line.
    let room = MAX_BLOCKS.saturating_sub(blocks.len() + 1 + usize::from(closing.is_some()));
    if sections.len() > room {
        sections.truncate(room.saturating_sub(1));
        let shown: usize = sections.iter().map(|(_, n)| n).sum();
        let more = notes.len() - shown;
        sections.push((section(&format!("…{more} more lines in the text")), more));
    }
    blocks.extend(sections.into_iter().map(|(block, _)| block));
    blocks.extend(closing.map(section));
    blocks.push(json!({ "type": "context", "elements": [
        { "type": "mrkdwn", "text": format!("Window {window}") },
    ] }));
    json!({ "text": text, "blocks": blocks })
}

/// Notes packed greedily into sections of at most [`MAX_SECTION_TEXT`], one line each, with
/// how many notes each holds.
pub(crate) fn note_sections(notes: &[String]) -> Vec<(Value, usize)> {
    let mut out = vec![];
    let mut current = String::new();
    let mut count = 0;
    for note in notes {
        let note = clip(note, MAX_SECTION_TEXT);
        if count > 0 && slack_len(&current) + 1 + slack_len(&note) > MAX_SECTION_TEXT {
            out.push((section(&current), count));
            current.clear();
            count = 0;
        }
        if count > 0 {
            current.push('\n');
        }
        current.push_str(&note);
        count += 1;
    }
    if count > 0 {
        out.push((section(&current), count));
    }
    out
}

/// The report as one message or, when its text would pass [`MAX_TEXT`], as several: the first
/// carries the report and as many notes as fit, each follow-up opens with "(continued) Window
/// <id>, part k of n" and carries the next notes. Notes keep their order and each is in
/// exactly one part.
pub fn parts(report: Head, notes: &[String], window: &str) -> Vec<Value> {
    let notes: Vec<String> = notes.iter().map(|n| clip(n, MAX_NOTE)).collect();
    let head_len = slack_len(&report.text);
    let cost = |n: &String| 2 + slack_len(n);
    if head_len + notes.iter().map(cost).sum::<usize>() <= MAX_TEXT {
        return vec![message(report, &notes, window, None)];
    }
    // Ranges of notes per part; the first part's budget is what the report leaves.
    let mut ranges = vec![];
    let (mut start, mut used) = (0, head_len + PART_LINE_RESERVE);
    for (i, note) in notes.iter().enumerate() {
        if used + cost(note) > MAX_TEXT {
            ranges.push(start..i);
            (start, used) = (i, PART_LINE_RESERVE);
        }
        used += cost(note);
    }
    ranges.push(start..notes.len());
    let n = ranges.len();
    ranges
        .into_iter()
        .enumerate()
        .map(|(i, range)| {
            let k = i + 1;
            if k == 1 {
                // Said in the text too: notifications show only the text.
                let closing = format!("➡️ Continued in {} more message(s).", n - 1);
                return message(report.clone(), &notes[range], window, Some(&closing));
            }
            let line = format!("(continued) Window {window}, part {k} of {n}");
            let head = Head {
                blocks: vec![section(&format!("_{line}_"))],
                text: line,
            };
            message(head, &notes[range], window, None)
        })
        .collect()
}
