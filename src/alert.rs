//! Error alerts to Slack (the Lambda had them): stream down, reconciliation failed, history
//! lost, report undeliverable. At most one per kind per 30 minutes; best effort, never
//! blocking the caller; the text is built by us and never contains a secret.

use crate::deliver::Sink;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::warn;

const MIN_INTERVAL: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    StreamDown,
    ReconcileFailed,
    HistoryLost,
    Undeliverable,
    CatchUpLimited,
}

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

    /// Sends `message` unless an alert of this kind went out in the last 30 minutes.
    pub fn raise(&self, kind: AlertKind, message: String) {
        {
            let mut last = self.last.lock().expect("alert lock");
            if last.get(&kind).is_some_and(|t| t.elapsed() < MIN_INTERVAL) {
                return;
            }
            last.insert(kind, Instant::now());
        }
        let sink = self.sink.clone();
        tokio::spawn(async move {
            let payload = json!({ "text": format!("🚨 power-revenue: {message}") });
            if let Err(error) = sink.send(&payload, Duration::from_secs(60)).await {
                warn!(%error, ?kind, "Alert could not be sent.");
            }
        });
    }
}
