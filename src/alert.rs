//! Error alerts to Slack (the Lambda had them): stream down, reconciliation failed, history
//! lost, report undeliverable. At most one per kind per 30 minutes; best effort, never
//! blocking the caller. Worded in [`crate::report::alerts`], from our own values: never a
//! secret.

pub use crate::report::alerts::{Alert, AlertKind};
use crate::sink::Sink;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::warn;

const MIN_INTERVAL: Duration = Duration::from_secs(30 * 60);

#[derive(Clone)]
pub struct Alerter {
    sink: Sink,
    last: Arc<Mutex<HashMap<AlertKind, Instant>>>,
}

impl Alerter {
    pub fn new(sink: Sink) -> Alerter {
        Alerter {
            sink,
            last: Arc::default(),
        }
    }

    /// Sends `alert` unless one of its kind went out in the last 30 minutes.
    pub(crate) fn raise(&self, alert: Alert) {
        let kind = alert.kind();
        {
            let mut last = self.last.lock().expect("alert lock");
            if last.get(&kind).is_some_and(|t| t.elapsed() < MIN_INTERVAL) {
                return;
            }
            last.insert(kind, Instant::now());
        }
        let sink = self.sink.clone();
        tokio::spawn(async move {
            let payload = json!({ "text": alert.to_string() });
            if let Err(error) = sink.send(&payload, Duration::from_secs(60)).await {
                warn!(%error, ?kind, "Alert could not be sent.");
            }
        });
    }
}
