//! The service's tasks, owned by name. The long-lived ones (the change stream, the outbox, the
//! watchers, the retention pruner, the HTTP server) run until shutdown and none may stop on its
//! own; a finite one (the history import) may end when its work is done. One that panics, returns an error, or (if
//! long-lived) returns while the service is not shutting down stops the whole process. One
//! ERROR line names it and its cause, the shared token is cancelled, the others finish their
//! current step (the tailer saves its final checkpoint), and [`Supervisor::run`] returns the
//! cause, so the process exits non-zero and systemd or Kubernetes restarts it: never a silent
//! stop. Short-lived tasks (alert sends) go on [`Supervisor::short_lived`] and are waited for
//! at the end, for a bounded time.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, warn};

/// How long a stopping process waits for short-lived tasks once every long-lived one has
/// ended. An alert's send has a longer timeout of its own; a process asked to stop must still
/// exit well within a 30 s Kubernetes grace.
const SHORT_LIVED_GRACE: Duration = Duration::from_secs(5);

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the service stopped without being asked to. Never retryable, so it has no
/// `is_retryable`: the process stops either way, and whether a new one fares better is for its
/// manager to find out by restarting it.
#[derive(Debug, thiserror::Error)]
#[error("task {task} failed: {cause}")]
pub(crate) struct Stopped {
    pub(crate) task: &'static str,
    pub(crate) cause: Cause,
}

/// What went wrong with a long-lived task.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Cause {
    #[error("{0}")]
    Error(BoxError),
    #[error("panicked: {0}")]
    Panicked(String),
    #[error("it ended while the service was running")]
    Ended,
}

/// What a supervised task returns: nothing, or a result whose error stops the service.
pub(crate) trait Outcome: Send + 'static {
    fn into_result(self) -> Result<(), BoxError>;
}

impl Outcome for () {
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError> + Send + 'static> Outcome for Result<(), E> {
    fn into_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// Whether a task may end before shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runs {
    UntilShutdown,
    UntilDone,
}

pub(crate) struct Supervisor {
    /// Cancelled on shutdown, or by the first task to fail.
    stop: CancellationToken,
    tasks: JoinSet<Result<(), BoxError>>,
    names: HashMap<Id, (&'static str, Runs)>,
    short_lived: TaskTracker,
}

impl Supervisor {
    /// Tasks stop when `stop` is cancelled; a task ending before then is a failure.
    pub(crate) fn new(stop: CancellationToken) -> Supervisor {
        Supervisor {
            stop,
            tasks: JoinSet::new(),
            names: HashMap::new(),
            short_lived: TaskTracker::new(),
        }
    }

    /// Runs `task` until shutdown; `name` is what the log says if it fails, or ends early.
    pub(crate) fn spawn<T: Outcome>(
        &mut self,
        name: &'static str,
        task: impl Future<Output = T> + Send + 'static,
    ) {
        self.add(name, Runs::UntilShutdown, task);
    }

    /// Runs `task` until its work is done (or shutdown): ending is no failure, an error or a
    /// panic is.
    pub(crate) fn spawn_finite<T: Outcome>(
        &mut self,
        name: &'static str,
        task: impl Future<Output = T> + Send + 'static,
    ) {
        self.add(name, Runs::UntilDone, task);
    }

    fn add<T: Outcome>(
        &mut self,
        name: &'static str,
        runs: Runs,
        task: impl Future<Output = T> + Send + 'static,
    ) {
        let handle = self.tasks.spawn(async move { task.await.into_result() });
        self.names.insert(handle.id(), (name, runs));
    }

    /// Where short-lived tasks go: they may end whenever they like, and shutdown waits for
    /// them for [`SHORT_LIVED_GRACE`] at most.
    pub(crate) fn short_lived(&self) -> TaskTracker {
        self.short_lived.clone()
    }

    /// Waits until every long-lived task has ended: `Ok` if they all stopped because the
    /// service was asked to, else the first failure (after the others stopped too).
    pub(crate) async fn run(mut self) -> Result<(), Stopped> {
        let mut first: Option<Stopped> = None;
        while let Some(joined) = self.tasks.join_next_with_id().await {
            let (id, result) = match joined {
                Ok((id, result)) => (id, result.map_err(Cause::Error)),
                Err(e) => (e.id(), Err(cause_of(e))),
            };
            let (task, runs) = self
                .names
                .remove(&id)
                .unwrap_or(("unnamed", Runs::UntilShutdown));
            let cause = match result {
                Ok(()) if self.stop.is_cancelled() || runs == Runs::UntilDone => continue,
                Ok(()) => Cause::Ended,
                Err(cause) => cause,
            };
            if first.is_some() {
                error!(task, "Task {task} failed too: {cause}.");
                continue;
            }
            error!(task, "Task {task} failed: {cause}; stopping.");
            self.stop.cancel();
            first = Some(Stopped { task, cause });
        }
        self.short_lived.close();
        if tokio::time::timeout(SHORT_LIVED_GRACE, self.short_lived.wait())
            .await
            .is_err()
        {
            warn!(
                unfinished = self.short_lived.len(),
                "Stopping with alert sends unfinished; they are dropped."
            );
        }
        first.map_or(Ok(()), Err)
    }
}

/// A task that did not return: its panic's message (a panic's payload is a `&str` or a
/// `String` unless the code panicked with something else).
fn cause_of(e: JoinError) -> Cause {
    if !e.is_panic() {
        // Aborted: nothing here aborts its tasks, so only a runtime shutting down does.
        return Cause::Error(Box::new(e));
    }
    let payload = e.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned());
    Cause::Panicked(message)
}

#[cfg(test)]
mod tests;
