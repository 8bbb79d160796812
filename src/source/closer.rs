//! The closer: the pure state machine that decides, from the clock and what the stream
//! reports, when the next window is due, whether the stream has caught up with it, when to
//! close by the clock instead, and when to checkpoint. It does no I/O and reads no clock: the
//! tailer feeds it [`Now`] and events and carries out the [`Action`]s it returns.
//!
//! A window is *due* at its end + grace. Then the closer asks for the server's cluster time
//! (the *barrier*): once the stream has delivered an event at or after it, or proved it is at
//! the end of the oplog (two empty batches at the same position), every sale committed before
//! the boundary is in the streamed totals and the window closes "by the stream". A stream that
//! does not catch up within `max_catch_up`, or is disconnected, closes windows by the clock:
//! the report then shows the database's figures, which are the truth either way.
//!
//! Closing is a plan ([`Save`]) carried out in one checkpoint write; the closer moves on only
//! when told the write succeeded ([`Closer::saved`]), so a failed write closes the same
//! windows again on the next poll and none is lost.

use super::fold::ClusterTime;
use crate::window::{later_by, ClosedBy, Window, WindowSpec};
use chrono::{DateTime, Utc};
use mongodb::change_stream::event::ResumeToken;
use std::time::Duration;
use tokio::time::Instant;

/// Checkpoint cadence.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cadence {
    /// Save this often while events arrive…
    pub busy: Duration,
    /// …or after this many events, whichever comes first…
    pub events: u64,
    /// …and this often when idle, so the saved position (and readiness) stays fresh.
    pub idle: Duration,
    /// A due window waits at most this long for the stream to pass its barrier.
    pub max_catch_up: Duration,
}

/// The two clocks, read together by the caller: the wall clock places windows, the monotonic
/// one measures intervals (it never jumps).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    pub wall: DateTime<Utc>,
    pub mono: Instant,
}

impl Now {
    /// Both clocks, now.
    pub(crate) fn read() -> Now {
        Now {
            wall: Utc::now(),
            mono: Instant::now(),
        }
    }
}

/// What the tailer must do next.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Nothing now.
    Wait,
    /// Read the server's cluster time, then call [`Closer::barrier_read`].
    ReadClusterTime,
    /// Write a checkpoint, closing the windows of the plan in the same write, then call
    /// [`Closer::saved`].
    Save(Save),
}

/// One checkpoint write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Save {
    /// Windows to move from the live totals to the outbox, oldest first (maybe none).
    pub close: Vec<Window>,
    /// The next window to close once this write is done.
    pub next: Window,
    /// Why these windows close now (meaningful when `close` is not empty).
    pub by: ClosedBy,
}

/// The server's cluster time when a window fell due, if the server said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BarrierAt {
    Known(ClusterTime),
    /// Only the end of the oplog or the catch-up bound can pass it.
    Unknown,
}

/// Whether the stream is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Up,
    Down,
}

/// How far the stream has come towards the barrier.
#[derive(Debug, Clone, PartialEq)]
enum Tail {
    /// Events are arriving from before the barrier.
    Behind,
    /// The last batch was empty, ending at this position. One empty batch proves nothing
    /// (a server may return one mid-backlog after scanning filtered-out entries); two in a row
    /// at the same position mean the stream is at the end of the oplog.
    EmptyAt(Position),
    /// Every sale committed before the barrier has been applied.
    Passed,
}

/// The stream's position after an empty batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Position {
    Token(ResumeToken),
    /// The server sent no token with the batch.
    Unsaid,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// No window is due yet.
    Tailing,
    /// A window is due; the server's cluster time has been asked for.
    AwaitingBarrier,
    /// Windows due before `wall` close once the stream has passed `at`.
    CatchingUp {
        /// The server's cluster time, read just after `wall`.
        at: BarrierAt,
        /// The wall clock when the barrier was asked for.
        wall: DateTime<Utc>,
        /// When the barrier was set, for the catch-up bound.
        set: Instant,
        /// Progress towards it.
        tail: Tail,
    },
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Closer {
    /// How windows are cut.
    spec: WindowSpec,
    /// Wait after a window's end before it is due.
    grace: Duration,
    /// Checkpoint cadence and catch-up bound.
    cadence: Cadence,
    /// The next window to close.
    next: Window,
    /// When `next` is due: compared on every poll, so kept, not derived.
    due_at: DateTime<Utc>,
    /// Where closing `next` stands.
    phase: Phase,
    /// Whether the stream is open.
    link: Link,
    /// Events applied since the last checkpoint.
    unsaved_events: u64,
    /// When the last checkpoint was written.
    last_save: Instant,
}

impl Closer {
    pub(crate) fn new(
        spec: WindowSpec,
        grace: Duration,
        cadence: Cadence,
        next: Window,
        now: Now,
    ) -> Closer {
        Closer {
            spec,
            grace,
            cadence,
            next,
            due_at: due_at(&next, grace),
            phase: Phase::Tailing,
            link: Link::Down,
            unsaved_events: 0,
            last_save: now.mono,
        }
    }

    /// The next window to close.
    pub(crate) fn next(&self) -> Window {
        self.next
    }

    /// Events applied since the last checkpoint.
    pub(crate) fn unsaved_events(&self) -> u64 {
        self.unsaved_events
    }

    pub(crate) fn connected_now(&mut self) {
        self.link = Link::Up;
    }

    /// The stream closed or failed. A barrier asked for on the old stream is dropped: the
    /// new stream's position is checked against a fresh one.
    pub(crate) fn disconnected(&mut self) {
        self.link = Link::Down;
        self.phase = Phase::Tailing;
    }

    /// An event was applied. Returns [`Step::Poll`] when it passed the barrier, so closing
    /// need not wait for the next clock read. Called per event: cheap.
    pub(crate) fn event(&mut self, at: Option<ClusterTime>) -> Step {
        self.unsaved_events = self.unsaved_events.saturating_add(1);
        let Phase::CatchingUp {
            at: barrier, tail, ..
        } = &mut self.phase
        else {
            return Step::Continue;
        };
        if *tail == Tail::Passed {
            return Step::Continue;
        }
        match (barrier, at) {
            // Strictly after: the barrier is the last write's time, and every event of a
            // transaction committed then carries that same time.
            (BarrierAt::Known(barrier), Some(at)) if at > *barrier => {
                *tail = Tail::Passed;
                Step::Poll
            }
            _ => {
                *tail = Tail::Behind;
                Step::Continue
            }
        }
    }

    /// A batch without events, the stream's position after it.
    pub(crate) fn empty_batch(&mut self, position: Position) {
        if let Phase::CatchingUp { tail, .. } = &mut self.phase {
            *tail = match std::mem::replace(tail, Tail::Behind) {
                Tail::Passed => Tail::Passed,
                Tail::EmptyAt(before) if before == position => Tail::Passed,
                _ => Tail::EmptyAt(position),
            };
        }
    }

    /// The answer to [`Action::ReadClusterTime`]; `wall` is the wall clock read *before* the
    /// server was asked, so every sale committed before `wall` is at or before `at`.
    pub(crate) fn barrier_read(&mut self, at: BarrierAt, wall: DateTime<Utc>, mono: Instant) {
        if self.phase == Phase::AwaitingBarrier {
            self.phase = Phase::CatchingUp {
                at,
                // A wall clock stepped back must not hold the due window open.
                wall: wall.max(self.due_at),
                set: mono,
                tail: Tail::Behind,
            };
        }
    }

    /// What to do now.
    pub(crate) fn poll(&mut self, now: Now) -> Action {
        let close_until = match (&self.phase, self.link) {
            (_, Link::Down) => Some((now.wall, ClosedBy::Disconnected)),
            (Phase::Tailing, Link::Up) if now.wall >= self.due_at => {
                self.phase = Phase::AwaitingBarrier;
                return Action::ReadClusterTime;
            }
            (Phase::Tailing | Phase::AwaitingBarrier, Link::Up) => None,
            (Phase::CatchingUp { wall, tail, .. }, Link::Up) if *tail == Tail::Passed => {
                Some((*wall, ClosedBy::Stream))
            }
            (Phase::CatchingUp { set, .. }, Link::Up) => {
                let behind = now.mono.saturating_duration_since(*set);
                (behind >= self.cadence.max_catch_up).then_some((
                    now.wall,
                    ClosedBy::Clock {
                        behind_secs: behind.as_secs(),
                    },
                ))
            }
        };
        let mut save = Save {
            close: Vec::new(),
            next: self.next,
            by: close_until.map_or(ClosedBy::Stream, |(_, by)| by),
        };
        if let Some((until, _)) = close_until {
            while until >= due_at(&save.next, self.grace) {
                save.close.push(save.next);
                save.next = self.spec.next(&save.next);
            }
        }
        if !save.close.is_empty() || self.save_due(now.mono) {
            Action::Save(save)
        } else {
            Action::Wait
        }
    }

    /// The checkpoint of `save` is written.
    pub(crate) fn saved(&mut self, save: &Save, mono: Instant) {
        self.unsaved_events = 0;
        self.last_save = mono;
        if !save.close.is_empty() {
            self.next = save.next;
            self.due_at = due_at(&save.next, self.grace);
            self.phase = Phase::Tailing;
        }
    }

    fn save_due(&self, mono: Instant) -> bool {
        let since = mono.saturating_duration_since(self.last_save);
        self.unsaved_events >= self.cadence.events
            || (self.unsaved_events > 0 && since >= self.cadence.busy)
            || since >= self.cadence.idle
    }
}

/// Whether the caller should poll now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    Poll,
}

/// When `w` is due; saturating, so no configured grace can overflow.
fn due_at(w: &Window, grace: Duration) -> DateTime<Utc> {
    later_by(w.end, grace)
}

#[cfg(test)]
mod tests;
