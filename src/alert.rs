//! Alerts to Slack (the Lambda had them): stream down, reconciliation failed, history lost,
//! report or summary undeliverable; and silent utilities ([`crate::silence`]). At most one per
//! kind per 30 minutes. Silent-utility alerts and "resumed" notices are limited by the silence
//! machine instead ([`crate::silence::machine`]: per utility, grouped per step, remembered
//! across restarts), so they pass here unlimited. An admitted alert is queued in the outbox
//! (one flushed write, off the async workers, on the supervisor's tracker of short-lived tasks
//! which shutdown waits for) and posted by the outbox's one loop like every other message:
//! retried with the same backoff, marked sent after the 2xx. Never blocking the caller.
//! Worded in [`crate::report::alerts`], from our own values: never a secret.

pub use crate::report::alerts::{Alert, AlertKind, Resumption, Silenced};
use crate::store::{AlertRecord, Store};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::task::TaskTracker;
use tracing::warn;

/// At most one alert of a kind this often (per utility for silences, in the silence machine).
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// What the rate limit counts alerts by: their kind, or nothing for the kinds the silence
/// machine limits itself.
fn limit_key(alert: &Alert) -> Option<AlertKind> {
    match alert.kind() {
        AlertKind::Silent | AlertKind::Resumed | AlertKind::Unwatched => None,
        kind => Some(kind),
    }
}

#[derive(Clone)]
pub struct Alerter {
    /// Where alerts are queued: the outbox, which posts them like every other message.
    store: Store,
    /// Wakes the outbox's loop for a queued alert.
    outbox: Arc<Notify>,
    /// When each kind's last alert went out.
    last: Arc<Mutex<HashMap<AlertKind, Instant>>>,
    /// The last alert's id (Unix ms, one more for each alert raised in the same
    /// millisecond): given when raised, so alerts queue in the order they were raised and
    /// two raised together never share a key.
    last_id: Arc<std::sync::atomic::AtomicI64>,
    /// Owns the queueing writes in flight (a flushed sled write each, off the async workers),
    /// waited for on the way out.
    writes: TaskTracker,
}

impl Alerter {
    /// Queues on a tracker of its own that nothing waits for: outside the service (tests).
    pub fn new(store: Store, outbox: Arc<Notify>) -> Alerter {
        Alerter::supervised(store, outbox, TaskTracker::new())
    }

    /// Queues as tasks of `writes`, which the supervisor waits for on the way out.
    pub(crate) fn supervised(store: Store, outbox: Arc<Notify>, writes: TaskTracker) -> Alerter {
        Alerter {
            store,
            outbox,
            last: Arc::default(),
            last_id: Arc::default(),
            writes,
        }
    }

    /// Queues `alert` in the outbox unless one of its kind went out in the last 30 minutes
    /// (silences and "resumed" notices: always); says whether it goes out.
    pub(crate) fn raise(&self, alert: Alert) -> bool {
        if !self.admit(&alert, Instant::now()) {
            return false;
        }
        self.queue(alert);
        true
    }

    /// Whether `alert` may go out at `now`, noting it if so.
    fn admit(&self, alert: &Alert, now: Instant) -> bool {
        let Some(key) = limit_key(alert) else {
            return true;
        };
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last
            .get(&key)
            .is_some_and(|t| now.saturating_duration_since(*t) < MIN_INTERVAL)
        {
            return false;
        }
        last.insert(key, now);
        true
    }

    fn queue(&self, alert: Alert) {
        use std::sync::atomic::Ordering::SeqCst;
        let kind = format!("{:?}", alert.kind());
        let now = Utc::now().timestamp_millis();
        let prev = self
            .last_id
            .fetch_update(SeqCst, SeqCst, |last| Some(now.max(last.saturating_add(1))))
            .unwrap_or(now);
        let id = now.max(prev.saturating_add(1));
        let (store, outbox) = (self.store.clone(), self.outbox.clone());
        self.writes.spawn_blocking(move || {
            let text = alert.to_string();
            let queued = store.queue_alert(id, |id| {
                AlertRecord::raised(id, kind.clone(), text, Utc::now())
            });
            match queued {
                Ok(_) => outbox.notify_one(),
                Err(error) => warn!(%error, kind, "Alert could not be queued."),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silent(utility: &str) -> Alert {
        Alert::Silent {
            silences: vec![Silenced {
                utility: utility.into(),
                silent_for: Duration::from_secs(1800),
                usual_sales: 42,
            }],
            period: Duration::from_secs(1800),
        }
    }

    #[test]
    fn alerts_are_limited_per_kind_and_silences_by_the_machine() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let alerter = Alerter::new(store, Arc::default());
        let t0 = Instant::now();
        assert!(alerter.admit(&Alert::StreamDown { down_secs: 300 }, t0));
        assert!(!alerter.admit(&Alert::StreamDown { down_secs: 600 }, t0));
        assert!(alerter.admit(&Alert::HistoryLost { code: 286 }, t0));
        assert!(alerter.admit(&Alert::StreamDown { down_secs: 900 }, t0 + MIN_INTERVAL));
        // Silences and their ends are limited (and grouped) by the silence machine.
        let resumed = Alert::Resumed {
            resumptions: vec![Resumption {
                utility: "IKEDC".into(),
                lasted: Duration::from_secs(60),
            }],
        };
        for _ in 0..2 {
            assert!(alerter.admit(&silent("IKEDC"), t0));
            assert!(alerter.admit(&resumed, t0));
        }
    }
}
