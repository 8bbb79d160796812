//! The figures a report or summary cites for other windows: what the channel was told (the
//! ledger), never a new reading of a window it already holds. A window the ledger lacks (from
//! before the service's first start, or never delivered) is read from the database once and
//! kept there, so the next citation reads the ledger too.

use super::Deliverer;
use crate::compare::{self, Against, Compared, Comparison};
use crate::reconcile;
use crate::store::StoreError;
use crate::telemetry;
use crate::window::{Totals, Window};
use std::time::Duration;
use tracing::{info, warn};

/// How long one read of a window the ledger lacks keeps retrying: less than a report's own
/// query, since these figures are context and must not hold the report back for long.
const IMPORT_PATIENCE: Duration = Duration::from_secs(20);

impl Deliverer {
    /// What the channel was told of `w`, per utility; `None` when the ledger lacks it and the
    /// database cannot say now (the message says `n/a`).
    pub(super) async fn told(&self, w: Window, cites: &str) -> Result<Option<Totals>, StoreError> {
        if let Some(told) = self.store.told_or_covered(&w)? {
            return Ok(Some(told));
        }
        let read = if crate::failpoint::fails("history-query") {
            Err(reconcile::ReconcileError::BadResult(
                "failpoint history-query".into(),
            ))
        } else {
            reconcile::query_with_retry(&self.coll, &self.config, &w, IMPORT_PATIENCE).await
        };
        match read {
            Ok(figures) => {
                metrics::counter!(telemetry::IMPORTED_WINDOWS_TOTAL).increment(1);
                telemetry::ReadBy::Cited.read(figures.total().count);
                info!(window = %w.id(), cites, "A window the ledger lacked was read from the database once and kept.");
                self.store.import(w, &figures).await?;
                Ok(Some(figures))
            }
            Err(error) => {
                warn!(%error, window = %w.id(), cites, "Reading a window the ledger lacks failed; the message says n/a for it.");
                metrics::counter!(telemetry::COMPARISON_FAILURES_TOTAL).increment(1);
                Ok(None)
            }
        }
    }
}

impl Deliverer {
    /// What a report for `window` is compared with: the previous window, the same window
    /// yesterday and a week ago, as the channel was told them.
    pub(super) async fn compare(&self, window: &Window) -> Result<Comparison, StoreError> {
        let [previous, yesterday, last_week] = compare::windows(&self.config, window);
        let cite = async |(against, w): (Against, Window)| {
            Ok::<_, StoreError>(Compared {
                window: w,
                totals: self.told(w, against.as_str()).await?,
            })
        };
        // Side by side: a window the ledger lacks is a query, and a report waits for them all.
        let (previous, yesterday, last_week) =
            futures::join!(cite(previous), cite(yesterday), cite(last_week));
        Ok(Comparison {
            previous: previous?,
            yesterday: yesterday?,
            last_week: last_week?,
        })
    }
}
