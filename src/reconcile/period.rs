//! A summary period against the database: one `$facet` over the whole period giving its total,
//! its per-utility totals and each window's total (a `$bucket` on the window bounds, which
//! follow the zone's wall clock and so are not evenly spaced across a DST change). The same
//! rules as a window's query; the three views are cross-checked against one another.

use super::{parse_facet, tally, ReconcileError};
use crate::config::Config;
use crate::limits;
use crate::rules;
use crate::window::{Tally, Totals, Window};
use bson::{doc, Bson, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

/// A period's figures from the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodTotals {
    /// Per utility, over the whole period.
    pub totals: Totals,
    /// Each window of the period in order, with its total (zero when it sold nothing).
    pub by_window: Vec<(Window, Tally)>,
}

/// The aggregation for a period cut into `windows` (in order, covering it).
pub(crate) fn period_pipeline(
    config: &Config,
    period: &Window,
    windows: &[Window],
) -> Vec<Document> {
    let f = &config.fields;
    let group = |id: Bson| doc! { "$group": { "_id": id, "revenue": { "$sum": "$a" }, "count": { "$sum": 1 } } };
    let mut boundaries: Vec<Bson> = windows
        .iter()
        .map(|w| Bson::DateTime(bson::DateTime::from_chrono(w.start)))
        .collect();
    boundaries.push(Bson::DateTime(bson::DateTime::from_chrono(period.end)));
    vec![
        doc! { "$match": rules::window_match(f, &config.fulfilled_status, period.start, period.end) },
        doc! { "$project": {
            "_id": 0,
            "u": rules::utility_expr(&f.utility),
            "a": rules::amount_expr(&f.amount),
            "t": format!("${}", f.time),
        } },
        doc! { "$match": { "a": { "$ne": null } } },
        doc! { "$facet": {
            "total": [ group(Bson::Null) ],
            "by_utility": [ group(Bson::String("$u".into())), { "$sort": { "revenue": -1, "_id": 1 } } ],
            "by_window": [ { "$bucket": {
                "groupBy": "$t",
                "boundaries": boundaries,
                "output": { "revenue": { "$sum": "$a" }, "count": { "$sum": 1 } },
            } } ],
        } },
    ]
}

/// Runs the period's `$facet` once, read like a window's ([`super::query`]) and limited to a
/// window's limit per window in the period ([`limits::period_query`]): it does all their work.
pub async fn query_period(
    coll: &Collection<Document>,
    config: &Config,
    period: &Window,
    windows: &[Window],
) -> Result<PeriodTotals, ReconcileError> {
    let limit = limits::period_query(config.query_timeout, windows.len());
    if crate::failpoint::fails("summary-query") {
        return Err(ReconcileError::BadResult("failpoint summary-query".into()));
    }
    crate::failpoint::hangs("summary-query-hangs").await;
    let result = super::facet_once(coll, period_pipeline(config, period, windows), limit).await?;
    parse_period(&result, windows)
}

/// The facet's three views, checked to agree: the windows' totals add up to the period's.
pub(crate) fn parse_period(
    result: &Document,
    windows: &[Window],
) -> Result<PeriodTotals, ReconcileError> {
    let bad = |what: &str| ReconcileError::BadResult(what.to_owned());
    let totals = parse_facet(result)?;
    let mut by_window: Vec<(Window, Tally)> =
        windows.iter().map(|w| (*w, Tally::default())).collect();
    for row in result
        .get_array("by_window")
        .map_err(|_| bad("by_window missing"))?
    {
        let row = row.as_document().ok_or_else(|| bad("by_window row"))?;
        let start = row
            .get_datetime("_id")
            .map_err(|_| bad("window bound not a date"))?
            .to_chrono();
        let slot = by_window
            .iter_mut()
            .find(|(w, _)| w.start == start)
            .ok_or_else(|| bad("a bucket that is no window"))?;
        slot.1 = tally(row)?;
    }
    let mut sum = Tally::default();
    for (_, t) in &by_window {
        sum.revenue = sum
            .revenue
            .checked_add(t.revenue)
            .ok_or_else(|| bad("windows' revenue out of range"))?;
        sum.count = sum.count.saturating_add(t.count);
    }
    if sum != totals.total() {
        return Err(bad("windows' totals disagree with the period's"));
    }
    Ok(PeriodTotals { totals, by_window })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn w(start: i64, end: i64) -> Window {
        Window {
            start: chrono::DateTime::from_timestamp(start, 0).unwrap(),
            end: chrono::DateTime::from_timestamp(end, 0).unwrap(),
        }
    }

    fn row(id: Bson, revenue: &str, count: i32) -> Bson {
        Bson::Document(
            doc! { "_id": id, "revenue": Bson::Decimal128(revenue.parse().unwrap()), "count": count },
        )
    }

    fn date(secs: i64) -> Bson {
        Bson::DateTime(bson::DateTime::from_millis(secs * 1000))
    }

    #[test]
    fn windows_without_sales_are_zero_and_the_views_must_agree() {
        let windows = [w(0, 2), w(2, 4), w(4, 6)];
        let result = doc! {
            "total": [ row(Bson::Null, "3000.50", 3) ],
            "by_utility": [ row("IKEDC".into(), "2000", 2), row("EKEDC".into(), "1000.50", 1) ],
            "by_window": [ row(date(0), "1000", 1), row(date(4), "2000.50", 2) ],
        };
        let p = parse_period(&result, &windows).unwrap();
        assert_eq!(p.totals.total().count, 3);
        assert_eq!(
            p.by_window
                .iter()
                .map(|(w, t)| (w.start.timestamp(), t.count))
                .collect::<Vec<_>>(),
            vec![(0, 1), (2, 0), (4, 2)]
        );
        assert_eq!(p.by_window[2].1.revenue, Decimal::new(200050, 2));
        let mut off = result.clone();
        off.insert("by_window", vec![row(date(0), "1000", 1)]);
        assert!(parse_period(&off, &windows).is_err());
        let mut stray = result;
        stray.insert("by_window", vec![row(date(1), "3000.50", 3)]);
        assert!(parse_period(&stray, &windows).is_err());
    }
}
