//! Silent-utility alerts: a utility that usually sells at this time of day and has sold
//! nothing for `POWER_REVENUE_SILENCE` gets one Slack alert, and one "resumed" notice when it
//! sells again (or one "no longer watched" notice when its usual sales fall below the
//! minimum). Owns the watcher (this module: the thin loop), the decisions ([`machine`], pure,
//! clock injected) and the baselines ([`baseline`]: read from the activity the store keeps,
//! never a query). Sales are seen from the live totals the tailer keeps (a utility's count in
//! an open window went up). The machine's silences and alert times are kept in the store
//! (`silence/state`, written when they change) and restored at start.

pub mod baseline;
pub(crate) mod machine;

use crate::alert::{Alert, Alerter};
use crate::config::{Config, Silence};
use crate::source::Live;
use crate::store::{SilenceRecord, Store};
use crate::window::WindowId;
use chrono::{DateTime, Utc};
use machine::{Machine, SilentNow, Step, Stream};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Baselines are read again this often at most…
const MAX_REFRESH: Duration = Duration::from_secs(60);
/// …and at least this far apart (short silence periods, in tests).
const MIN_REFRESH: Duration = Duration::from_secs(1);
/// The watcher looks at the live totals this often at most (a quarter of the period when
/// that is shorter).
const MAX_TICK: Duration = Duration::from_secs(1);

/// The silent utilities right now, for the views. Written by the watcher only.
#[derive(Debug, Default)]
pub struct Board {
    /// Silent utilities, longest silent first.
    silent: Mutex<Vec<SilentNow>>,
}

impl Board {
    pub(crate) fn silent(&self) -> Vec<SilentNow> {
        self.silent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, silent: Vec<SilentNow>) {
        *self.silent.lock().unwrap_or_else(PoisonError::into_inner) = silent;
    }
}

/// Sales counts per open window and utility.
type Counts = HashMap<WindowId, HashMap<String, u64>>;

/// What the last look at the live totals found.
#[derive(Debug, Default)]
enum Look {
    /// None yet: what the open windows hold at the first look was sold before the watcher
    /// began, at times it cannot tell.
    #[default]
    First,
    /// The counts then.
    Since(Counts),
}

/// Sales seen per open window and utility at the last look: a count that went up is a sale.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// The last look.
    last: Look,
}

impl Seen {
    /// The utilities with new sales since the last look.
    pub(crate) fn look(&mut self, live: &Live) -> Vec<String> {
        let mut now: Counts = HashMap::new();
        let mut sold = Vec::new();
        for w in live.windows.iter() {
            let counts = now.entry(*w.key()).or_default();
            for (utility, tally) in &w.totals.by_utility {
                let was = match &self.last {
                    Look::First => tally.count,
                    // A window not seen before is new: all of its sales are.
                    Look::Since(before) => before
                        .get(w.key())
                        .and_then(|b| b.get(utility))
                        .copied()
                        .unwrap_or(0),
                };
                if tally.count > was {
                    sold.push(utility.clone());
                }
                counts.insert(utility.clone(), tally.count);
            }
        }
        self.last = Look::Since(now);
        sold.sort_unstable();
        sold.dedup();
        sold
    }
}

/// The watcher's loop around the [`Machine`].
pub(crate) struct Watcher {
    pub config: Arc<Config>,
    /// The tailer's live totals and stream state: where sales are seen.
    pub live: Arc<Live>,
    /// Sends the alerts (the machine limits them).
    pub alerts: Alerter,
    /// Where the machine's state outlives a restart, and the activity baselines are read from.
    pub store: Store,
    /// Where the views read the silent utilities.
    pub board: Arc<Board>,
}

impl Watcher {
    /// Runs until `stop`. Returns at once when silence alerts are off: the service then does
    /// not run it.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let Silence::After { period, min_sales } = self.config.silence else {
            return;
        };
        let mut machine = Machine::new(period, min_sales, Utc::now());
        let mut saved = match self.store.silence() {
            Ok(Some(record)) => {
                machine.restore(record.clone());
                record
            }
            Ok(None) => SilenceRecord::default(),
            Err(error) => {
                warn!(%error, "Silence state unreadable; watching afresh (a utility still silent may be alerted again).");
                SilenceRecord::default()
            }
        };
        let mut save_failing = false;
        let mut seen = Seen::default();
        let mut ticks =
            tokio::time::interval((period / 4).clamp(Duration::from_millis(100), MAX_TICK));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let every = (period / 6).clamp(MIN_REFRESH, MAX_REFRESH);
        let mut refresh_at = Instant::now();
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.cancelled() => return,
            }
            crate::failpoint::panics("silence-watcher-panics");
            if Instant::now() >= refresh_at {
                refresh_at = Instant::now() + every;
                if let Some(b) = self.baseline(period).await {
                    machine.baseline(b);
                }
            }
            let sold = seen.look(&self.live);
            let step = machine.step(Utc::now(), &sold, self.stream());
            // Saved before the alert goes out: a crash in between loses that alert rather
            // than repeating it on every start.
            let now_saved = machine.saved();
            if now_saved != saved {
                match self.store.put_silence(&now_saved).await {
                    Ok(()) => {
                        saved = now_saved;
                        if std::mem::take(&mut save_failing) {
                            info!("Silence state saved again.");
                        }
                    }
                    Err(error) => {
                        if !std::mem::replace(&mut save_failing, true) {
                            warn!(%error, retryable = error.is_retryable(), "Silence state could not be saved; retrying at the next look.");
                        }
                    }
                }
            }
            self.act(step, period, min_sales);
            let silent = machine.silent();
            if machine.has_baseline() {
                metrics::gauge!(crate::telemetry::SILENT_UTILITIES).set(silent.len() as f64);
            }
            self.board.set(silent);
        }
    }

    /// The baseline now, read off the async workers; `None` until the history the baselines
    /// reach is in the store (the import's days before the first start), so that a partial
    /// week never takes a utility out of the watched set.
    async fn baseline(&self, period: Duration) -> Option<baseline::Baseline> {
        let store = self.store.clone();
        let tz = self.config.window.tz();
        let read = tokio::task::spawn_blocking(move || {
            if !store.history_complete()? {
                return Ok(None);
            }
            baseline::read(&store, tz, Utc::now(), period).map(Some)
        })
        .await;
        match read {
            Ok(Ok(b)) => b,
            Ok(Err(error)) => {
                warn!(%error, "Silence baseline unreadable; keeping the last one.");
                None
            }
            Err(error) => {
                warn!(%error, "Silence baseline read stopped; keeping the last one.");
                None
            }
        }
    }

    fn stream(&self) -> Stream {
        if self.live.connected.load(Relaxed) && self.live.caught_up.load(Relaxed) {
            Stream::CaughtUp
        } else {
            Stream::Behind
        }
    }

    /// Logs each utility of the step; posts one alert for those fallen silent and one notice
    /// for those selling again.
    fn act(&self, step: Step, period: Duration, min_sales: u32) {
        for s in step.alert.iter().chain(&step.held_back) {
            warn!(utility = %crate::display::escaped(&s.utility), silent_secs = s.silent_for.as_secs(), usual_sales = s.usual_sales, "A utility has stopped selling.");
        }
        for r in &step.resumed {
            info!(utility = %crate::display::escaped(&r.utility), silent_secs = r.lasted.as_secs(), "A silent utility sells again.");
        }
        if !step.alert.is_empty() {
            let n = step.alert.len() as u64;
            self.alerts.raise(Alert::Silent {
                silences: step.alert,
                period,
            });
            metrics::counter!(crate::telemetry::SILENCE_ALERTS_TOTAL).increment(n);
        }
        if !step.resumed.is_empty() {
            let n = step.resumed.len() as u64;
            self.alerts.raise(Alert::Resumed {
                resumptions: step.resumed,
            });
            metrics::counter!(crate::telemetry::SILENCE_RESUMED_TOTAL).increment(n);
        }
        for u in &step.unwatched {
            info!(utility = %crate::display::escaped(&u.utility), silent_secs = u.lasted.as_secs(), "A silent utility no longer usually sells enough to be watched.");
        }
        if !step.unwatched.is_empty() {
            self.alerts.raise(Alert::Unwatched {
                endings: step.unwatched,
                min_sales: u64::from(min_sales),
                period,
            });
        }
    }
}

/// A silent utility in the API (`silent` in `/api/v1/windows/current` and `/api/v1/status`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SilentView {
    /// The name as stored.
    pub utility: String,
    /// The name as shown ([`crate::display::utility_name`]).
    pub display: String,
    /// Its last sale seen, or when the service began watching.
    pub silent_since: DateTime<Utc>,
    /// Seconds since then.
    pub silent_for_secs: i64,
    /// Average sales per silence period at this time of day over the last seven days.
    pub usual_sales: u64,
}

impl SilentView {
    /// The board as the API shows it at `now`.
    pub fn list(board: &Board, now: DateTime<Utc>) -> Vec<SilentView> {
        board
            .silent()
            .into_iter()
            .map(|s| SilentView {
                display: crate::display::utility_name(&s.utility).into_owned(),
                silent_for_secs: now.signed_duration_since(s.since).num_seconds().max(0),
                silent_since: s.since,
                usual_sales: s.usual_sales,
                utility: s.utility,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
