//! The lease machine of an active/standby pair: when to take the lease, when to renew it, and
//! whether this instance may post now. Pure: no I/O and no clock of its own; the caller feeds
//! it the monotonic time and the answers of the lease's store ([`Outcome`]) and carries out
//! the [`Action`]s it returns.
//!
//! A leader renews every third of the lease. It counts its lease from when it *sent* the
//! request that took or renewed it, by its own monotonic clock, and stops posting a safety
//! margin before that lease would end (self-fencing): the server's expiry is at least that
//! late, so nobody can take over while this instance still believes it leads. The epoch that
//! comes with the lease fences what it writes: a write under a stale epoch is refused.

use std::time::Duration;
use tokio::time::Instant;

/// What this instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Standby,
    /// Holds the lease under `epoch`, last taken or renewed by a request sent at `renewed`.
    Leader {
        epoch: u64,
        renewed: Instant,
    },
}

/// What the caller must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing until then.
    Wait { until: Instant },
    /// Try to take the lease (free, expired by the server's clock, or already ours).
    Acquire,
    /// Renew the lease held under `epoch`.
    Renew { epoch: u64 },
}

/// How the lease's store answered a request sent at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Taken (or kept) under `epoch`.
    Acquired { epoch: u64 },
    /// Renewed under the epoch asked for.
    Renewed,
    /// Someone else holds it, or our epoch is stale.
    Refused,
    /// No answer (the server unreachable, a timeout): nothing is known.
    Failed,
}

/// The machine.
#[derive(Debug)]
pub struct Lease {
    /// How long a lease lasts on the server.
    length: Duration,
    /// Posting stops this long before the lease would end by our clock.
    margin: Duration,
    role: Role,
    /// When to try (again) to take or renew the lease.
    next_try: Instant,
}

impl Lease {
    /// A standby that tries for the lease at once. The margin is a fifth of the lease: clock
    /// rates differ by far less, and a leader still renews twice before it would stop.
    pub fn new(length: Duration, now: Instant) -> Lease {
        Lease {
            length,
            margin: length / 5,
            role: Role::Standby,
            next_try: now,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The epoch this instance may post under now, if it leads and its lease has not run
    /// into the margin by its own clock.
    pub fn may_post(&self, now: Instant) -> Option<u64> {
        match self.role {
            Role::Leader { epoch, renewed } if now < self.fenced_at(renewed) => Some(epoch),
            _ => None,
        }
    }

    /// When a leader's posting stops unless it renews; `None` for a standby.
    pub fn fenced_until(&self) -> Option<Instant> {
        match self.role {
            Role::Leader { renewed, .. } => Some(self.fenced_at(renewed)),
            Role::Standby => None,
        }
    }

    fn fenced_at(&self, renewed: Instant) -> Instant {
        renewed + self.length.saturating_sub(self.margin)
    }

    /// What to do at `now`. A leader whose lease ran into the margin steps down here.
    pub fn poll(&mut self, now: Instant) -> Action {
        if let Role::Leader { epoch, renewed } = self.role {
            if now >= self.fenced_at(renewed) {
                self.role = Role::Standby;
                self.next_try = now;
                return Action::Acquire;
            }
            if now >= self.next_try {
                return Action::Renew { epoch };
            }
            return Action::Wait {
                until: self.next_try.min(self.fenced_at(renewed)),
            };
        }
        if now >= self.next_try {
            Action::Acquire
        } else {
            Action::Wait {
                until: self.next_try,
            }
        }
    }

    /// The store answered, at `now`, a request sent at `sent`.
    pub fn answered(&mut self, sent: Instant, now: Instant, outcome: Outcome) {
        let third = self.length / 3;
        match (outcome, self.role) {
            (Outcome::Acquired { epoch }, _) => {
                self.role = Role::Leader {
                    epoch,
                    renewed: sent,
                };
                self.next_try = sent + third;
            }
            (Outcome::Renewed, Role::Leader { epoch, .. }) => {
                self.role = Role::Leader {
                    epoch,
                    renewed: sent,
                };
                self.next_try = sent + third;
            }
            (Outcome::Renewed, Role::Standby) => {}
            (Outcome::Refused, _) => {
                self.role = Role::Standby;
                self.next_try = now + third;
            }
            // Unknown: a leader keeps trying soon (its clock fences it meanwhile); a standby
            // waits its turn.
            (Outcome::Failed, Role::Leader { .. }) => {
                self.next_try = now + (third / 4).max(Duration::from_millis(100));
            }
            (Outcome::Failed, Role::Standby) => self.next_try = now + third,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(15);

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn a_leader_renews_every_third_and_fences_itself_before_the_lease_ends() {
        let t0 = Instant::now();
        let mut l = Lease::new(LEASE, t0);
        assert_eq!(l.poll(t0), Action::Acquire);
        assert_eq!(l.may_post(t0), None);
        l.answered(t0, secs(t0, 0.2), Outcome::Acquired { epoch: 7 });
        assert_eq!(l.may_post(secs(t0, 0.2)), Some(7));
        assert_eq!(
            l.poll(secs(t0, 1.0)),
            Action::Wait {
                until: secs(t0, 5.0)
            }
        );
        assert_eq!(l.poll(secs(t0, 5.0)), Action::Renew { epoch: 7 });
        // Renewed by a request sent at 5 s: the lease counts from then.
        l.answered(secs(t0, 5.0), secs(t0, 5.5), Outcome::Renewed);
        assert_eq!(
            l.poll(secs(t0, 9.0)),
            Action::Wait {
                until: secs(t0, 10.0)
            }
        );
        // The server stops answering: retried soon, posting until 5 + 15 − 3 = 17 s only.
        l.answered(secs(t0, 10.0), secs(t0, 12.0), Outcome::Failed);
        assert_eq!(
            l.poll(secs(t0, 12.5)),
            Action::Wait {
                until: secs(t0, 13.25)
            }
        );
        assert_eq!(l.may_post(secs(t0, 16.9)), Some(7));
        assert_eq!(l.may_post(secs(t0, 17.0)), None, "fenced by its own clock");
        assert_eq!(l.poll(secs(t0, 17.0)), Action::Acquire);
        assert_eq!(l.role(), Role::Standby);
    }

    #[test]
    fn a_refused_or_stale_instance_steps_down_and_a_standby_waits_its_turn() {
        let t0 = Instant::now();
        let mut l = Lease::new(LEASE, t0);
        l.answered(t0, t0, Outcome::Refused);
        assert_eq!(
            l.poll(secs(t0, 1.0)),
            Action::Wait {
                until: secs(t0, 5.0)
            }
        );
        assert_eq!(l.poll(secs(t0, 5.0)), Action::Acquire);
        l.answered(secs(t0, 5.0), secs(t0, 5.1), Outcome::Acquired { epoch: 8 });
        // Another instance took over (our epoch is stale): no more posting, at once.
        l.answered(secs(t0, 10.0), secs(t0, 10.1), Outcome::Refused);
        assert_eq!(
            (l.role(), l.may_post(secs(t0, 10.1))),
            (Role::Standby, None)
        );
        // A late "renewed" for a standby changes nothing.
        l.answered(secs(t0, 10.0), secs(t0, 10.2), Outcome::Renewed);
        assert_eq!(l.role(), Role::Standby);
    }
}
