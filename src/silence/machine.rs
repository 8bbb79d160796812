//! The silence machine: per utility, whether it is selling or silent, from the sales seen, the
//! baseline and the clock. Pure: no I/O and no clock of its own; the watcher
//! ([`super::Watcher`]) feeds it `now` and what it saw, carries out the [`Step`] and saves
//! [`Machine::saved`] when it changes.
//!
//! A utility is silent once no sale of it has been seen for the silence period while the
//! stream was connected and caught up, provided its baseline (its average over the previous
//! seven days at this time of day) is at least the minimum. Utilities without a baseline (new
//! ones) and those below the minimum never alert; a silent utility whose average falls below
//! it leaves the watched set, its silence ended by one notice. Each silence raises one alert, unless the
//! utility was alerted within [`MIN_INTERVAL`] (then it is held back); its end (the next sale)
//! one "resumed" notice, and only when the alert itself went out. The utilities of one step
//! share one alert and one notice: an upstream outage silences every utility in the same
//! moment, and one post per utility would flood the webhook the reports go through. The
//! silences and alert times are restored after a restart ([`Machine::restore`]), so a silence
//! alerted before it is not alerted again.

use super::baseline::Baseline;
use crate::alert::{Resumption, Silenced, MIN_INTERVAL};
use crate::store::{SilenceRecord, SilenceTold as Told, SilentRecord};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Whether the stream can be trusted to have shown every recent sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Connected, and applying events close to their commit time (or at the end of the oplog).
    CaughtUp,
    /// Disconnected, or working off a backlog: a sale may be committed and not seen yet.
    Behind,
}

/// One utility's state.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Its last sale was seen at `last_sale`.
    Selling { last_sale: DateTime<Utc> },
    /// No sale seen since `since` (its last sale, or when watching began).
    Silent {
        /// Its last sale, or when watching began.
        since: DateTime<Utc>,
        /// Its usual sales per silence period at the moment it fell silent.
        usual_sales: u64,
        /// Whether the alert went out.
        told: Told,
    },
    /// Silent since `since`, but no longer usually selling at this hour (not watched): its
    /// silence ended with a notice. If it is usual again before it sells, the same silence
    /// goes on from `since`.
    Retired { since: DateTime<Utc> },
}

/// What the watcher must do after one step: at most one alert and one notice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Step {
    /// Fallen silent now and alerted: one alert for all, most usual sales first.
    pub alert: Vec<Silenced>,
    /// Fallen silent now but alerted within the rate limit: logged, not posted.
    pub held_back: Vec<Silenced>,
    /// Alerted silences that ended now: one notice for all, longest first.
    pub resumed: Vec<Resumption>,
    /// Alerted silences of utilities that left the watched set now (their usual sales fell
    /// below the minimum): one notice for all, longest first.
    pub unwatched: Vec<Resumption>,
}

/// A silent utility, as the views show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SilentNow {
    /// The name as stored.
    pub utility: String,
    /// Its last sale, or when watching began.
    pub since: DateTime<Utc>,
    /// Average sales per silence period over the baseline days.
    pub usual_sales: u64,
}

/// The machine: every utility seen selling or in the baseline.
#[derive(Debug)]
pub(crate) struct Machine {
    /// The silence period.
    period: TimeDelta,
    /// Minimum average sales per period for a utility to be watched.
    min_sales: u64,
    /// When watching began: a utility of the baseline not seen since is silent since then.
    started: DateTime<Utc>,
    /// The latest baseline; `None` until the first one: nothing alerts without it.
    baseline: Option<Baseline>,
    /// Per utility (the stored name), what is known.
    states: HashMap<String, State>,
    /// When each utility's last silence alert went out, within [`MIN_INTERVAL`] of the last
    /// step (older ones no longer hold anything back and are dropped).
    alerted_at: BTreeMap<String, DateTime<Utc>>,
}

impl Machine {
    /// A machine watching from `started`. `period` is bounded by the configuration (a day).
    pub(crate) fn new(period: Duration, min_sales: u32, started: DateTime<Utc>) -> Machine {
        Machine {
            period: TimeDelta::from_std(period).unwrap_or(TimeDelta::MAX),
            min_sales: u64::from(min_sales),
            started,
            baseline: None,
            states: HashMap::new(),
            alerted_at: BTreeMap::new(),
        }
    }

    /// Takes up the state saved before a restart: its silences stay silent (alerted ones get
    /// their "resumed" notice, none is alerted again) and its alert times keep limiting.
    pub(crate) fn restore(&mut self, saved: SilenceRecord) {
        for s in saved.silent {
            let state = State::Silent {
                since: s.since,
                usual_sales: s.usual_sales,
                told: s.told,
            };
            self.states.insert(s.utility, state);
        }
        self.alerted_at = saved.alerted_at;
    }

    /// What [`Self::restore`] takes up after a restart. Changes only when a utility falls
    /// silent or sells again, or an alert time expires.
    pub(crate) fn saved(&self) -> SilenceRecord {
        let mut silent: Vec<SilentRecord> = self
            .states
            .iter()
            .filter_map(|(utility, s)| match s {
                State::Silent {
                    since,
                    usual_sales,
                    told,
                } => Some(SilentRecord {
                    utility: utility.clone(),
                    since: *since,
                    usual_sales: *usual_sales,
                    told: *told,
                }),
                State::Selling { .. } | State::Retired { .. } => None,
            })
            .collect();
        silent.sort_by(|a, b| a.utility.cmp(&b.utility));
        SilenceRecord {
            silent,
            alerted_at: self.alerted_at.clone(),
        }
    }

    /// Whether a baseline has arrived (before it, nothing can be said about silence).
    pub(crate) fn has_baseline(&self) -> bool {
        self.baseline.is_some()
    }

    /// A fresh baseline replaces the last one.
    pub(crate) fn baseline(&mut self, baseline: Baseline) {
        self.baseline = Some(baseline);
    }

    /// At `now` the utilities in `sold` were seen selling, and the stream was as `stream`
    /// says: what to tell.
    pub(crate) fn step(&mut self, now: DateTime<Utc>, sold: &[String], stream: Stream) -> Step {
        let mut step = Step::default();
        for utility in sold {
            step.resumed.extend(self.sale(utility, now));
        }
        self.tick(now, stream, &mut step);
        step.alert
            .sort_by(|a, b| (b.usual_sales, &a.utility).cmp(&(a.usual_sales, &b.utility)));
        step.held_back.sort_by(|a, b| a.utility.cmp(&b.utility));
        for endings in [&mut step.resumed, &mut step.unwatched] {
            endings.sort_by(|a, b| (b.lasted, &a.utility).cmp(&(a.lasted, &b.utility)));
        }
        step
    }

    /// A sale of `utility` was seen at `at`: the notice its silence's end needs, if any.
    fn sale(&mut self, utility: &str, at: DateTime<Utc>) -> Option<Resumption> {
        let selling = State::Selling { last_sale: at };
        match self.states.get_mut(utility) {
            None => {
                self.states.insert(utility.to_owned(), selling);
                None
            }
            Some(state) => match std::mem::replace(state, selling) {
                State::Selling { last_sale } if last_sale > at => {
                    // Never move the last sale back (a wall clock stepped back).
                    *state = State::Selling { last_sale };
                    None
                }
                State::Selling { .. } => None,
                State::Silent {
                    since,
                    told: Told::Alerted,
                    ..
                } => Some(Resumption {
                    utility: utility.to_owned(),
                    lasted: (at - since).to_std().unwrap_or_default(),
                }),
                State::Silent {
                    told: Told::HeldBack,
                    ..
                }
                | State::Retired { .. } => None,
            },
        }
    }

    /// The clock moved on: utilities of the baseline silent for the period become silent,
    /// while the stream is caught up.
    fn tick(&mut self, now: DateTime<Utc>, stream: Stream, step: &mut Step) {
        let limit = TimeDelta::from_std(MIN_INTERVAL).unwrap_or(TimeDelta::MAX);
        // An alert time in the future (a wall clock stepped back) keeps limiting until then.
        self.alerted_at
            .retain(|_, at| now.signed_duration_since(*at) < limit);
        let Some(baseline) = &self.baseline else {
            return;
        };
        let watched: BTreeMap<&str, u64> = baseline.usual_at_least(self.min_sales).collect();
        // A utility that no longer usually sells enough (retired, or moved away) leaves the
        // watched set: a silence it was in ends, alerted ones with a notice saying so.
        for (utility, state) in &mut self.states {
            if let State::Silent { since, told, .. } = *state {
                if watched.contains_key(utility.as_str()) {
                    continue;
                }
                if told == Told::Alerted {
                    step.unwatched.push(Resumption {
                        utility: utility.clone(),
                        lasted: (now - since).to_std().unwrap_or_default(),
                    });
                }
                *state = State::Retired { since };
            }
        }
        if stream == Stream::Behind {
            return;
        }
        for (utility, usual_sales) in watched {
            let state = self
                .states
                .entry(utility.to_owned())
                .or_insert(State::Selling {
                    last_sale: self.started,
                });
            let last_sale = match *state {
                State::Selling { last_sale } => last_sale,
                State::Retired { since } => since,
                State::Silent { .. } => continue,
            };
            let silent_for = now.signed_duration_since(last_sale);
            if silent_for < self.period {
                continue;
            }
            let told = if self.alerted_at.contains_key(utility) {
                Told::HeldBack
            } else {
                self.alerted_at.insert(utility.to_owned(), now);
                Told::Alerted
            };
            *state = State::Silent {
                since: last_sale,
                usual_sales,
                told,
            };
            let silenced = Silenced {
                utility: utility.to_owned(),
                silent_for: silent_for.to_std().unwrap_or_default(),
                usual_sales,
            };
            match told {
                Told::Alerted => step.alert.push(silenced),
                Told::HeldBack => step.held_back.push(silenced),
            }
        }
    }

    /// The silent utilities, longest silent first (then by name).
    pub(crate) fn silent(&self) -> Vec<SilentNow> {
        let mut v: Vec<SilentNow> = self
            .states
            .iter()
            .filter_map(|(utility, s)| match s {
                State::Silent {
                    since, usual_sales, ..
                } => Some(SilentNow {
                    utility: utility.clone(),
                    since: *since,
                    usual_sales: *usual_sales,
                }),
                State::Selling { .. } | State::Retired { .. } => None,
            })
            .collect();
        v.sort_by(|a, b| {
            a.since
                .cmp(&b.since)
                .then_with(|| a.utility.cmp(&b.utility))
        });
        v
    }
}
