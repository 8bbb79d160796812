//! The history as CSV (`Accept: text/csv` on `GET /api/v1/windows`): one row per window and
//! utility, `start,end,utility,revenue,count`, from each window's current figures (its report
//! plus the corrections posted since, [`crate::views::RecordView::totals`]). Written by the
//! `csv` crate (quoting, embedded commas and line breaks); what is ours is keeping names inert.
//!
//! Names are data, and a spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a
//! formula (after leading spaces too, and some locales take the full-width `＝＋－＠`): such a
//! name gets a `'` in front (the spreadsheet convention for "text"), and so
//! does a name that starts with `'` itself, so the mapping stays one-to-one: drop one leading
//! `'` to get the name back. Hidden characters (controls, bidi overrides, …) are written as
//! their escapes ([`crate::display::escaped`], also one-to-one). The JSON keeps the exact name.

use crate::views::ClosedWindowView;
use chrono::{DateTime, SecondsFormat, Utc};
use std::borrow::Cow;

pub(crate) const CONTENT_TYPE: &str = "text/csv; charset=utf-8";
const HEADER: [&str; 5] = ["start", "end", "utility", "revenue", "count"];

/// Characters that make a spreadsheet cell a formula, and the quote that marks text.
const FORMULA_STARTS: [char; 8] = ['=', '+', '-', '@', '＝', '＋', '－', '＠'];
const TEXT_MARK: char = '\'';

#[derive(Debug, thiserror::Error)]
pub(crate) enum CsvError {
    #[error("writing CSV failed: {0}")]
    Write(#[from] csv::Error),
    #[error("writing CSV failed: {0}")]
    Flush(#[from] std::io::Error),
    #[error("CSV is not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
}

/// A utility name as a CSV cell: escaped, and never a formula.
pub(crate) fn cell(name: &str) -> Cow<'_, str> {
    let name = crate::display::escaped(name);
    if name.trim_start().starts_with(FORMULA_STARTS) || name.starts_with(TEXT_MARK) {
        Cow::Owned(format!("{TEXT_MARK}{name}"))
    } else {
        name
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The CSV of `windows`, in their order; each window's utilities highest revenue first. A
/// window without sales has no row (the JSON lists it).
pub(crate) fn render(windows: &[ClosedWindowView]) -> Result<String, CsvError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(HEADER)?;
    for w in windows {
        let (start, end) = (rfc3339(w.record.start), rfc3339(w.record.end));
        for row in &w.record.totals.by_utility {
            out.write_record([
                start.as_str(),
                end.as_str(),
                &cell(&row.utility),
                &format!("{:.2}", row.tally.revenue),
                &row.tally.count.to_string(),
            ])?;
        }
    }
    let bytes = out.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_never_becomes_a_formula_and_can_be_read_back() {
        assert_eq!(cell("IKEDC"), "IKEDC");
        for (raw, shown) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1", "'+1"),
            ("-1+2", "'-1+2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("'=X", "''=X"),
            ("A=1", "A=1"),
            ("  =1+2", "'  =1+2"),
            ("＝1+2", "'＝1+2"),
            ("＠SUM(A1)", "'＠SUM(A1)"),
            ("\tX", "\\tX"),
            ("IK\u{7}EDC", "IK\\u{7}EDC"),
        ] {
            assert_eq!(cell(raw), shown, "{raw:?}");
            let back = shown.strip_prefix(TEXT_MARK).unwrap_or(shown);
            if !raw.contains(['\t', '\u{7}']) {
                assert_eq!(back, raw);
            }
        }
    }
}
