//! Parsing, negotiation, paging and the CSV of the history, without a listener.

use super::*;
use crate::store::{Messages, Reconciled, ReportRecord, Settlement, Source, Told};
use crate::window::{ClosedBy, OpenWindow, Totals, Window};
use rust_decimal::Decimal;

fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn last_keeps_working_and_a_range_is_half_open_and_bounded() {
    assert_eq!(Selection::parse(&query(&[])), Ok(Selection::Last(10)));
    assert_eq!(
        Selection::parse(&query(&[("last", "3")])),
        Ok(Selection::Last(3))
    );
    assert_eq!(
        Selection::parse(&query(&[
            ("from", "2025-05-29T01:00:00+01:00"),
            ("to", "2025-05-30T00:00:00Z")
        ])),
        Ok(Selection::Range(Range {
            from: Some(at("2025-05-29T00:00:00Z")),
            to: Some(at("2025-05-30T00:00:00Z")),
            limit: DEFAULT_LIMIT,
        }))
    );
    assert_eq!(
        Selection::parse(&query(&[("limit", "1000")])),
        Ok(Selection::Range(Range {
            from: None,
            to: None,
            limit: MAX_LIMIT,
        }))
    );
    for (pairs, error) in [
        (&[("last", "zero")][..], QueryError::Last),
        (&[("last", "1001")], QueryError::Last),
        (&[("from", "yesterday")], QueryError::From),
        (&[("from", "2025-05-29")], QueryError::From),
        (&[("to", "2025-05-29T00:00:00")], QueryError::To),
        (
            &[
                ("from", "2025-05-29T00:00:00Z"),
                ("to", "2025-05-29T00:00:00Z"),
            ],
            QueryError::Empty,
        ),
        (&[("limit", "0")], QueryError::Limit),
        (&[("limit", "1001")], QueryError::Limit),
        (&[("limit", "-1")], QueryError::Limit),
        (
            &[("last", "3"), ("from", "2025-05-29T00:00:00Z")],
            QueryError::Mixed,
        ),
    ] {
        assert_eq!(Selection::parse(&query(pairs)), Err(error), "{pairs:?}");
        let line = error.to_string();
        assert!(!line.contains('\n') && !line.is_empty(), "{line}");
    }
}

#[test]
fn a_page_names_where_the_next_one_starts() {
    let range = Range {
        from: Some(at("2025-05-29T00:00:00Z")),
        to: Some(at("2025-05-30T00:00:00+00:00")),
        limit: 2,
    };
    let hours =
        |n: u32| (0..n).map(|h| at("2025-05-29T00:00:00Z") + chrono::TimeDelta::hours(h.into()));
    let page = range.page(hours(3).collect(), |t| *t);
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.next_from, Some(at("2025-05-29T02:00:00Z")));
    assert_eq!(
        range.next_url(page.next_from.unwrap()),
        "/api/v1/windows?from=2025-05-29T02%3A00%3A00Z&to=2025-05-30T00%3A00%3A00Z&limit=2"
    );
    let last = range.page(hours(2).collect(), |t| *t);
    assert_eq!((last.items.len(), last.next_from), (2, None));
    // The next page's URL parses back into the same range, from its new start.
    let url = range.next_url(at("2025-05-29T02:00:00.5Z"));
    let pairs: HashMap<String, String> =
        url::form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(
        Selection::parse(&pairs),
        Ok(Selection::Range(Range {
            from: Some(at("2025-05-29T02:00:00.5Z")),
            ..range
        }))
    );
}

#[test]
fn csv_only_when_asked_for_and_preferred() {
    let with = |accept: &str| {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        Format::negotiate(&h)
    };
    assert_eq!(Format::negotiate(&HeaderMap::new()), Format::Json);
    assert_eq!(with("text/csv"), Format::Csv);
    assert_eq!(with("Text/CSV; charset=utf-8"), Format::Csv);
    assert_eq!(with("application/json, text/csv;q=0.5"), Format::Json);
    assert_eq!(with("text/csv, application/json;q=0.9"), Format::Csv);
    assert_eq!(with("text/csv;q=0"), Format::Json);
    assert_eq!(with("*/*"), Format::Json);
    assert_eq!(with("text/html, text/csv;q=0.8, */*;q=0.1"), Format::Csv);
}

fn totals(rows: &[(&str, i64, u64)]) -> Totals {
    let mut t = Totals::default();
    for (utility, naira, count) in rows {
        for i in 0..*count {
            // The whole amount on the first sale, nothing on the rest.
            let amount = if i == 0 {
                Decimal::new(*naira * 100, 2)
            } else {
                Decimal::ZERO
            };
            t.add(utility, amount).unwrap();
        }
    }
    t
}

#[test]
fn the_csv_has_one_row_per_window_and_utility_with_the_corrections_in() {
    let w = Window {
        start: at("2025-05-29T00:00:00Z"),
        end: at("2025-05-29T06:00:00Z"),
    };
    let mut open = OpenWindow::new(w, w.start);
    open.totals = totals(&[("IKEDC", 1_500, 2), ("=1+2", 700, 1)]);
    let mut reported = ReportRecord::closed(open.clone(), ClosedBy::Stream, w.end);
    let messages = Messages::new(serde_json::json!({ "text": "report" }), vec![]);
    let db = Reconciled::Database(open.totals.clone());
    reported
        .ready(db, messages, Settlement::default(), w.end)
        .unwrap();
    // A later report corrected it: one IKEDC sale refunded, an AEDC sale back-dated in.
    let told = Told {
        window: w,
        report: open.totals.clone(),
        now: totals(&[("IKEDC", 1_000, 1), ("=1+2", 700, 1), ("AEDC", 50, 1)]),
        corrections: 1,
        source: Source::Reported,
    };
    let next = Window {
        start: w.end,
        end: at("2025-05-29T12:00:00Z"),
    };
    let unreconciled = ReportRecord::closed(
        OpenWindow::new(next, next.start),
        ClosedBy::Stream,
        next.end,
    );
    let views = vec![
        ClosedWindowView::from_record(&reported, Some(&told)),
        ClosedWindowView::from_record(&unreconciled, None),
    ];
    assert_eq!(
        super::super::csv::render(&views).unwrap(),
        "start,end,utility,revenue,count\n\
         2025-05-29T00:00:00Z,2025-05-29T06:00:00Z,IKEDC,1000.00,1\n\
         2025-05-29T00:00:00Z,2025-05-29T06:00:00Z,'=1+2,700.00,1\n\
         2025-05-29T00:00:00Z,2025-05-29T06:00:00Z,AEDC,50.00,1\n"
    );
    let json = serde_json::to_value(&views).unwrap();
    assert_eq!(json[0]["totals_from"], "rechecked");
    assert_eq!(json[0]["totals"]["revenue"], "1750.00");
    assert_eq!(
        json[0]["totals"]["by_utility"][1]["utility"], "=1+2",
        "the JSON keeps the name"
    );
    assert_eq!(json[0]["reconciled"]["revenue"], "2200.00");
    assert_eq!(json[1]["totals_from"], "streamed");
}
