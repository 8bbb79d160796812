//! Comparisons: each report's figures against the window before it and the same window
//! yesterday and a week ago. Owns which windows are compared, the change between two figures
//! (a percentage, `rust_decimal` only), the database queries for them (the same `$facet` as
//! reconciliation, so comparisons hold from the first day of running) and their API shape.

use crate::config::Config;
use crate::reconcile;
use crate::window::{Totals, Window};
use bson::Document;
use chrono::{DateTime, Utc};
use mongodb::Collection;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;
use tracing::warn;

/// How long one comparison query keeps retrying: less than the report's own query, since a
/// comparison is context and must not hold the report back for long.
const COMPARE_PATIENCE: Duration = Duration::from_secs(20);

/// What one report is compared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    pub previous: Compared,
    pub yesterday: Compared,
    pub last_week: Compared,
}

/// One compared window and its figures from the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compared {
    pub window: Window,
    /// `None` when the query failed (after retries): the report says `n/a`.
    pub totals: Option<Totals>,
}

/// Which earlier window a comparison is with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Against {
    Previous,
    Yesterday,
    LastWeek,
}

impl Against {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Previous => "previous window",
            Self::Yesterday => "same window yesterday",
            Self::LastWeek => "same window last week",
        }
    }
}

/// The windows `window` is compared with, in [`Against`] order.
pub(crate) fn windows(config: &Config, window: &Window) -> [(Against, Window); 3] {
    let spec = &config.window;
    [
        (Against::Previous, spec.previous(window)),
        (Against::Yesterday, spec.days_before(window, 1)),
        (Against::LastWeek, spec.days_before(window, 7)),
    ]
}

/// The three comparison queries, concurrently, each with the reconciliation's retry helper.
/// Never fails: a query that fails for good is logged once and its figures are `None`.
pub async fn query(coll: &Collection<Document>, config: &Config, window: &Window) -> Comparison {
    let one = |(against, w): (Against, Window)| async move {
        let result = reconcile::query_with_retry(coll, config, &w, COMPARE_PATIENCE).await;
        let totals = match result {
            Ok(totals) => Some(totals),
            Err(error) => {
                warn!(%error, window = %window.id(), compared = %w.id(), against = against.as_str(), "A comparison query failed; the report says n/a for it.");
                metrics::counter!(crate::telemetry::COMPARISON_FAILURES_TOTAL).increment(1);
                None
            }
        };
        Compared { window: w, totals }
    };
    let [p, y, l] = windows(config, window);
    let (previous, yesterday, last_week) = futures::join!(one(p), one(y), one(l));
    Comparison {
        previous,
        yesterday,
        last_week,
    }
}

/// The change from an earlier figure to this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Percent, rounded to one decimal (half away from zero).
    Percent(Decimal),
    /// The earlier figure is zero (or unknown): no percentage exists.
    NoBase,
    /// The percentage is beyond `Decimal`'s range (an earlier figure of a few kobo against
    /// trillions): said as `n/a` rather than risk a wrong figure.
    OutOfRange,
}

impl Change {
    /// `(now − before) / before × 100`, checked at every step.
    pub(crate) fn between(now: Decimal, before: Decimal) -> Change {
        if before.is_zero() {
            return Change::NoBase;
        }
        let pct = now
            .checked_sub(before)
            .and_then(|d| d.checked_div(before))
            .and_then(|r| r.checked_mul(Decimal::ONE_HUNDRED));
        match pct {
            // A change that rounds to zero is shown as +0.0%, never -0.0%.
            Some(p) => {
                let p = p.round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero);
                Change::Percent(if p.is_zero() { Decimal::ZERO } else { p })
            }
            None => Change::OutOfRange,
        }
    }

    /// Against a compared window's figures, `None` meaning unknown.
    pub(crate) fn against(now: Decimal, before: Option<Decimal>) -> Change {
        before.map_or(Change::NoBase, |b| Change::between(now, b))
    }
}

/// `+14.1%`, `-8.5%`, `+0.0%`, `n/a`: the sign is always shown.
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Percent(p) if p.is_sign_negative() => write!(f, "{p:.1}%"),
            Change::Percent(p) => write!(f, "+{p:.1}%"),
            Change::NoBase | Change::OutOfRange => f.write_str("n/a"),
        }
    }
}

/// A comparison as `GET /api/v1/windows` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonView {
    pub previous: ComparedView,
    pub yesterday: ComparedView,
    pub last_week: ComparedView,
    /// Per utility, the change in revenue against the same window yesterday (`n/a` when
    /// yesterday's figure is zero or unknown), for every utility of this window.
    pub utilities_vs_yesterday: Vec<UtilityChange>,
}

/// One compared window in the API.
#[derive(Debug, Clone, Serialize)]
pub struct ComparedView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `null` when the query failed.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub revenue: Option<Decimal>,
    pub count: Option<u64>,
    /// Change in revenue from that window to this one: `+14.1%`, `n/a`.
    pub change: String,
}

/// One utility's change against the same window yesterday, in the API.
#[derive(Debug, Clone, Serialize)]
pub struct UtilityChange {
    pub utility: String,
    pub change: String,
}

impl ComparisonView {
    /// `now` is the report's figures.
    pub fn of(c: &Comparison, now: &Totals) -> ComparisonView {
        let revenue = now.total().revenue;
        let view = |x: &Compared| {
            let total = x.totals.as_ref().map(Totals::total);
            ComparedView {
                start: x.window.start,
                end: x.window.end,
                revenue: total.map(|t| t.revenue),
                count: total.map(|t| t.count),
                change: Change::against(revenue, total.map(|t| t.revenue)).to_string(),
            }
        };
        let utilities_vs_yesterday = now
            .ranked()
            .into_iter()
            .map(|(name, t)| UtilityChange {
                utility: name.to_owned(),
                change: utility_change(c, name, t.revenue).to_string(),
            })
            .collect();
        ComparisonView {
            previous: view(&c.previous),
            yesterday: view(&c.yesterday),
            last_week: view(&c.last_week),
            utilities_vs_yesterday,
        }
    }
}

/// One utility's change against the same window yesterday (zero if it sold nothing then).
pub(crate) fn utility_change(c: &Comparison, utility: &str, now: Decimal) -> Change {
    let before = c.yesterday.totals.as_ref().map(|t| {
        t.by_utility
            .get(utility)
            .map_or(Decimal::ZERO, |x| x.revenue)
    });
    Change::against(now, before)
}

#[cfg(test)]
mod tests;
