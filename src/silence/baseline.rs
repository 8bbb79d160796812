//! Baselines: how many sales each utility usually makes in one silence period at this time of
//! day, from the database. One aggregate per refresh: the same period (`[t − period, t)` at the
//! same wall-clock time) on each of the previous seven days, as seven ranges of the window
//! index (`status`, `time`), the fulfilled sales by the reconciliation's status, time and
//! utility rules (amounts not parsed: see [`pipeline`]), counted per utility. Limited on the server like the window query (`maxTimeMS`).

use crate::config::Config;
use crate::limits;
use crate::rules;
use bson::{doc, Bson, Document};
use chrono::{DateTime, Days, TimeZone, Utc};
use chrono_tz::Tz;
use futures::TryStreamExt;
use mongodb::Collection;
use std::collections::BTreeMap;
use std::time::Duration;

/// The days a baseline averages over.
pub const DAYS: u32 = 7;

/// Sales per utility over the baseline's periods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    /// Per utility (the name as the reconciliation normalises it), sales in all the periods.
    pub sales: BTreeMap<String, u64>,
    /// How many periods (days) the sales cover.
    pub days: u32,
}

impl Baseline {
    /// The utilities averaging at least `min_sales` per period, with that average (rounded
    /// half up, so never below `min_sales`).
    pub(crate) fn usual_at_least(&self, min_sales: u64) -> impl Iterator<Item = (&str, u64)> {
        let days = u64::from(self.days);
        self.sales
            .iter()
            .filter(move |&(_, &n)| days > 0 && n >= min_sales.saturating_mul(days))
            .map(move |(u, &n)| (u.as_str(), n.saturating_add(days / 2) / days))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("MongoDB: {0}")]
    Mongo(mongodb::error::Error),
    /// The server stopped the query at its limit, or did not answer by then.
    #[error("the baseline query ran past its {} s limit (POWER_REVENUE_QUERY_TIMEOUT)", .limit.as_secs())]
    TimedOut { limit: Duration },
    #[error("unexpected baseline row: {0}")]
    BadResult(&'static str),
}

impl BaselineError {
    /// Every failure is worth another try at the next refresh; none stops the service.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Mongo(_) | Self::TimedOut { .. })
    }
}

/// `t`'s wall-clock reading in `tz`, `days` days earlier: across a DST change 23 or 25 hours
/// back. A reading repeated that day is its first occurrence; one skipped is read with the
/// offset before the gap (an instant after it, as far past it as the reading is into it).
pub(crate) fn same_time_days_before(tz: Tz, t: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    let local = t.with_timezone(&tz).naive_local();
    let Some(earlier) = local.checked_sub_days(Days::new(u64::from(days))) else {
        return DateTime::<Utc>::MIN_UTC;
    };
    match tz.from_local_datetime(&earlier).earliest() {
        Some(x) => x.with_timezone(&Utc),
        None => {
            // In a gap: the offset of a day before it (zone transitions are months apart).
            let before = earlier
                .checked_sub_days(Days::new(1))
                .and_then(|b| tz.from_local_datetime(&b).earliest());
            let offset = before.map_or(0, |b| {
                i64::from(chrono::Offset::fix(b.offset()).local_minus_utc())
            });
            let utc = earlier.and_utc() - chrono::TimeDelta::seconds(offset);
            utc.max(DateTime::<Utc>::MIN_UTC)
        }
    }
}

/// The baseline's periods for `at`: `[t − period, t)` for `t` the same wall-clock time on each
/// of the previous [`DAYS`] days, most recent first.
pub fn periods(tz: Tz, at: DateTime<Utc>, period: Duration) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    (1..=DAYS)
        .map(|d| {
            let end = same_time_days_before(tz, at, d);
            (crate::window::earlier_by(end, period), end)
        })
        .collect()
}

/// The aggregation: per utility, the fulfilled sales in any of the periods.
pub fn pipeline(config: &Config, periods: &[(DateTime<Utc>, DateTime<Utc>)]) -> Vec<Document> {
    let f = &config.fields;
    let ranges: Vec<Bson> = periods
        .iter()
        .map(|&(start, end)| {
            Bson::Document(rules::window_match(f, &config.fulfilled_status, start, end))
        })
        .collect();
    vec![
        doc! { "$match": { "$or": ranges } },
        // Counted without parsing amounts: a baseline is a usual number of sales, not money, and
        // parsing each amount (the report's regex) made a refresh cost most of a report's
        // query (benches/README.md). A sale with an unreadable amount counts here and is
        // skipped (and logged) by the fold.
        doc! { "$group": { "_id": rules::utility_expr(&f.utility), "n": { "$sum": 1 } } },
    ]
}

/// The baseline for the period ending at `at`: one aggregate, limited to
/// `POWER_REVENUE_QUERY_TIMEOUT` on the server. Public for the benchmark.
pub async fn query(
    coll: &Collection<Document>,
    config: &Config,
    at: DateTime<Utc>,
    period: Duration,
) -> Result<Baseline, BaselineError> {
    let limit = config.query_timeout;
    let periods = periods(config.window.tz(), at, period);
    let run = async {
        let cursor = coll
            .aggregate(pipeline(config, &periods))
            .max_time(limit)
            .await?;
        cursor.try_collect::<Vec<Document>>().await
    };
    let rows = limits::answer(limit, run)
        .await
        .map_err(|_| BaselineError::TimedOut { limit })?
        .map_err(|e| {
            if limits::expired(&e) {
                BaselineError::TimedOut { limit }
            } else {
                BaselineError::Mongo(e)
            }
        })?;
    let mut sales = BTreeMap::new();
    for row in rows {
        let utility = row
            .get_str("_id")
            .map_err(|_| BaselineError::BadResult("utility not a string"))?;
        let n = match row.get("n") {
            Some(Bson::Int32(n)) => u64::try_from(*n).ok(),
            Some(Bson::Int64(n)) => u64::try_from(*n).ok(),
            _ => None,
        }
        .ok_or(BaselineError::BadResult("count not a whole number"))?;
        sales.insert(utility.to_owned(), n);
    }
    Ok(Baseline { sales, days: DAYS })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_same_wall_clock_time_across_dst() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 2025-11-03 12:00 EST; the day before (2025-11-02) had 25 hours.
        let t = at("2025-11-03T17:00:00Z");
        assert_eq!(same_time_days_before(ny, t, 1), at("2025-11-02T17:00:00Z"));
        assert_eq!(same_time_days_before(ny, t, 2), at("2025-11-01T16:00:00Z"));
        // 01:30 on 2025-11-03: a week back, 2025-10-27 01:30 EDT.
        let t = at("2025-11-03T06:30:00Z");
        assert_eq!(same_time_days_before(ny, t, 7), at("2025-10-27T05:30:00Z"));
        // 02:30 on 2025-03-10 was skipped the day before: read with the offset before (EST).
        let t = at("2025-03-10T06:30:00Z");
        assert_eq!(same_time_days_before(ny, t, 1), at("2025-03-09T07:30:00Z"));
        // 01:30 on 2025-11-02 is repeated: its first occurrence (EDT).
        let t = at("2025-11-03T06:30:00Z");
        assert_eq!(same_time_days_before(ny, t, 1), at("2025-11-02T05:30:00Z"));
        // At the start of chrono's range: clamped, never a panic.
        let utc: Tz = "UTC".parse().unwrap();
        assert_eq!(
            same_time_days_before(utc, DateTime::<Utc>::MIN_UTC, 7),
            DateTime::<Utc>::MIN_UTC
        );
    }

    #[test]
    fn seven_periods_ending_at_the_same_time() {
        let lagos: Tz = "Africa/Lagos".parse().unwrap();
        let p = periods(lagos, at("2025-05-29T13:05:00Z"), Duration::from_secs(1800));
        assert_eq!(p.len(), 7);
        assert_eq!(
            p[0],
            (at("2025-05-28T12:35:00Z"), at("2025-05-28T13:05:00Z"))
        );
        assert_eq!(
            p[6],
            (at("2025-05-22T12:35:00Z"), at("2025-05-22T13:05:00Z"))
        );
    }

    #[test]
    fn usual_is_the_rounded_average_and_never_below_the_minimum() {
        let b = Baseline {
            sales: [("IKEDC", 294), ("EKEDC", 35), ("AEDC", 34), ("JED", 0)]
                .into_iter()
                .map(|(u, n)| (u.to_owned(), n))
                .collect(),
            days: 7,
        };
        let v: Vec<_> = b.usual_at_least(5).collect();
        assert_eq!(v, [("EKEDC", 5), ("IKEDC", 42)]);
        let none = Baseline::default();
        assert_eq!(none.usual_at_least(0).count(), 0);
    }
}
