//! The lease loop of one instance: drives the [`Lease`] machine with the lease's document
//! ([`LeaseStore`]) and publishes whether this instance may post, and under which epoch, as a
//! [`Fence`]: the epoch and the instant (by the monotonic clock) its own lease runs into the
//! margin. A poster checks the fence at the moment it posts, so a leader paused past its
//! lease finds it expired when it wakes, before anything is renewed. Hands the lease back on
//! shutdown.

use super::lease::{Action, Lease, Outcome, Role};
use super::store::LeaseStore;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// This instance may post under `epoch` until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub epoch: u64,
    pub until: Instant,
}

impl Fence {
    /// The epoch to post under now, if the fence still holds.
    pub fn epoch_now(fence: &Option<Fence>) -> Option<u64> {
        fence.filter(|f| Instant::now() < f.until).map(|f| f.epoch)
    }
}

/// Runs the lease loop until `stop`, publishing the fence on `fence`.
pub async fn run(store: LeaseStore, fence: watch::Sender<Option<Fence>>, stop: CancellationToken) {
    let mut lease = Lease::new(store.length, Instant::now());
    let mut led: Option<u64> = None;
    loop {
        let action = lease.poll(Instant::now());
        let sent = Instant::now();
        let outcome = match action {
            Action::Wait { until } => {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = stop.cancelled() => break,
                }
                continue;
            }
            Action::Acquire => store.acquire().await,
            Action::Renew { epoch } => store.renew(epoch).await,
        };
        let outcome = outcome.unwrap_or_else(|error| {
            warn!(%error, "The lease could not be read or written; trying again.");
            Outcome::Failed
        });
        lease.answered(sent, Instant::now(), outcome);
        let now = lease.may_post(Instant::now());
        fence.send_replace(match lease.role() {
            Role::Leader { epoch, .. } if now.is_some() => Some(Fence {
                epoch,
                until: lease.fenced_until().unwrap_or_else(Instant::now),
            }),
            _ => None,
        });
        if now != led {
            match now {
                Some(epoch) => info!(epoch, instance = %store.instance, "This instance leads."),
                None => info!(instance = %store.instance, "This instance is a standby."),
            }
            led = now;
        }
    }
    fence.send_replace(None);
    if let Some(epoch) = led {
        if let Err(error) = store.release(epoch).await {
            warn!(%error, "The lease could not be handed back; it expires by itself.");
        }
    }
}
