//! Alerts to Slack (the Lambda had them): stream down, reconciliation failed, history lost,
//! report or summary undeliverable; and silent utilities ([`crate::silence`]). At most one per
//! kind per 30 minutes, per utility for silent utilities (a silent IKEDC does not hold back a
//! silent EKEDC); a "resumed" notice follows only a silence alert that went out, so it is not
//! limited again. Best effort, never blocking the caller. Worded in [`crate::report::alerts`],
//! from our own values: never a secret.

pub use crate::report::alerts::{Alert, AlertKind};
use crate::sink::Sink;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tracing::warn;

const MIN_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// What the rate limit counts alerts by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LimitKey {
    Kind(AlertKind),
    /// Per kind and utility (the stored name).
    Utility(AlertKind, String),
}

impl LimitKey {
    /// `None`: not limited (it follows an alert that was).
    fn of(alert: &Alert) -> Option<LimitKey> {
        match (alert.kind(), alert.utility()) {
            (AlertKind::Resumed, _) => None,
            (kind, Some(utility)) => Some(LimitKey::Utility(kind, utility.to_owned())),
            (kind, None) => Some(LimitKey::Kind(kind)),
        }
    }
}

#[derive(Clone)]
pub struct Alerter {
    sink: Sink,
    /// When each key's last alert went out.
    last: Arc<Mutex<HashMap<LimitKey, Instant>>>,
}

impl Alerter {
    pub fn new(sink: Sink) -> Alerter {
        Alerter {
            sink,
            last: Arc::default(),
        }
    }

    /// Sends `alert` unless one of its kind (and utility) went out in the last 30 minutes;
    /// says whether it goes out.
    pub(crate) fn raise(&self, alert: Alert) -> bool {
        if !self.admit(&alert, Instant::now()) {
            return false;
        }
        self.send(alert);
        true
    }

    /// Whether `alert` may go out at `now`, noting it if so.
    fn admit(&self, alert: &Alert, now: Instant) -> bool {
        let Some(key) = LimitKey::of(alert) else {
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
        tokio::spawn(async move {
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
            utility: utility.into(),
            silent_for: Duration::from_secs(1800),
            usual_sales: 42,
            period: Duration::from_secs(1800),
        }
    }

    #[test]
    fn silent_alerts_are_limited_per_utility() {
        let alerter = Alerter::new(Sink::Stdout);
        let t0 = Instant::now();
        assert!(alerter.admit(&silent("IKEDC"), t0));
        assert!(!alerter.admit(&silent("IKEDC"), t0 + Duration::from_secs(60)));
        // Another utility, and another kind, are not held back by IKEDC's.
        assert!(alerter.admit(&silent("EKEDC"), t0 + Duration::from_secs(60)));
        assert!(alerter.admit(&Alert::StreamDown { down_secs: 300 }, t0));
        assert!(!alerter.admit(&Alert::StreamDown { down_secs: 600 }, t0));
        // Resumed notices follow an alert that went out: never held back themselves.
        let resumed = Alert::Resumed {
            utility: "IKEDC".into(),
            lasted: Duration::from_secs(60),
        };
        assert!(alerter.admit(&resumed, t0));
        assert!(alerter.admit(&resumed, t0));
        assert!(alerter.admit(&silent("IKEDC"), t0 + MIN_INTERVAL));
    }
}
