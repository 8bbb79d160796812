//! Reading outbox records as stored: the current shape (the state and what it holds under
//! `outbox`), or format 1's (a bare `delivery` tag beside `reconciliation`, `payload`,
//! `follow_ups`, `parts_sent` and `settles`, for every state). A record is rewritten in the
//! current shape the next time it is saved; reports delivered before an upgrade keep format 1
//! on disk and are read through here.

use super::{
    Delivery, DeliveryStatus, Messages, Ready, Reconciled, ReportRecord, Sent, Undeliverable,
};
use crate::compare::Comparison;
use crate::store::Settlement;
use crate::window::{ClosedBy, Totals, Window};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// Either shape: the fields both share, the current state, and format 1's loose fields.
#[derive(Deserialize)]
pub(super) struct Stored {
    window: Window,
    streamed: Totals,
    streamed_partial: bool,
    /// Not in format 1, nor in format 2 before it was added.
    #[serde(default)]
    closed_by: ClosedBy,
    events_applied: u64,
    #[serde(default)]
    recomputed: bool,
    #[serde(default)]
    rechecked: Option<Totals>,
    #[serde(default)]
    compared: Option<Comparison>,
    #[serde(default)]
    queries_started: Option<DateTime<Utc>>,
    #[serde(default)]
    queries_unfinished: u32,
    attempts: u32,
    last_error: Option<String>,
    updated_at: DateTime<Utc>,
    /// The current shape's state.
    outbox: Option<Delivery>,
    /// Format 1 from here on.
    delivery: Option<DeliveryStatus>,
    reconciliation: Option<ReconciliationV1>,
    #[serde(default)]
    settles: Settlement,
    payload: Option<Value>,
    #[serde(default)]
    follow_ups: Vec<Value>,
    #[serde(default)]
    parts_sent: usize,
}

/// Format 1's reconciliation: `database` unless the query failed, then `error`.
#[derive(Deserialize)]
struct ReconciliationV1 {
    database: Option<Totals>,
    error: Option<String>,
}

impl From<ReconciliationV1> for Reconciled {
    fn from(r: ReconciliationV1) -> Reconciled {
        match r.database {
            Some(totals) => Reconciled::Database(totals),
            None => Reconciled::Failed {
                error: r.error.unwrap_or_else(|| "cause not recorded".to_owned()),
            },
        }
    }
}

impl TryFrom<Stored> for ReportRecord {
    type Error = String;

    fn try_from(s: Stored) -> Result<ReportRecord, String> {
        let delivery = match (s.outbox, s.delivery) {
            (Some(current), _) => current,
            (None, Some(old)) => from_v1(
                old,
                s.reconciliation.map(Reconciled::from),
                s.payload,
                s.follow_ups,
                s.parts_sent,
                s.settles,
            )?,
            (None, None) => return Err("missing field `outbox`".to_owned()),
        };
        Ok(ReportRecord {
            window: s.window,
            streamed: s.streamed,
            streamed_partial: s.streamed_partial,
            closed_by: s.closed_by,
            events_applied: s.events_applied,
            recomputed: s.recomputed,
            rechecked: s.rechecked,
            compared: s.compared,
            delivery,
            queries_started: s.queries_started,
            queries_unfinished: s.queries_unfinished,
            attempts: s.attempts,
            last_error: s.last_error,
            updated_at: s.updated_at,
        })
    }
}

/// Format 1's state. A ready record with nothing to post (format 1 skipped it for ever as if
/// delivered, though no message of it ever went) is closed again, so it is prepared and posted;
/// the states format 1 could never write are refused.
fn from_v1(
    state: DeliveryStatus,
    reconciled: Option<Reconciled>,
    payload: Option<Value>,
    follow_ups: Vec<Value>,
    parts_sent: usize,
    settles: Settlement,
) -> Result<Delivery, String> {
    let messages = payload.map(|first| {
        let mut m = Messages::new(first, follow_ups);
        m.accepted = parts_sent.min(m.len());
        m
    });
    let impossible = |what: &str| format!("a format-1 record {what}");
    Ok(match (state, reconciled, messages) {
        (DeliveryStatus::Closed, _, _) => Delivery::Closed,
        (DeliveryStatus::Ready, Some(reconciled), Some(messages)) => Delivery::Ready(Ready {
            reconciled,
            messages,
            settles,
        }),
        (DeliveryStatus::Ready, _, _) => Delivery::Closed,
        (DeliveryStatus::Sent { at }, Some(reconciled), messages) => Delivery::Sent(Sent {
            at,
            reconciled,
            parts: messages.map_or(parts_sent, |m| m.len()),
            settled: settles,
        }),
        (DeliveryStatus::Sent { .. }, None, _) => {
            return Err(impossible("sent without a reconciliation"))
        }
        (DeliveryStatus::Undeliverable { reason }, Some(reconciled), Some(messages)) => {
            Delivery::Undeliverable(Undeliverable {
                reason,
                reconciled,
                messages,
            })
        }
        (DeliveryStatus::Undeliverable { .. }, _, _) => {
            return Err(impossible(
                "undeliverable without a reconciliation or a message",
            ))
        }
    })
}
