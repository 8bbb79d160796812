//! A summary's queries run beside the outbox, not in it: a period's `$facet` does the work of
//! all its windows (up to an hour's limit), and reports that fall due meanwhile go out without
//! waiting for it. This module owns the queries in flight, their answers until a round takes
//! them, and when a failed one is tried again ([`super::retry`]). Dropping it (shutdown) aborts
//! the queries in flight; their summaries stay queued and are prepared after the restart.

use super::retry::PrepareRetries;
use crate::config::Config;
use crate::limits;
use crate::period::PeriodSpec;
use crate::reconcile::{self, PeriodTotals, ReconcileError};
use crate::window::{Totals, Window, WindowId};
use bson::Document;
use mongodb::Collection;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::{AbortHandle, JoinSet};
use tracing::{error, info};

/// How long a summary's query is started again after quick failures (a dropped connection):
/// an attempt that ran to its limit is not repeated at once, since it would take as long
/// again; the retry schedule takes over.
const SUMMARY_PATIENCE: Duration = Duration::from_secs(20);
/// The same for the previous period's query, which is context (the summary says `n/a`).
const PREVIOUS_PATIENCE: Duration = Duration::from_secs(20);

/// The database's answers for one summary.
#[derive(Debug)]
pub(super) struct Queried {
    /// The period's own figures: without them nothing is posted.
    pub figures: Result<PeriodTotals, ReconcileError>,
    /// The previous period's totals, for the comparison (`n/a` when they failed).
    pub previous: Result<Totals, ReconcileError>,
}

/// What a round finds for a queued summary.
#[derive(Debug)]
pub(super) enum Answer {
    /// Its queries are done.
    Ready(Queried),
    /// Its queries run, or are not due yet after a failure.
    NotYet,
}

/// The summaries' queries in flight and their answers, and the retry schedule.
#[derive(Debug, Default)]
pub(super) struct SummaryWork {
    /// When each summary whose preparation failed is tried again.
    pub retries: PrepareRetries,
    /// The queries in flight; aborted when dropped.
    running: JoinSet<(WindowId, Queried)>,
    /// The period of each task in flight, by task (a task that panics reports only its id).
    periods: HashMap<tokio::task::Id, WindowId>,
    /// Answers a round has not taken yet, by period.
    answered: BTreeMap<WindowId, Queried>,
}

impl SummaryWork {
    /// The answer for the summary of `period`, taken; or, when none is in flight and it is
    /// due, its queries started (answered in a later round).
    pub(super) fn take_or_start(
        &mut self,
        coll: &Collection<Document>,
        config: &Arc<Config>,
        spec: PeriodSpec,
        period: Window,
        now: Instant,
    ) -> Answer {
        let id = period.id();
        if let Some(queried) = self.answered.remove(&id) {
            return Answer::Ready(queried);
        }
        let in_flight = self.periods.values().any(|p| *p == id);
        if !in_flight && self.retries.is_due(id, now) {
            let task: AbortHandle =
                self.running
                    .spawn(query(coll.clone(), Arc::clone(config), spec, period));
            self.periods.insert(task.id(), id);
            info!(period = %id, "Summary queries started.");
        }
        Answer::NotYet
    }

    /// Waits until a query in flight finishes and keeps its answer for the next round; never
    /// returns while none is in flight. Cancel-safe (a `select!` branch of the outbox loop).
    pub(super) async fn answer(&mut self) {
        let Some(joined) = self.running.join_next_with_id().await else {
            return std::future::pending().await;
        };
        match joined {
            Ok((task, (period, queried))) => {
                self.periods.remove(&task);
                self.answered.insert(period, queried);
            }
            Err(e) => {
                // A panic (a bug): the summary is tried again on the retry schedule.
                if let Some(period) = self.periods.remove(&e.id()) {
                    error!(error = %e, %period, "The summary's queries stopped.");
                    self.retries.failed(period, Instant::now());
                }
            }
        }
    }
}

/// The period's `$facet` and the previous period's, together, each limited per window of its
/// period ([`limits::period_query`]).
async fn query(
    coll: Collection<Document>,
    config: Arc<Config>,
    spec: PeriodSpec,
    period: Window,
) -> (WindowId, Queried) {
    let windows = spec.windows_in(&period);
    let previous_period = spec.previous(&period);
    let previous_limit = limits::period_query(
        config.query_timeout,
        spec.windows_in(&previous_period).len(),
    );
    let (figures, previous) = futures::join!(
        reconcile::with_retry(&period, SUMMARY_PATIENCE, || {
            reconcile::query_period(&coll, &config, &period, &windows)
        }),
        reconcile::with_retry(&previous_period, PREVIOUS_PATIENCE, || {
            reconcile::query_limited(&coll, &config, &previous_period, previous_limit)
        }),
    );
    (period.id(), Queried { figures, previous })
}
