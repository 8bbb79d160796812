//! Alerts to Slack (the Lambda had them): stream down, reconciliation failed, history lost,
//! report or summary undeliverable; and silent utilities ([`crate::silence`]). At most one per
//! kind per 30 minutes. Silent-utility alerts and "resumed" notices are limited by the silence
//! machine instead ([`crate::silence::machine`]: per utility, grouped per step, remembered
//! across restarts), so they pass here unlimited. Best effort, never blocking the caller: each
//! send is a task of its own on the supervisor's tracker of short-lived tasks
//! ([`crate::supervisor`]), which shutdown waits for, within a bound.
//! Worded in [`crate::report::alerts`], from our own values: never a secret.

pub use crate::report::alerts::{Alert, AlertKind, Resumption, Silenced};
use crate::sink::Sink;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
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
    sink: Sink,
    /// When each kind's last alert went out.
    last: Arc<Mutex<HashMap<AlertKind, Instant>>>,
    /// Owns the sends in flight. A task per send rather than one alert task fed by a channel:
    /// alerts are few (limited per kind), a slow send must not hold up the next kind's, and a
    /// tracker is all shutdown needs to wait for them; a channel would add a task to
    /// supervise, its queue and its draining.
    sends: TaskTracker,
}

impl Alerter {
    /// Sends on a tracker of its own that nothing waits for: outside the service (tests).
    pub fn new(sink: Sink) -> Alerter {
        Alerter::supervised(sink, TaskTracker::new())
    }

    /// Sends as tasks of `sends`, which the supervisor waits for on the way out.
    pub(crate) fn supervised(sink: Sink, sends: TaskTracker) -> Alerter {
        Alerter {
            sink,
            last: Arc::default(),
            sends,
        }
    }

    /// Sends `alert` unless one of its kind went out in the last 30 minutes (silences and
    /// "resumed" notices: always); says whether it goes out.
    pub(crate) fn raise(&self, alert: Alert) -> bool {
        if !self.admit(&alert, Instant::now()) {
            return false;
        }
        self.send(alert);
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

    fn send(&self, alert: Alert) {
        let kind = alert.kind();
        let sink = self.sink.clone();
        self.sends.spawn(async move {
            let payload = json!({ "text": alert.to_string() });
            if let Err(error) = sink.send(&payload, Duration::from_secs(60)).await {
                warn!(%error, ?kind, "Alert could not be sent.");
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
        let alerter = Alerter::new(Sink::Stdout);
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
