//! Reconciliation: the database is the source of truth. One `$facet` over a closed window,
//! applying the same rules as the stream ([`crate::rules`]), gives the numbers we post.

use crate::config::Config;
use crate::limits;
use crate::money;
use crate::rules;
use crate::window::{Tally, Totals, Window};
use bson::{doc, Bson, Document};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::options::ReadConcern;
use mongodb::Collection;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("MongoDB: {0}")]
    Mongo(mongodb::error::Error),
    /// The server stopped the query at its limit (`MaxTimeMSExpired`), or did not answer by
    /// then. Retried: a busy server may answer in time on the next attempt.
    #[error("the query ran past its {} s limit (POWER_REVENUE_QUERY_TIMEOUT)", .limit.as_secs())]
    TimedOut { limit: Duration },
    #[error("unexpected $facet result: {0}")]
    BadResult(String),
}

impl ReconcileError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Mongo(_) | Self::TimedOut { .. })
    }

    fn from_mongo(e: mongodb::error::Error, limit: Duration) -> Self {
        if limits::expired(&e) {
            Self::TimedOut { limit }
        } else {
            Self::Mongo(e)
        }
    }
}

/// The aggregation for one window: total and per-utility revenue, highest first.
pub(crate) fn facet_pipeline(config: &Config, window: &Window) -> Vec<Document> {
    let f = &config.fields;
    let group = |id: Bson| doc! { "$group": { "_id": id, "revenue": { "$sum": "$a" }, "count": { "$sum": 1 } } };
    vec![
        doc! { "$match": rules::window_match(f, &config.fulfilled_status, window.start, window.end) },
        doc! { "$project": { "_id": 0, "u": rules::utility_expr(&f.utility), "a": rules::amount_expr(&f.amount) } },
        doc! { "$match": { "a": { "$ne": null } } },
        doc! { "$facet": {
            "total": [ group(Bson::Null) ],
            "by_utility": [ group(Bson::String("$u".into())), { "$sort": { "revenue": -1, "_id": 1 } } ],
        } },
    ]
}

/// The index for [`facet_pipeline`]'s `$match`: status (equality) first, then time (range).
pub fn window_index(config: &Config) -> mongodb::IndexModel {
    let f = &config.fields;
    mongodb::IndexModel::builder()
        .keys(doc! { f.status.as_str(): 1, f.time.as_str(): 1 })
        .options(
            mongodb::options::IndexOptions::builder()
                .name("power_revenue_status_time".to_owned())
                .build(),
        )
        .build()
}

/// Runs the window's `$facet` once, limited to `POWER_REVENUE_QUERY_TIMEOUT` on the server.
/// Majority read concern: the snapshot then holds every sale the change stream has delivered
/// (change streams deliver majority-committed writes only).
pub async fn query(
    coll: &Collection<Document>,
    config: &Config,
    window: &Window,
) -> Result<Totals, ReconcileError> {
    crate::failpoint::hangs("window-query-hangs").await;
    let limit = config.query_timeout;
    parse_facet(&facet_once(coll, facet_pipeline(config, window), limit).await?)
}

/// Runs a `$facet` pipeline once, majority read, limited to `limit` on the server and here:
/// its one result document.
pub(crate) async fn facet_once(
    coll: &Collection<Document>,
    pipeline: Vec<Document>,
    limit: Duration,
) -> Result<Document, ReconcileError> {
    let run = async {
        let mut cursor = coll
            .aggregate(pipeline)
            .read_concern(ReadConcern::majority())
            .max_time(limit)
            .await?;
        // One document, in the reply to the aggregate itself: no getMore follows.
        cursor.try_next().await
    };
    limits::answer(limit, run)
        .await
        .map_err(|_| ReconcileError::TimedOut { limit })?
        .map_err(|e| ReconcileError::from_mongo(e, limit))?
        .ok_or_else(|| ReconcileError::BadResult("no document".into()))
}

/// Runs the window's `$facet` in a snapshot session, limited like [`query`]: the totals as of
/// one cluster time, returned with them (when the server says), so a change stream opened
/// before the read can skip the events the read already holds.
pub(crate) async fn query_snapshot(
    coll: &Collection<Document>,
    config: &Config,
    window: &Window,
) -> Result<(Totals, Option<bson::Timestamp>), ReconcileError> {
    let limit = config.query_timeout;
    let run = async {
        let mut session = coll.client().start_session().snapshot(true).await?;
        let mut cursor = coll
            .aggregate(facet_pipeline(config, window))
            .max_time(limit)
            .session(&mut session)
            .await?;
        let first = cursor.next(&mut session).await.transpose()?;
        drop(cursor);
        Ok::<_, mongodb::error::Error>((first, session.snapshot_time()))
    };
    let (result, read_at) = limits::answer(limit, run)
        .await
        .map_err(|_| ReconcileError::TimedOut { limit })?
        .map_err(|e| ReconcileError::from_mongo(e, limit))?;
    let result = result.ok_or_else(|| ReconcileError::BadResult("no document".into()))?;
    Ok((parse_facet(&result)?, read_at))
}

/// Runs the query with backoff until it succeeds, fails for good, or `patience` passes. The
/// patience counts on top of one full query limit, so a query the server stopped at its limit
/// is still retried.
pub(crate) async fn query_with_retry(
    coll: &Collection<Document>,
    config: &Config,
    window: &Window,
    patience: Duration,
) -> Result<Totals, ReconcileError> {
    with_retry(
        window,
        patience.saturating_add(config.query_timeout),
        || query(coll, config, window),
    )
    .await
}

/// Runs `attempt` with backoff until it succeeds, fails for good, or `max_elapsed` passes.
pub(crate) async fn with_retry<T, F, Fut>(
    window: &Window,
    max_elapsed: Duration,
    attempt: F,
) -> Result<T, ReconcileError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, ReconcileError>>,
{
    let policy = backoff::ExponentialBackoff {
        initial_interval: Duration::from_millis(500),
        max_interval: Duration::from_secs(10),
        max_elapsed_time: Some(max_elapsed),
        ..Default::default()
    };
    backoff::future::retry_notify(
        policy,
        || async {
            attempt().await.map_err(|e| {
                if e.is_retryable() { backoff::Error::transient(e) } else { backoff::Error::permanent(e) }
            })
        },
        |error: ReconcileError, wait: Duration| {
            tracing::warn!(%error, window = %window.id(), retry_in_ms = wait.as_millis() as u64, "Reconciliation query failed; retrying.");
        },
    )
    .await
}

/// One row of [`query_history`]: a utility's counted sales in one activity bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The bucket's start, Unix ms ([`crate::activity::bucket_of`]).
    pub bucket_ms: i64,
    pub utility: String,
    pub tally: Tally,
}

/// The aggregation for the history import: the sales of `[from, to)` that count, by the
/// reconciliation's rules, grouped per activity bucket and utility.
pub(crate) fn history_pipeline(
    config: &Config,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket_ms: i64,
) -> Vec<Document> {
    let f = &config.fields;
    let ms = doc! { "$toLong": format!("${}", f.time) };
    vec![
        doc! { "$match": rules::window_match(f, &config.fulfilled_status, from, to) },
        doc! { "$project": {
            "_id": 0,
            "u": rules::utility_expr(&f.utility),
            "a": rules::amount_expr(&f.amount),
            "b": { "$subtract": [ms.clone(), { "$mod": [ms, bucket_ms] }] },
        } },
        doc! { "$match": { "a": { "$ne": null } } },
        doc! { "$group": { "_id": { "b": "$b", "u": "$u" }, "revenue": { "$sum": "$a" }, "count": { "$sum": 1 } } },
    ]
}

/// Reads the history of `[from, to)` once: one aggregate, majority read, limited to
/// `POWER_REVENUE_QUERY_TIMEOUT` on the server. The import reads a day at a time.
pub async fn query_history(
    coll: &Collection<Document>,
    config: &Config,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket_ms: i64,
) -> Result<Vec<HistoryRow>, ReconcileError> {
    let limit = config.query_timeout;
    let run = async {
        let cursor = coll
            .aggregate(history_pipeline(config, from, to, bucket_ms))
            .read_concern(ReadConcern::majority())
            .max_time(limit)
            .await?;
        cursor.try_collect::<Vec<Document>>().await
    };
    let rows = limits::answer(limit, run)
        .await
        .map_err(|_| ReconcileError::TimedOut { limit })?
        .map_err(|e| ReconcileError::from_mongo(e, limit))?;
    let bad = |what: &str| ReconcileError::BadResult(what.to_owned());
    rows.iter()
        .map(|row| {
            let id = row.get_document("_id").map_err(|_| bad("history row id"))?;
            let bucket_ms = match id.get("b") {
                Some(Bson::Int64(n)) => *n,
                Some(Bson::Int32(n)) => i64::from(*n),
                _ => return Err(bad("history bucket not an integer")),
            };
            let utility = id.get_str("u").map_err(|_| bad("utility not a string"))?;
            Ok(HistoryRow {
                bucket_ms,
                utility: utility.to_owned(),
                tally: tally(row)?,
            })
        })
        .collect()
}

fn parse_facet(result: &Document) -> Result<Totals, ReconcileError> {
    let bad = |what: &str| ReconcileError::BadResult(what.to_owned());
    let mut totals = Totals::default();
    for row in result
        .get_array("by_utility")
        .map_err(|_| bad("by_utility missing"))?
    {
        let row = row.as_document().ok_or_else(|| bad("by_utility row"))?;
        let utility = row
            .get_str("_id")
            .map_err(|_| bad("utility not a string"))?;
        totals.by_utility.insert(utility.to_owned(), tally(row)?);
    }
    // Cross-check the facet's own total against the per-utility rows.
    let total = match result
        .get_array("total")
        .ok()
        .and_then(|a| a.first())
        .and_then(Bson::as_document)
    {
        Some(row) => tally(row)?,
        None => Tally::default(),
    };
    if total != totals.total() {
        return Err(bad("total disagrees with per-utility rows"));
    }
    Ok(totals)
}

fn tally(row: &Document) -> Result<Tally, ReconcileError> {
    let bad = |what: &str| ReconcileError::BadResult(what.to_owned());
    let revenue = match row.get("revenue") {
        Some(Bson::Decimal128(d)) => {
            money::sum_from_decimal128(d).ok_or_else(|| bad("revenue out of range"))?
        }
        Some(Bson::Int32(n)) => (*n).into(),
        Some(Bson::Int64(n)) => (*n).into(),
        _ => return Err(bad("revenue not a number")),
    };
    let count = match row.get("count") {
        Some(Bson::Int32(n)) => u64::try_from(*n).map_err(|_| bad("negative count"))?,
        Some(Bson::Int64(n)) => u64::try_from(*n).map_err(|_| bad("negative count"))?,
        _ => return Err(bad("count not an integer")),
    };
    Ok(Tally { revenue, count })
}
