//! The supervisor's rules on a paused clock: what stops the service, what it waits for.

use super::*;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use tokio::time::{sleep, Instant};

/// A long-lived task as the service's are: works until cancelled, then takes a moment to
/// finish its step (the tailer's final checkpoint), and says it did.
async fn worker(stop: CancellationToken, finished: Arc<AtomicBool>) -> Result<(), std::io::Error> {
    stop.cancelled().await;
    sleep(Duration::from_millis(300)).await;
    finished.store(true, SeqCst);
    Ok(())
}

fn supervised_worker() -> (Supervisor, CancellationToken, Arc<AtomicBool>) {
    let stop = CancellationToken::new();
    let mut tasks = Supervisor::new(stop.clone());
    let finished = Arc::new(AtomicBool::new(false));
    tasks.spawn("worker", worker(stop.clone(), finished.clone()));
    (tasks, stop, finished)
}

#[tokio::test(start_paused = true)]
async fn a_failing_task_stops_the_others_and_is_named() {
    let (mut tasks, stop, finished) = supervised_worker();
    tasks.spawn("failing", async {
        sleep(Duration::from_secs(1)).await;
        Err::<(), _>(std::io::Error::other("disk on fire"))
    });
    let stopped = tasks.run().await.unwrap_err();
    assert_eq!(stopped.task, "failing");
    assert!(matches!(stopped.cause, Cause::Error(_)), "{stopped:?}");
    assert_eq!(stopped.to_string(), "task failing failed: disk on fire");
    assert!(stop.is_cancelled());
    assert!(finished.load(SeqCst), "the others finish their step first");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_stops_the_others_and_is_named() {
    let (mut tasks, stop, finished) = supervised_worker();
    tasks.spawn::<()>("panicking", async {
        sleep(Duration::from_secs(1)).await;
        panic!("index out of bounds");
    });
    let stopped = tasks.run().await.unwrap_err();
    assert_eq!(stopped.task, "panicking");
    assert_eq!(
        stopped.to_string(),
        "task panicking failed: panicked: index out of bounds"
    );
    assert!(stop.is_cancelled());
    assert!(finished.load(SeqCst));
}

#[tokio::test(start_paused = true)]
async fn a_task_ending_while_the_service_runs_is_a_failure() {
    let (mut tasks, stop, finished) = supervised_worker();
    tasks.spawn("quitter", async {});
    let stopped = tasks.run().await.unwrap_err();
    assert_eq!(stopped.task, "quitter");
    assert!(matches!(stopped.cause, Cause::Ended), "{stopped:?}");
    assert_eq!(
        stopped.to_string(),
        "task quitter failed: it ended while the service was running"
    );
    assert!(stop.is_cancelled());
    assert!(finished.load(SeqCst));
}

#[tokio::test(start_paused = true)]
async fn a_finite_task_may_end_but_not_fail() {
    let (mut tasks, stop, finished) = supervised_worker();
    tasks.spawn_finite("import", async {
        sleep(Duration::from_secs(1)).await;
        Ok::<(), std::io::Error>(())
    });
    // The stop request, beside the run (a signal, in the service).
    let request = async {
        sleep(Duration::from_secs(5)).await;
        stop.cancel();
    };
    let (ran, ()) = tokio::join!(tasks.run(), request);
    ran.expect("a finished import is no failure");
    assert!(finished.load(SeqCst));

    let (mut tasks, stop, finished) = supervised_worker();
    tasks.spawn_finite("import", async {
        sleep(Duration::from_secs(1)).await;
        Err::<(), _>(std::io::Error::other("history unreadable"))
    });
    let stopped = tasks.run().await.unwrap_err();
    assert_eq!(
        stopped.to_string(),
        "task import failed: history unreadable"
    );
    assert!(stop.is_cancelled());
    assert!(finished.load(SeqCst));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_is_ok_and_waits_for_short_lived_tasks() {
    let (mut tasks, stop, finished) = supervised_worker();
    let quiet = stop.clone();
    tasks.spawn("unit", async move { quiet.cancelled().await });
    let sent = Arc::new(AtomicBool::new(false));
    let alert = sent.clone();
    tasks.short_lived().spawn(async move {
        sleep(Duration::from_secs(2)).await;
        alert.store(true, SeqCst);
    });
    // The stop request, beside the run (a signal, in the service).
    let request = async {
        sleep(Duration::from_secs(1)).await;
        stop.cancel();
    };
    let (ran, ()) = tokio::join!(tasks.run(), request);
    ran.expect("a requested stop is no failure");
    assert!(finished.load(SeqCst));
    assert!(sent.load(SeqCst), "an alert in flight went out");
}

#[tokio::test(start_paused = true)]
async fn short_lived_tasks_are_waited_for_a_bounded_time() {
    let (tasks, stop, _) = supervised_worker();
    tasks.short_lived().spawn(std::future::pending::<()>());
    stop.cancel();
    let began = Instant::now();
    tasks.run().await.unwrap();
    let waited = began.elapsed();
    assert!(waited >= SHORT_LIVED_GRACE, "{waited:?}");
    assert!(
        waited < SHORT_LIVED_GRACE + Duration::from_secs(1),
        "{waited:?}"
    );
}

/// The tailer's final checkpoint failing is still a failure, though the stop was asked for.
#[tokio::test(start_paused = true)]
async fn a_task_failing_on_the_way_out_is_a_failure() {
    let (mut tasks, stop, _) = supervised_worker();
    let quit = stop.clone();
    tasks.spawn("change-stream", async move {
        quit.cancelled().await;
        Err::<(), _>(std::io::Error::other("final checkpoint not saved"))
    });
    stop.cancel();
    let stopped = tasks.run().await.unwrap_err();
    assert_eq!(stopped.task, "change-stream");
}
