//! `GET /api/v1/windows`: which closed windows a request selects, in which form, and where
//! the next page starts. Either the `last=N` most recent (newest first, as before), or the
//! history: windows whose start is in `[from, to)` (RFC 3339, either end optional), oldest
//! first, at most `limit` per page, the next page named by a `Link: <…>; rel="next"` header.
//! `Accept: text/csv` answers CSV ([`super::csv`]) instead of JSON; `Data-From` says from when
//! the service holds windows (`POWER_REVENUE_RETENTION`). Parsing, negotiation and paging are
//! pure; the handler around them reads the store.

use super::{internal, HttpState, Rendered};
use crate::views::ClosedWindowView;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;

/// `last=` when none of `last`, `from`, `to`, `limit` is given.
const DEFAULT_LAST: usize = 10;
const MAX_LAST: usize = 1000;
/// A history page holds this many windows unless `limit` says otherwise…
pub(crate) const DEFAULT_LIMIT: usize = 500;
/// …and never more than this: a page is read, mapped and sent in one piece, so its memory is
/// this many windows × their utilities (a week of 10-minute windows is two pages).
pub(crate) const MAX_LIMIT: usize = 1000;
const PATH: &str = "/api/v1/windows";
/// From when the service holds windows (retention prunes older ones).
const DATA_FROM: header::HeaderName = header::HeaderName::from_static("data-from");

/// What a request selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    /// The N most recently closed windows, newest first.
    Last(usize),
    /// The history: windows starting in a range, oldest first, one page at a time.
    Range(Range),
}

/// Windows whose start is in `[from, to)`; an end left out is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Windows per page.
    pub limit: usize,
}

/// A request the API cannot answer; each says in one line what a good one looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QueryError {
    #[error("last must be a number from 1 to {MAX_LAST}")]
    Last,
    #[error("from must be an RFC 3339 time, e.g. 2025-05-29T00:00:00Z")]
    From,
    #[error("to must be an RFC 3339 time, e.g. 2025-05-29T00:00:00Z")]
    To,
    #[error("to must be later than from")]
    Empty,
    #[error("limit must be a number from 1 to {MAX_LIMIT}")]
    Limit,
    #[error("last cannot be combined with from, to or limit")]
    Mixed,
}

fn time(value: Option<&String>, bad: QueryError) -> Result<Option<DateTime<Utc>>, QueryError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| bad)
        })
        .transpose()
}

fn number(value: &str, max: usize, bad: QueryError) -> Result<usize, QueryError> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(bad),
    }
}

impl Selection {
    /// Reads the query parameters (unknown ones are ignored, as before).
    pub(crate) fn parse(q: &HashMap<String, String>) -> Result<Selection, QueryError> {
        let ranged = ["from", "to", "limit"].iter().any(|k| q.contains_key(*k));
        match (q.get("last"), ranged) {
            (Some(_), true) => Err(QueryError::Mixed),
            (Some(n), false) => Ok(Selection::Last(number(n, MAX_LAST, QueryError::Last)?)),
            (None, false) => Ok(Selection::Last(DEFAULT_LAST)),
            (None, true) => {
                let from = time(q.get("from"), QueryError::From)?;
                let to = time(q.get("to"), QueryError::To)?;
                if let (Some(f), Some(t)) = (from, to) {
                    if t <= f {
                        return Err(QueryError::Empty);
                    }
                }
                let limit = match q.get("limit") {
                    Some(n) => number(n, MAX_LIMIT, QueryError::Limit)?,
                    None => DEFAULT_LIMIT,
                };
                Ok(Selection::Range(Range { from, to, limit }))
            }
        }
    }
}

impl Range {
    /// Splits what the store returned for this page (read with `limit + 1`) into the page and
    /// the start of the next one: the window after the page's last, so the next page begins
    /// exactly there, whatever the window length.
    pub(crate) fn page<T>(&self, mut read: Vec<T>, start: impl Fn(&T) -> DateTime<Utc>) -> Page<T> {
        let next_from = read.get(self.limit).map(&start);
        read.truncate(self.limit);
        Page {
            items: read,
            next_from,
        }
    }

    /// The URL of the page starting at `next_from`, with this range's `to` and `limit`.
    pub(crate) fn next_url(&self, next_from: DateTime<Utc>) -> String {
        let rfc3339 = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("from", &rfc3339(next_from));
        if let Some(to) = self.to {
            q.append_pair("to", &rfc3339(to));
        }
        q.append_pair("limit", &self.limit.to_string());
        format!("{PATH}?{}", q.finish())
    }
}

/// One page of the history.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_from: Option<DateTime<Utc>>,
}

/// The form of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    /// One row per window and utility ([`super::csv`]).
    Csv,
}

impl Format {
    /// CSV when the `Accept` header asks for `text/csv` (with a non-zero `q`) and ranks it at
    /// least as high as JSON; JSON otherwise, as before (also for `*/*` or no header).
    pub(crate) fn negotiate(headers: &HeaderMap) -> Format {
        let (mut csv, mut json) = (None::<f32>, None::<f32>);
        let ranges = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','));
        for range in ranges {
            let mut parts = range.split(';');
            let kind = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let slot = match kind.as_str() {
                "text/csv" => &mut csv,
                "application/json" => &mut json,
                _ => continue,
            };
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
        match csv {
            Some(c) if c > 0.0 && json.is_none_or(|j| c >= j) => Format::Csv,
            _ => Format::Json,
        }
    }
}

/// `GET /api/v1/windows`.
pub(crate) async fn closed(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let selection = match Selection::parse(&q) {
        Ok(sel) => sel,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let format = Format::negotiate(&headers);
    // Reading a page from sled and writing its CSV are blocking work of a page's size: off the
    // async workers, which also carry the stream and the deliveries.
    // The page's body is written there too: a thousand windows of JSON is milliseconds of
    // work that `/healthz` must not wait behind.
    let turn = match s.read_turn().await {
        Ok(turn) => turn,
        Err(e) => return e.into_response(),
    };
    let read = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let (items, next) = select(&s, selection)?;
        let body = match format {
            Format::Json => Rendered::json(&items)
                .map_err(Failed::Json)?
                .into_response(),
            Format::Csv => {
                let csv = super::csv::render(&items).map_err(Failed::Csv)?;
                ([(header::CONTENT_TYPE, super::csv::CONTENT_TYPE)], csv).into_response()
            }
        };
        let data_from = s.store.oldest_report_start()?;
        Ok::<_, Failed>((body, next, data_from))
    })
    .await;
    let (mut response, next, data_from) = match read {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return internal(e).into_response(),
        Err(e) => return internal(e).into_response(),
    };
    let h = response.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    if let Some(from) = data_from
        .and_then(|t| HeaderValue::from_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)).ok())
    {
        h.insert(DATA_FROM, from);
    }
    if let Some(link) =
        next.and_then(|url| HeaderValue::from_str(&format!("<{url}>; rel=\"next\"")).ok())
    {
        h.insert(header::LINK, link);
    }
    response
}

/// Why a page could not be read or written.
#[derive(Debug, thiserror::Error)]
enum Failed {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Csv(super::csv::CsvError),
    #[error(transparent)]
    Json(serde_json::Error),
}

/// The selected windows, and the next page's URL.
fn select(
    s: &HttpState,
    selection: Selection,
) -> Result<(Vec<ClosedWindowView>, Option<String>), crate::store::StoreError> {
    match selection {
        Selection::Last(n) => {
            let reports = s.store.latest_reports(n)?;
            Ok((views(s, &reports)?, None))
        }
        Selection::Range(range) => {
            let take = range.limit.saturating_add(1);
            let read = s.store.reports_between(range.from, range.to, take)?;
            let page = range.page(read, |r| r.window.start);
            let items = views(s, &page.items)?;
            Ok((items, page.next_from.map(|t| range.next_url(t))))
        }
    }
}

/// Each record with what the ledger holds of its window (one key each).
fn views(
    s: &HttpState,
    records: &[crate::store::ReportRecord],
) -> Result<Vec<ClosedWindowView>, crate::store::StoreError> {
    records
        .iter()
        .map(|r| {
            let told = s.store.told(r.window.id())?;
            Ok(ClosedWindowView::from_record(r, told.as_ref()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
