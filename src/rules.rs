//! What counts as a sale, written twice: in Rust for change events ([`classify`]) and as
//! aggregation expressions for the reconciliation `$facet` ([`amount_expr`], [`utility_expr`]).
//!
//! The two must agree to the kobo; keep them side by side and change them together.
//! `tests/it/rules_agree.rs` inserts random documents and compares both.

use crate::config::Fields;
use crate::money::{self, Rejection};
use bson::{doc, Bson, Document, RawBsonRef, RawDocument};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::borrow::Cow;

/// Accepted amount strings: optional `₦`/`NGN`, digits with well-formed thousands groups,
/// at most 20 fraction digits (so the server's 34-digit Decimal128 stays exact). ASCII classes
/// only: `\d`/`\s` mean different things in Rust, PCRE and Python.
pub(crate) const AMOUNT_PATTERN: &str = r"^[ \t\r\n]*(?:₦|NGN)?[ \t\r\n]*([0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.([0-9]{1,20}))?[ \t\r\n]*$";

/// Characters trimmed from utility names (explicit, because the server's default set differs).
pub(crate) const TRIM_CHARS: &str = " \t\r\n";

/// Utility name for sales with a missing, empty or non-string utility.
pub(crate) const UNKNOWN_UTILITY: &str = "UNKNOWN";

/// A sale that counts: when, for which utility, how much. The utility borrows from the
/// document when it is already in normal form (the common case: no allocation per event).
#[derive(Debug, Clone, PartialEq)]
pub struct Sale<'a> {
    /// When, in Unix milliseconds (always within `DateTime<Utc>`'s range: see [`Sale::at`]).
    pub at_ms: i64,
    pub utility: Cow<'a, str>,
    pub amount: Decimal,
}

impl Sale<'_> {
    pub fn at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.at_ms).expect("classify checked the range")
    }
}

/// Why a document does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    Amount(Rejection),
    TimeNotDate,
    /// Dated further ahead than `POWER_REVENUE_MAX_FUTURE`.
    TimeInFuture,
    NoDocument,
    /// Adding it would overflow its window's total (no real sale can).
    TotalOverflow,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Amount(r) => r.as_str(),
            Self::TimeNotDate => "time_not_date",
            Self::TimeInFuture => "time_in_future",
            Self::NoDocument => "document_gone",
            Self::TotalOverflow => "total_overflow",
        }
    }
}

/// Applies the rules to one sale document (already known to be fulfilled).
pub fn classify<'a>(doc: &'a RawDocument, fields: &Fields) -> Result<Sale<'a>, SkipReason> {
    classify_at(doc, &Paths::new(fields))
}

/// [`classify`] with the field paths split once, for the per-event hot path.
pub fn classify_at<'a>(doc: &'a RawDocument, paths: &Paths) -> Result<Sale<'a>, SkipReason> {
    let [time, amount, utility] = lookup3(doc, paths);
    classify_values(time, amount, utility)
}

/// The rules for the time, amount and utility values of a fulfilled sale.
pub(crate) fn classify_values<'a>(
    time: Option<RawBsonRef<'a>>,
    amount: Option<RawBsonRef<'a>>,
    utility: Option<RawBsonRef<'a>>,
) -> Result<Sale<'a>, SkipReason> {
    let at_ms = match time {
        // The range check `DateTime::from_timestamp_millis` makes, without the calendar
        // arithmetic (the window is found from the milliseconds). An array is not a date.
        Some(RawBsonRef::DateTime(dt)) if MILLIS_RANGE.contains(&dt.timestamp_millis()) => {
            dt.timestamp_millis()
        }
        _ => return Err(SkipReason::TimeNotDate),
    };
    let amount = parse_amount(amount).map_err(SkipReason::Amount)?;
    let utility = normalize_utility(utility);
    Ok(Sale {
        at_ms,
        utility,
        amount,
    })
}

/// The milliseconds a `DateTime<Utc>` can hold.
const MILLIS_RANGE: std::ops::RangeInclusive<i64> =
    DateTime::<Utc>::MIN_UTC.timestamp_millis()..=DateTime::<Utc>::MAX_UTC.timestamp_millis();

/// The time, amount, utility and status field paths, each split at its first dot.
#[derive(Debug, Clone)]
pub struct Paths {
    heads: [String; 4],
    tails: [Option<String>; 4],
    /// The whole paths, for matching an update's field names (which may be dotted).
    full: [String; 4],
}

impl Paths {
    /// Time, amount, utility and status, as configured.
    pub fn full(&self) -> &[String; 4] {
        &self.full
    }

    pub fn new(fields: &Fields) -> Paths {
        let split = |p: &String| match p.split_once('.') {
            Some((head, tail)) => (head.to_owned(), Some(tail.to_owned())),
            None => (p.clone(), None),
        };
        let full = [
            &fields.time,
            &fields.amount,
            &fields.utility,
            &fields.status,
        ]
        .map(|f| f.clone());
        let [t, a, u, s] = full.each_ref().map(split);
        Paths {
            heads: [t.0, a.0, u.0, s.0],
            tails: [t.1, a.1, u.1, s.1],
            full,
        }
    }
}

/// The amount rule for one BSON value.
pub fn parse_amount(value: Option<RawBsonRef<'_>>) -> Result<Decimal, Rejection> {
    match value {
        None | Some(RawBsonRef::Null) => Err(Rejection::Missing),
        Some(RawBsonRef::Int32(n)) => money::from_i64(n.into()),
        Some(RawBsonRef::Int64(n)) => money::from_i64(n),
        Some(RawBsonRef::Double(x)) => money::from_f64(x),
        Some(RawBsonRef::Decimal128(d)) => money::from_decimal128(&d),
        Some(RawBsonRef::String(s)) => parse_amount_str(s),
        Some(_) => Err(Rejection::WrongType),
    }
}

pub fn parse_amount_str(s: &str) -> Result<Decimal, Rejection> {
    let (int_part, frac_part) = scan_amount(s).ok_or(Rejection::Unparseable)?;
    money::from_captures(int_part, frac_part)
}

/// [`AMOUNT_PATTERN`] matched byte by byte: its two captures, or `None`. The regex is the
/// specification (the server runs it); this is the hot path, several times faster, and a
/// property test proves the two accept the same strings and capture the same parts.
pub(crate) fn scan_amount(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let ws = |i: &mut usize| {
        while b
            .get(*i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
        {
            *i += 1;
        }
    };
    let mut i = 0;
    ws(&mut i);
    if b[i..].starts_with("₦".as_bytes()) || b[i..].starts_with(b"NGN") {
        i += 3; // both are three bytes
    }
    ws(&mut i);
    let int_start = i;
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b',') {
        i += 1;
    }
    let int_part = &s[int_start..i];
    let grouped = int_part.bytes().any(|c| c == b',');
    let mut groups = int_part.split(',');
    let first = groups.next().unwrap_or("");
    let well_formed = if grouped {
        (1..=3).contains(&first.len()) && groups.all(|g| g.len() == 3)
    } else {
        !first.is_empty()
    };
    if !well_formed {
        return None;
    }
    let mut frac_part = "";
    if b.get(i) == Some(&b'.') {
        let frac_start = i + 1;
        i = frac_start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        frac_part = &s[frac_start..i];
        if !(1..=20).contains(&frac_part.len()) {
            return None;
        }
    }
    ws(&mut i);
    (i == b.len()).then_some((int_part, frac_part))
}

/// [`AMOUNT_PATTERN`]'s captures by the regex itself (the reference for [`scan_amount`]).
#[cfg(test)]
fn regex_amount(s: &str) -> Option<(&str, &str)> {
    static AMOUNT_RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(AMOUNT_PATTERN).expect("AMOUNT_PATTERN is a valid regex")
    });
    let caps = AMOUNT_RE.captures(s)?;
    let int_part = caps.get(1).map_or("", |m| m.as_str());
    let frac_part = caps.get(2).map_or("", |m| m.as_str());
    Some((int_part, frac_part))
}

/// The utility rule: trimmed, ASCII upper-cased (as the server's `$toUpper`), else `UNKNOWN`.
pub(crate) fn normalize_utility(value: Option<RawBsonRef<'_>>) -> Cow<'_, str> {
    match value {
        Some(RawBsonRef::String(s)) => {
            let t = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n')); // TRIM_CHARS
            if t.is_empty() {
                Cow::Borrowed(UNKNOWN_UTILITY)
            } else if t.bytes().any(|c| c.is_ascii_lowercase()) {
                Cow::Owned(t.to_ascii_uppercase())
            } else {
                Cow::Borrowed(t)
            }
        }
        _ => Cow::Borrowed(UNKNOWN_UTILITY),
    }
}

/// The time, amount and utility paths looked up in one pass over the document (the hot path:
/// each `get` would walk the elements again).
fn lookup3<'a>(doc: &'a RawDocument, paths: &Paths) -> [Option<RawBsonRef<'a>>; 3] {
    let [t, a, u, _] = lookup4(doc, paths);
    [t, a, u]
}

/// All four paths (time, amount, utility, status) in one pass.
pub(crate) fn lookup4<'a>(doc: &'a RawDocument, paths: &Paths) -> [Option<RawBsonRef<'a>>; 4] {
    let found = crate::raw::find(doc, [0, 1, 2, 3].map(|i| paths.heads[i].as_str()));
    let mut out = [None; 4];
    for ((slot, value), tail) in out.iter_mut().zip(found).zip(&paths.tails) {
        *slot = match (value, tail) {
            (v, None) => v,
            (Some(RawBsonRef::Document(d)), Some(t)) => lookup(d, t),
            _ => None,
        };
    }
    out
}

/// Follows a dotted field path through embedded documents.
pub(crate) fn lookup<'a>(doc: &'a RawDocument, path: &str) -> Option<RawBsonRef<'a>> {
    let mut parts = path.split('.');
    let mut value = doc.get(parts.next()?).ok()??;
    for part in parts {
        value = match value {
            RawBsonRef::Document(d) => d.get(part).ok()??,
            _ => return None,
        };
    }
    Some(value)
}

/// Server twin of [`parse_amount`]: a Decimal128 rounded to the kobo, or `null`.
pub(crate) fn amount_expr(field: &str) -> Bson {
    let value = format!("${field}");
    let in_range = |x: &str| {
        doc! { "$and": [ { "$gte": [x, 0] }, { "$lte": [x, Bson::Decimal128(max_amount_d128())] } ] }
    };
    let string_value = doc! { "$let": {
        "vars": { "m": { "$regexFind": { "input": "$$a", "regex": AMOUNT_PATTERN } } },
        "in": { "$cond": [ { "$eq": [ { "$ifNull": ["$$m", null] }, null ] }, null,
            { "$toDecimal": { "$concat": [
                { "$replaceAll": { "input": { "$arrayElemAt": ["$$m.captures", 0] }, "find": ",", "replacement": "" } },
                ".",
                { "$ifNull": [ { "$arrayElemAt": ["$$m.captures", 1] }, "0" ] },
            ] } } ] },
    } };
    doc! { "$let": {
        "vars": { "a": value },
        "in": { "$let": {
            "vars": { "d": { "$switch": { "branches": [
                { "case": { "$in": [ { "$type": "$$a" }, ["int", "long", "double", "decimal"] ] },
                  "then": { "$toDecimal": "$$a" } },
                { "case": { "$eq": [ { "$type": "$$a" }, "string" ] }, "then": string_value },
            ], "default": null } } },
            "in": { "$cond": [ in_range("$$d"), { "$round": ["$$d", 2] }, null ] },
        } },
    } }
    .into()
}

/// Server twin of [`normalize_utility`].
pub(crate) fn utility_expr(field: &str) -> Bson {
    doc! { "$let": {
        "vars": { "u": { "$cond": [
            { "$eq": [ { "$type": format!("${field}") }, "string" ] },
            { "$toUpper": { "$trim": { "input": format!("${field}"), "chars": TRIM_CHARS } } },
            "",
        ] } },
        "in": { "$cond": [ { "$eq": ["$$u", ""] }, UNKNOWN_UTILITY, "$$u" ] },
    } }
    .into()
}

/// `$match` for fulfilled sales whose time lies in `[start, end)`.
pub(crate) fn window_match(
    fields: &Fields,
    fulfilled: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Document {
    // An array matches a query on its elements (each bound may match a different one), so
    // arrays are excluded explicitly: the stream's rules count neither as a date or a status.
    doc! {
        fields.status.as_str(): { "$eq": fulfilled, "$not": { "$type": "array" } },
        fields.time.as_str(): {
            "$gte": bson::DateTime::from_chrono(start),
            "$lt": bson::DateTime::from_chrono(end),
            "$not": { "$type": "array" },
        },
    }
}

fn max_amount_d128() -> bson::Decimal128 {
    money::MAX_AMOUNT
        .to_string()
        .parse()
        .expect("MAX_AMOUNT is a valid Decimal128")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn amt(s: &str) -> Result<Decimal, Rejection> {
        parse_amount_str(s)
    }

    #[test]
    fn amount_strings() {
        let d = |s| Ok(Decimal::from_str(s).unwrap());
        assert_eq!(amt("1500.50"), d("1500.50"));
        assert_eq!(amt(" 2,500 "), d("2500"));
        assert_eq!(amt("₦1,500.50"), d("1500.50"));
        assert_eq!(amt("NGN 700"), d("700"));
        assert_eq!(amt("0.125"), d("0.12"));
        for bad in [
            "abc", "1,2,3", "--5", "-5", "", "1e3", "NaN", "inf", "1_000", "12,34", ".5", "5.",
            "１２",
        ] {
            assert_eq!(amt(bad), Err(Rejection::Unparseable), "{bad:?}");
        }
        assert_eq!(amt(&"9".repeat(40)), Err(Rejection::TooLarge));
        assert_eq!(
            amt(&format!("1.{}", "1".repeat(21))),
            Err(Rejection::Unparseable)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        /// The hand scanner is the regex, on strings built from the characters that matter.
        #[test]
        fn scanner_is_the_regex(s in "[0-9,. \t\r\n₦NGxe+-]{0,24}") {
            proptest::prop_assert_eq!(scan_amount(&s), regex_amount(&s));
        }

        #[test]
        fn scanner_is_the_regex_on_near_misses(
            pre in "[ \t]{0,2}(₦|NGN|N|₦₦)?[ \n]{0,2}",
            int in "[0-9]{0,4}(,[0-9]{1,4}){0,3}",
            frac in "(\\.[0-9]{0,22})?",
            post in "[ \r\n]{0,2}[.,x]?",
        ) {
            let s = format!("{pre}{int}{frac}{post}");
            proptest::prop_assert_eq!(scan_amount(&s), regex_amount(&s));
        }
    }

    #[test]
    fn utilities() {
        let u = |s: &str| normalize_utility(Some(RawBsonRef::String(s))).into_owned();
        assert_eq!(u(" ikedc\t"), "IKEDC");
        assert_eq!(u("   "), UNKNOWN_UTILITY);
        assert_eq!(u("ikédc"), "IKéDC");
        assert_eq!(normalize_utility(None), UNKNOWN_UTILITY);
        assert_eq!(
            normalize_utility(Some(RawBsonRef::Int32(3))),
            UNKNOWN_UTILITY
        );
    }

    #[test]
    fn classify_reads_dotted_paths_and_types() {
        let fields = Fields {
            time: "meta.at".into(),
            amount: "amount".into(),
            utility: "utility".into(),
            status: "status".into(),
        };
        let now = bson::DateTime::from_millis(1_748_520_000_000);
        let doc = bson::rawdoc! { "meta": { "at": now }, "amount": "₦1,000", "utility": "aedc" };
        let sale = classify(&doc, &fields).unwrap();
        assert_eq!(sale.utility, "AEDC");
        assert_eq!(sale.amount, Decimal::from(1000));
        let doc = bson::rawdoc! { "meta": { "at": "2025-05-29" }, "amount": 1 };
        assert_eq!(classify(&doc, &fields), Err(SkipReason::TimeNotDate));
        let doc = bson::rawdoc! { "meta": { "at": now }, "amount": true };
        assert_eq!(
            classify(&doc, &fields),
            Err(SkipReason::Amount(Rejection::WrongType))
        );
    }
}
