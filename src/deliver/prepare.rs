//! Preparing a closed window's report: reconcile it, decide its notes (how the stream compared
//! with the database, corrections for earlier windows whose sales changed), render its
//! messages and fix what it settles. The record then moves to `Ready`; nothing of it is
//! applied before it is delivered.

use super::late::{self, Known, Ledger, Pending, Step, Unposted};
use super::{DeliverError, Deliverer};
use crate::alert::Alert;
use crate::reconcile;
use crate::report::notes::{Change, Note};
use crate::report::{self, ReportView};
use crate::store::Outboxed;
use crate::store::{unsettled, Messages, Reconciled, ReportRecord, Settlement, Source, Stage};
use crate::telemetry;
use crate::window::{earlier_by, ClosedBy, Tally, Totals, WindowId};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::{error, warn};

/// How long one round keeps retrying the reconciliation query before posting stream totals.
const RECONCILE_PATIENCE: Duration = Duration::from_secs(120);

impl Deliverer {
    /// Reconciles and fixes the messages (the database's numbers; the stream's if it failed),
    /// with corrections for earlier windows whose sales changed. What it settles is kept on
    /// the record and applied only once the report is delivered.
    pub(super) async fn prepare(&self, record: &mut ReportRecord) -> Result<(), DeliverError> {
        let id = record.window.id();
        // Read before any query below begins: every change seen so far was committed before,
        // so each query counts those of its window.
        // The change tallies (one key per window with changes, pruned by retention) are read
        // off the async workers.
        let store = self.store.clone();
        let (seen, settled, (any_seen, any_settled)) = tokio::task::spawn_blocking(move || {
            Ok::<_, crate::store::StoreError>((
                store.late()?,
                store.settled_late()?,
                store.changes_anywhere()?,
            ))
        })
        .await
        .map_err(|e| {
            crate::store::StoreError::Damaged(format!("reading changes stopped: {e}"))
        })??;
        let anywhere = match unsettled(any_seen, Some(&any_settled)) {
            Some(_) => Pending::Changes,
            None => Pending::Nothing,
        };
        let horizon_start = earlier_by(Utc::now(), self.config.restate_horizon);
        let records = self.earlier_records(record, &seen, &settled, anywhere, horizon_start)?;
        // The comparisons are context, not the report: from the ledger (what the channel was
        // told), beside its own query, so a window the ledger lacks and the database cannot
        // give now says n/a and never fails it.
        let (reconciled, compared) = futures::join!(
            reconcile::query_with_retry(
                &self.coll,
                &self.config,
                &record.window,
                RECONCILE_PATIENCE,
            ),
            self.compare(&record.window),
        );
        let compared = compared?;
        let reconciled = match reconciled {
            Ok(totals) => {
                telemetry::ReadBy::Report.read(totals.total().count);
                Reconciled::Database(totals)
            }
            Err(e) => {
                error!(error = %e, window = %id, "Reconciliation failed; posting the streamed totals.");
                self.alerts.raise(Alert::ReconcileFailed {
                    window: id,
                    error: e.to_string(),
                });
                Reconciled::Failed {
                    error: e.to_string(),
                }
            }
        };
        if let Some(db) = reconciled.database().filter(|db| **db != record.streamed) {
            let (streamed, database) = (record.streamed.total(), db.total());
            warn!(
                window = %id,
                streamed_revenue = %streamed.revenue,
                streamed_count = streamed.count,
                database_revenue = %database.revenue,
                database_count = database.count,
                partial_stream = record.streamed_partial,
                "Streamed totals differ from the database; posting the database's."
            );
            metrics::counter!(telemetry::MISMATCHES_TOTAL).increment(1);
        }
        let mut notes = reconciliation_notes(record, &reconciled);
        // Only a report Slack took told the channel anything to correct: a refused one's
        // window is counted as never reported.
        let known: BTreeMap<WindowId, Known> = records
            .iter()
            .filter_map(|(&w, r)| match r.stage() {
                Stage::Sent => Some((w, Known::Reported(r.window))),
                Stage::Closed | Stage::Ready => Some((w, Known::Pending)),
                Stage::Undeliverable => None,
            })
            .collect();
        let ledger = Ledger {
            seen: &seen,
            settled: &settled,
            anywhere,
            reports: &known,
            horizon_start,
        };
        let mut settles = Settlement::default();
        let mut all_rechecked = true;
        for step in late::plan(id, reconciled.database().is_some(), &ledger) {
            match step {
                Step::CountedByOwnQuery { seen } => {
                    settles.marks.insert(id, seen);
                }
                Step::Unposted {
                    window,
                    seen,
                    unsettled,
                    why,
                } => {
                    warn!(%window, changes = unsettled.count, why = why.as_str(), "Changes to a closed window counted, not posted.");
                    settles.marks.insert(window, seen);
                    let tally = match why {
                        Unposted::NeverReported => &mut settles.unreported,
                        Unposted::BeyondHorizon => &mut settles.beyond_horizon,
                    };
                    tally.merge_changes(&unsettled);
                }
                Step::Recheck { window } => {
                    let Some(earlier) = records.get(&window) else {
                        continue;
                    };
                    // Measured from what the channel was told: the ledger (written with the
                    // report's `Sent` mark; pruned only past the horizon).
                    let told = match self.store.told(window)? {
                        Some(t) if t.source == Source::Reported => t.now,
                        _ => earlier.shown().clone(),
                    };
                    match self.recheck(earlier, &told).await {
                        Ok((note, now)) => {
                            settles.corrections = settles
                                .corrections
                                .saturating_add(u64::from(note.is_some()));
                            notes.extend(note);
                            settles.rechecked.insert(window, now);
                            if let Some(seen) = seen.get(&window) {
                                settles.marks.insert(window, *seen);
                            }
                        }
                        Err(note) => {
                            all_rechecked = false;
                            notes.push(note);
                        }
                    }
                }
            }
        }
        if anywhere == Pending::Changes && all_rechecked {
            settles.anywhere = Some(any_seen);
        }
        let view = ReportView {
            window: record.window,
            tz: self.config.window.tz(),
            totals: reconciled.database().unwrap_or(&record.streamed),
            notes: notes.iter().flat_map(Note::lines).collect(),
            compared: Some(&compared),
        };
        let mut parts = report::render_parts(&view).into_iter();
        // `render_parts` always gives one message at least; the whole report is the fallback.
        let first = parts.next().unwrap_or_else(|| report::render(&view));
        let messages = Messages::new(first, parts.collect());
        record.compared = Some(compared);
        record.ready(reconciled, messages, settles, Utc::now())?;
        Ok(())
    }

    /// The records of the earlier windows this report may correct: those with changes no
    /// report settled yet, and, when changes whose window is unknown wait, every window in the
    /// horizon. Read one by one or by range: never every record.
    fn earlier_records(
        &self,
        record: &ReportRecord,
        seen: &BTreeMap<WindowId, Tally>,
        settled: &BTreeMap<WindowId, Tally>,
        anywhere: Pending,
        horizon_start: DateTime<Utc>,
    ) -> Result<BTreeMap<WindowId, ReportRecord>, DeliverError> {
        let id = record.window.id();
        let mut records = BTreeMap::new();
        for (&w, &changes) in seen.range(..id) {
            if unsettled(changes, settled.get(&w)).is_some() {
                if let Some(r) = self.store.report(w)? {
                    records.insert(w, r);
                }
            }
        }
        if anywhere == Pending::Changes {
            // A window ending after the horizon's start begins less than a window before it.
            let from = self.config.window.window_of(horizon_start).start;
            for r in
                self.store
                    .reports_between(Some(from), Some(record.window.start), usize::MAX)?
            {
                records.insert(r.window.id(), r);
            }
        }
        Ok(records)
    }

    /// An earlier window against the database now: the correction (none if nothing changed)
    /// and the new figures; or, if the database cannot say now, the note saying so.
    async fn recheck(
        &self,
        earlier: &ReportRecord,
        told: &Totals,
    ) -> Result<(Option<Note>, Totals), Note> {
        let label = report::window_label(&earlier.window, self.config.window.tz());
        metrics::counter!(telemetry::RECHECK_QUERIES_TOTAL).increment(1);
        match reconcile::query_with_retry(
            &self.coll,
            &self.config,
            &earlier.window,
            RECONCILE_PATIENCE,
        )
        .await
        {
            Ok(now) => {
                telemetry::ReadBy::Recheck.read(now.total().count);
                let by_utility = Change::by_utility(told, &now);
                let note = (!by_utility.is_empty()).then(|| Note::Correction {
                    label,
                    change: Change::between(told, &now),
                    by_utility,
                });
                Ok((note, now))
            }
            Err(error) => {
                warn!(%error, window = %earlier.window.id(), "Re-checking a window for changes failed; the next report tries again.");
                Err(Note::NotYetChecked { label })
            }
        }
    }
}

/// Which notes say how the stream compared with the database: none when they agreed, or when
/// a rebuilt stream differed (the rebuild is noted instead); the reason otherwise.
fn reconciliation_notes(record: &ReportRecord, reconciled: &Reconciled) -> Vec<Note> {
    let streamed = record.streamed.total();
    let mut notes = match reconciled {
        Reconciled::Failed { .. } => vec![Note::NotReconciled { streamed }],
        Reconciled::Database(db) if *db == record.streamed => vec![],
        Reconciled::Database(_) if record.streamed_partial => {
            vec![Note::BeganMidWindow { streamed }]
        }
        Reconciled::Database(_) if record.recomputed => vec![],
        Reconciled::Database(_) if record.closed_by != ClosedBy::Stream => {
            vec![Note::ClosedEarly {
                streamed,
                closed_by: record.closed_by,
            }]
        }
        Reconciled::Database(_) => vec![Note::StreamDiffered { streamed }],
    };
    if record.recomputed {
        notes.push(Note::Recomputed);
    }
    notes
}
