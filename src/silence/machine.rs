//! The silence machine: per utility, whether it is selling or silent, from the sales seen, the
//! baseline and the clock. Pure: no I/O and no clock of its own; the watcher
//! ([`super::Watcher`]) feeds it `now` and what it saw, and carries out the [`Action`]s.
//!
//! A utility is silent once no sale of it has been seen for the silence period while the
//! stream was connected and caught up, provided its baseline (its average over the previous
//! seven days at this time of day) is at least the minimum. Utilities without a baseline (new
//! ones) and those below the minimum never alert. Each silence raises one alert; its end (the
//! next sale) one "resumed" notice, and only when the alert itself went out.

use super::baseline::Baseline;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;
use std::time::Duration;

/// Whether the stream can be trusted to have shown every recent sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Connected, and applying events close to their commit time (or at the end of the oplog).
    CaughtUp,
    /// Disconnected, or working off a backlog: a sale may be committed and not seen yet.
    Behind,
}

/// Whether a silence was told to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Told {
    /// The alert went out: its end gets a "resumed" notice.
    Alerted,
    /// The alert was held back (rate limit): its end goes unsaid too.
    HeldBack,
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
}

/// What the watcher must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Raise the silent-utility alert, then call [`Machine::told`] with whether it went out.
    Silent {
        utility: String,
        since: DateTime<Utc>,
        silent_for: Duration,
        usual_sales: u64,
    },
    /// Post the "resumed" notice of an alerted silence.
    Resumed { utility: String, lasted: Duration },
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

    /// A sale of `utility` was seen at `at`.
    pub(crate) fn sale(&mut self, utility: &str, at: DateTime<Utc>) -> Option<Action> {
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
                } => Some(Action::Resumed {
                    utility: utility.to_owned(),
                    lasted: (at - since).to_std().unwrap_or_default(),
                }),
                State::Silent {
                    told: Told::HeldBack,
                    ..
                } => None,
            },
        }
    }

    /// Whether the alert for `utility`'s silence went out.
    pub(crate) fn told(&mut self, utility: &str, how: Told) {
        if let Some(State::Silent { told, .. }) = self.states.get_mut(utility) {
            *told = how;
        }
    }

    /// The clock moved on: utilities of the baseline silent for the period become silent,
    /// while the stream is caught up.
    pub(crate) fn tick(&mut self, now: DateTime<Utc>, stream: Stream) -> Vec<Action> {
        let Some(baseline) = &self.baseline else {
            return Vec::new();
        };
        if stream == Stream::Behind {
            return Vec::new();
        }
        let mut actions = Vec::new();
        for (utility, usual_sales) in baseline.usual_at_least(self.min_sales) {
            let state = self
                .states
                .entry(utility.to_owned())
                .or_insert(State::Selling {
                    last_sale: self.started,
                });
            let State::Selling { last_sale } = *state else {
                continue;
            };
            let silent_for = now.signed_duration_since(last_sale);
            if silent_for < self.period {
                continue;
            }
            *state = State::Silent {
                since: last_sale,
                usual_sales,
                told: Told::Alerted,
            };
            actions.push(Action::Silent {
                utility: utility.to_owned(),
                since: last_sale,
                silent_for: silent_for.to_std().unwrap_or_default(),
                usual_sales,
            });
        }
        actions
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
                State::Selling { .. } => None,
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
