//! Supervised tasks through the real binary: a background task that dies stops the whole
//! process, at once and non-zero, with one ERROR line naming it, after the tailer's final
//! checkpoint (never a silent stop); and a normal SIGTERM still exits 0.

use crate::common::service::Service;
use crate::common::TestDb;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_silence_watcher_stops_the_process_and_is_named() {
    let db = TestDb::new("supervised").await;
    // The watcher looks every second (30 min silence period, the default): the panic comes at
    // its fourth look, about 3 s in, with the stream open by then.
    let started = Instant::now();
    let mut svc = Service::start(
        &db.name,
        None,
        &[("POWER_REVENUE_FAILPOINT", "silence-watcher-panics:4")],
    );
    let status = svc.wait_exit(Duration::from_secs(60)).await;
    let took = started.elapsed();
    let log = svc.current_log();
    assert_eq!(status.code(), Some(1), "{status:?}\n{log}");
    assert!(took < Duration::from_secs(15), "{took:?}\n{log}");

    let cause =
        "Task silence-watcher failed: panicked: failpoint silence-watcher-panics; stopping.";
    let lines: Vec<_> = log.lines().filter(|l| l.contains(cause)).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("ERROR"), "{log}");
    // The others were stopped, and the tailer saved its final checkpoint on the way out.
    let failed_at = log.find(cause).unwrap();
    let saved_at = log.find("final checkpoint saved").expect(&log);
    assert!(failed_at < saved_at, "{log}");
    assert!(!log.contains("failed too"), "{log}");
    assert_eq!(
        log.lines().last(),
        Some("power-revenue: task silence-watcher failed: panicked: failpoint silence-watcher-panics"),
        "{log}"
    );

    // Restarted (as systemd or Kubernetes would) without the fault: it resumes, and SIGTERM
    // is a normal stop.
    svc.restart_with(&[("POWER_REVENUE_FAILPOINT", "")]);
    svc.wait_connected().await;
    let status = svc.terminate();
    let log = svc.current_log();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(!log.contains("ERROR"), "{log}");
    assert!(log.contains("final checkpoint saved"), "{log}");
}
