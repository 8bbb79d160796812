//! Retention: every hour (and at start), what is past `POWER_REVENUE_RETENTION` leaves the
//! store (closed windows' records, their changes, ledger figures, summaries), and activity
//! buckets past what a silence baseline reaches. State stays bounded by time, not by how long
//! the service has run. The store's work runs off the async workers.

use crate::config::{Config, Silence};
use crate::store::{Store, StoreError};
use crate::window::earlier_by;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

const EVERY: Duration = Duration::from_secs(3600);
/// What baselines reach back: seven days and a silence period; a day more is kept.
const ACTIVITY_KEPT: Duration = Duration::from_secs(8 * 86_400);

/// Before when records and activity go, at `now`.
pub(crate) fn cutoffs(config: &Config, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let silence = match config.silence {
        Silence::After { period, .. } => period,
        Silence::Off => Duration::ZERO,
    };
    (
        earlier_by(now, config.retention),
        earlier_by(now, ACTIVITY_KEPT.saturating_add(silence)),
    )
}

/// Prunes now and every hour until `stop`.
pub(crate) async fn run(
    store: Store,
    config: Arc<Config>,
    stop: CancellationToken,
) -> Result<(), StoreError> {
    loop {
        let (before, activity_before) = cutoffs(&config, Utc::now());
        let pruning = store.clone();
        let pruned = tokio::task::spawn_blocking(move || pruning.prune(before, activity_before))
            .await
            .map_err(|e| StoreError::Damaged(format!("pruning stopped: {e}")))?;
        match pruned {
            Ok(pruned) if pruned.keys > 0 => {
                info!(keys = pruned.keys, %before, "Pruned state past the retention.");
            }
            Ok(_) => {}
            // Housekeeping: a disk hiccup or an unreadable key must not stop the service (it
            // would again at every start); the next hour prunes what this one could not.
            Err(error) => {
                warn!(%error, retryable = error.is_retryable(), "Pruning failed; trying again in an hour.");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.cancelled() => return Ok(()),
        }
    }
}
