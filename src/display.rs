//! Values from the database shown to people: utility names in reports, `status`, the dashboard,
//! and document ids in logs. A name is data: whatever it holds must neither steer a terminal
//! (`ESC ]0;…BEL`, `ESC [2J`), nor start a line of its own (a newline would forge a breakdown
//! line in Slack), nor reorder or hide what is around it (bidi overrides, zero-width
//! characters).
//!
//! Only what is *shown* changes. The stored value, and the key a window's totals are kept
//! under, stay the raw name: two names that differ only in such characters are two utilities.
//! Each hidden character is shown as `�` rather than dropped, so `IKEDC` and `IKEDC\n` still
//! look different (`IKEDC`, `IKEDC�`). Two names that differ only in *which* hidden character
//! they hold (`IKEDC\n`, `IKEDC\r`) do look alike, as do names cut at [`MAX_NAME_CHARS`] and
//! homoglyphs (Cyrillic `А` for `A`): the exact name is in the JSON (`utility`, next to its
//! `display` form) and in the database.

use std::borrow::Cow;
use std::fmt::Write;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Characters of a name as shown, "…" included.
pub(crate) const MAX_NAME_CHARS: usize = 60;

/// What a hidden character is shown as.
pub(crate) const REPLACEMENT: char = '\u{FFFD}';

/// A character that would act rather than show: controls (C0, DEL, C1: terminal escapes, line
/// breaks, NEL), format characters (Unicode category Cf: bidi embeddings, overrides, isolates
/// and marks U+202A–202E, U+2066–2069, U+200E/F, U+061C; zero-width space, joiners and word
/// joiner U+200B–200D, U+2060; the BOM; soft hyphen; tag characters U+E0000–E007F, which
/// carry invisible text), and the line and paragraph separators U+2028/2029.
///
/// Zero-width joiners are hidden too: they can make two different names render the same, and
/// utility names have no use for emoji sequences (a family emoji shows as its members).
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

/// A utility name as shown anywhere a person reads it: each hidden character ([`is_hidden`])
/// replaced by [`REPLACEMENT`], then cut to [`MAX_NAME_CHARS`] characters ending in "…".
/// Borrows when the name needs neither (the common case). Markup escaping (Slack's `&<>`) is
/// the renderer's job, after this.
pub(crate) fn utility_name(raw: &str) -> Cow<'_, str> {
    let fits = raw.chars().nth(MAX_NAME_CHARS).is_none();
    if fits && !raw.chars().any(is_hidden) {
        return Cow::Borrowed(raw);
    }
    let shown = raw
        .chars()
        .map(|c| if is_hidden(c) { REPLACEMENT } else { c });
    if fits {
        return Cow::Owned(shown.collect());
    }
    let mut out: String = shown.take(MAX_NAME_CHARS - 1).collect();
    out.push('…');
    Cow::Owned(out)
}

/// `s` with each hidden character written as its Rust escape (`\n`, `\u{1b}`, `\u{202e}`) and
/// `\` doubled: nothing is lost, so two different values stay different, and none of it acts
/// on a terminal. For logs, where the exact value matters (a document id to look up).
pub fn escaped(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || is_hidden(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\\' || is_hidden(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Serialized JSON (from `serde_json`) with every hidden character written as a `\uXXXX`
/// escape. `serde_json` escapes only C0 controls; DEL, C1 (U+009B is a CSI on some terminals),
/// bidi overrides and U+2028 would reach a terminal running `curl` or `status --json` as they
/// are. Between tokens JSON holds only ASCII and its whitespace (space, `\t`, `\n`, `\r`, kept:
/// `serde_json` writes those escaped inside strings), so every other hidden character is inside
/// a string, where the escape means the same character: the document parses to the same value.
pub(crate) fn json_escape_hidden(json: &str) -> Cow<'_, str> {
    let escape = |c: char| is_hidden(c) && !matches!(c, '\t' | '\n' | '\r');
    if !json.chars().any(escape) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if escape(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests;
