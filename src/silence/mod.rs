//! Silent-utility alerts: a utility that usually sells at this time of day and has sold
//! nothing for `POWER_REVENUE_SILENCE` gets one Slack alert, and one "resumed" notice when it
//! sells again. Owns the watcher (this module: the thin loop), the decisions
//! ([`machine`], pure, clock injected) and the baselines ([`baseline`]: one indexed aggregate
//! per refresh, never a query per sale). Sales are seen from the live totals the tailer keeps
//! (a utility's count in an open window went up): nothing is added to the stream's hot path.
//! The machine's silences and alert times are kept in the store (`silence/state`, written when
//! they change) and restored at start.

pub mod baseline;
pub(crate) mod machine;

use crate::alert::{Alert, Alerter};
use crate::config::{Config, Silence};
use crate::source::Live;
use crate::store::{SilenceRecord, Store};
use crate::window::WindowId;
use baseline::Baseline;
use bson::Document;
use chrono::{DateTime, Utc};
use machine::{Machine, SilentNow, Step, Stream};
use mongodb::Collection;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Baselines are refreshed this often at most…
const MAX_REFRESH: Duration = Duration::from_secs(300);
/// …and at least this far apart (short silence periods, in tests).
const MIN_REFRESH: Duration = Duration::from_secs(2);
/// The first baseline is read this long after the stream's first open attempt at most (half
/// the period when that is shorter).
const MAX_FIRST_REFRESH: Duration = Duration::from_secs(120);
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
    /// The sales collection, through the queries' client (the baselines).
    pub coll: Collection<Document>,
    pub config: Arc<Config>,
    /// The tailer's live totals and stream state: where sales are seen.
    pub live: Arc<Live>,
    /// Sends the alerts (the machine limits them).
    pub alerts: Alerter,
    /// Where the machine's state outlives a restart.
    pub store: Store,
    /// Where the views read the silent utilities.
    pub board: Arc<Board>,
}

impl Watcher {
    /// Runs until `stop`; does nothing when silence alerts are off.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let Silence::After { period, min_sales } = self.config.silence else {
            return;
        };
        let (tx, mut baselines) = watch::channel(None::<Baseline>);
        tokio::spawn(refresh(
            self.coll.clone(),
            self.config.clone(),
            self.live.clone(),
            period,
            tx,
            stop.clone(),
        ));
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
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.cancelled() => return,
            }
            if baselines.has_changed().unwrap_or(false) {
                if let Some(b) = baselines.borrow_and_update().clone() {
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
            self.act(step, period);
            let silent = machine.silent();
            if machine.has_baseline() {
                metrics::gauge!(crate::telemetry::SILENT_UTILITIES).set(silent.len() as f64);
            }
            self.board.set(silent);
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
    fn act(&self, step: Step, period: Duration) {
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
    }
}

/// Refreshes the baseline every so often (a sixth of the period, within bounds), one query at
/// a time; a failed query is logged and counted, and the last baseline stays.
async fn refresh(
    coll: Collection<Document>,
    config: Arc<Config>,
    live: Arc<Live>,
    period: Duration,
    tx: watch::Sender<Option<Baseline>>,
    stop: CancellationToken,
) {
    // Like every query that can wait: behind the stream's first open attempt, and then some.
    // No utility can be silent for a whole period before the period has passed since start, so
    // the first baseline is not needed sooner; and a process in a crash loop must not leave one
    // more aggregate running on the server on every start.
    tokio::select! {
        _ = async {
            live.first_open_attempt(crate::source::OPEN_TIMEOUT).await;
            tokio::time::sleep((period / 2).min(MAX_FIRST_REFRESH)).await;
        } => {}
        _ = stop.cancelled() => return,
    }
    let every = (period / 6).clamp(MIN_REFRESH, MAX_REFRESH);
    let mut failing = false;
    loop {
        let started = std::time::Instant::now();
        let result = tokio::select! {
            r = baseline::query(&coll, &config, Utc::now(), period) => r,
            _ = stop.cancelled() => return,
        };
        metrics::histogram!(crate::telemetry::BASELINE_SECONDS)
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(b) => {
                if std::mem::take(&mut failing) {
                    info!("Silence baseline query works again.");
                }
                tx.send_replace(Some(b));
            }
            Err(error) => {
                metrics::counter!(crate::telemetry::BASELINE_FAILURES_TOTAL).increment(1);
                if !std::mem::replace(&mut failing, true) {
                    warn!(%error, retryable = error.is_retryable(), "Silence baseline query failed; keeping the last baseline and retrying at the next refresh.");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
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
