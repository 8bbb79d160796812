use super::changes::*;
use super::*;
use crate::window::ClosedBy;
use crate::window::{Tally, WindowSpec};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

fn tally2(t: Tally) -> Tally {
    Tally {
        revenue: t.revenue * Decimal::from(2),
        count: t.count * 2,
    }
}

/// Closed → Ready with one message and `settles`.
fn ready(r: &mut ReportRecord, settles: Settlement) {
    let messages = Messages::new(serde_json::json!({ "text": "report" }), vec![]);
    let reconciled = Reconciled::Database(r.streamed.clone());
    r.ready(reconciled, messages, settles, r.window.end)
        .unwrap();
}

fn window() -> Window {
    WindowSpec::new(3600, Tz::UTC)
        .unwrap()
        .window_of(DateTime::from_timestamp(1_748_520_000, 0).unwrap())
}

/// Opens again in this process: sled's background threads let go of the directory's lock
/// a moment after the `Db` is dropped, so wait for that (bounded) instead of failing.
async fn reopen(dir: &Path) -> Store {
    open_when_released(dir).await.unwrap()
}

/// [`Store::open`] once sled has let go of the lock, whatever it answers then.
async fn open_when_released(dir: &Path) -> Result<Store, StoreError> {
    for _ in 0..100 {
        match Store::open(dir) {
            Err(StoreError::Locked(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            other => return other,
        }
    }
    panic!("{} still locked after 2 s", dir.display());
}

#[tokio::test]
async fn checkpoint_and_outbox_round_trip_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let w = window();
    let mut open = OpenWindow::new(w, w.start);
    open.totals.add("IKEDC", Decimal::new(150050, 2)).unwrap();
    let five = Tally {
        revenue: Decimal::from(5),
        count: 1,
    };
    {
        let store = Store::open(dir.path()).unwrap();
        assert!(store.load_checkpoint().unwrap().is_none());
        let cp = Checkpoint {
            token: None,
            open: vec![open.clone()],
            next_close: w,
            saved_at: w.start,
        };
        let mut closed = ReportRecord::closed(open.clone(), ClosedBy::Stream, w.end);
        let late = Marks {
            by_window: BTreeMap::from([(w.id(), five)]),
            anywhere: five,
        };
        store
            .save_checkpoint(
                &cp,
                std::slice::from_ref(&closed),
                &late,
                &crate::activity::Activity::default(),
            )
            .await
            .unwrap();
        store
            .save_checkpoint(&cp, &[], &late, &crate::activity::Activity::default())
            .await
            .unwrap();
        assert_eq!(
            store.unsettled_since(WindowId(0)).unwrap()[&w.id()].count,
            2
        );
        assert_eq!(store.changes_anywhere().unwrap().0.count, 2);
        // Undelivered, a report settles nothing; delivered, it settles what it says.
        let settles = Settlement {
            marks: late.by_window.clone(),
            anywhere: Some(five),
            unreported: five,
            ..Settlement::default()
        };
        ready(&mut closed, settles);
        store.put_report(&closed).await.unwrap();
        assert_eq!(
            store.unsettled_since(WindowId(0)).unwrap()[&w.id()].count,
            2
        );
        assert!(matches!(
            store.mark_delivered(&closed).await,
            Err(StoreError::NotSent(id)) if id == w.id()
        ));
        assert_eq!(
            store.unsettled_since(WindowId(0)).unwrap()[&w.id()].count,
            2
        );
        closed.part_accepted(w.end).unwrap();
        closed.sent(w.end).unwrap();
        store.mark_delivered(&closed).await.unwrap();
    }
    let store = reopen(dir.path()).await;
    let cp = store.load_checkpoint().unwrap().unwrap();
    assert_eq!(cp.open, vec![open]);
    let reports = store.reports().unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].streamed.total().revenue, Decimal::new(150050, 2));
    assert_eq!(reports[0].stage(), Stage::Sent);
    assert_eq!(store.unsettled_since(WindowId(0)).unwrap()[&w.id()], five);
    assert_eq!(store.late().unwrap()[&w.id()].count, 2);
    assert_eq!(store.changes_anywhere().unwrap(), (tally2(five), five));
    assert_eq!(store.unposted().unwrap().unreported, five);
    // One key per window however many sales arrive late: state is O(windows).
    assert_eq!(store.tree.scan_prefix(LATE_PREFIX).count(), 1);
}

#[test]
fn a_second_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    // sled's lock is per process (flock), so test the message via a child process instead
    // in tests/it/cli.rs; here only check a foreign tree is refused.
    drop(_first);
    let db = sled_when_released(dir.path());
    db.open_tree("state")
        .unwrap()
        .insert(KEY_FORMAT, b"other/9".as_slice())
        .unwrap();
    db.flush().unwrap();
    drop(db);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let reopened = loop {
        match Store::open(dir.path()) {
            Err(StoreError::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            other => break other,
        }
    };
    assert!(matches!(reopened, Err(StoreError::Foreign(_))));
}

/// sled releases its file lock from a background thread some time after the last handle is
/// dropped: wait for that, up to a bound, instead of racing it.
fn sled_when_released(dir: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::open(dir) {
            Err(sled::Error::Io(e))
                if e.to_string().contains("lock") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other.expect("sled opens once the lock is released"),
        }
    }
}

#[tokio::test]
async fn a_directory_of_another_format_is_refused_with_what_to_do() {
    for (format, found) in [
        (b"power-revenue/1".as_slice(), "1"),
        (b"power-revenue/2", "2"),
        (b"power-revenue/4", "4"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let w = window();
        {
            let store = Store::open(dir.path()).unwrap();
            store.tree.insert(KEY_FORMAT, format).unwrap();
            store
                .put_report(&ReportRecord::closed(
                    OpenWindow::new(w, w.start),
                    ClosedBy::Stream,
                    w.end,
                ))
                .await
                .unwrap();
        }
        let refused = open_when_released(dir.path()).await;
        let Err(error @ StoreError::Format { .. }) = refused else {
            panic!("{format:?} opened: {:?}", refused.map(|_| ()));
        };
        assert!(!error.is_retryable());
        assert_eq!(
            error.to_string(),
            format!(
                "state directory {} holds power-revenue state of format {found}, this build reads format 3; move it aside (the service then starts at the current window)",
                dir.path().display()
            )
        );
        // Left as it was, for the build that wrote it.
        let db = sled_when_released(dir.path());
        let tree = db.open_tree("state").unwrap();
        assert_eq!(tree.get(KEY_FORMAT).unwrap().unwrap().as_ref(), format);
        assert!(tree.get(report_key(w.id()).as_bytes()).unwrap().is_some());
    }
}

#[tokio::test]
async fn a_history_page_holds_the_windows_starting_in_its_range_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let spec = WindowSpec::new(3600, Tz::UTC).unwrap();
    let mut w = window();
    let mut windows = vec![];
    for _ in 0..5 {
        let r = ReportRecord::closed(OpenWindow::new(w, w.start), ClosedBy::Stream, w.end);
        store.put_report(&r).await.unwrap();
        windows.push(w);
        w = spec.next(&w);
    }
    let starts = |rs: Vec<ReportRecord>| rs.iter().map(|r| r.window.start).collect::<Vec<_>>();
    let all: Vec<_> = windows.iter().map(|w| w.start).collect();
    assert_eq!(starts(store.reports_between(None, None, 100).unwrap()), all);
    // Half-open on the start: `to` at a window's start leaves it out, `from` there keeps it.
    let (from, to) = (Some(windows[1].start), Some(windows[3].start));
    assert_eq!(
        starts(store.reports_between(from, to, 100).unwrap()),
        all[1..3]
    );
    // Bounds between whole milliseconds, and inside a window.
    let ns = chrono::TimeDelta::nanoseconds(1);
    let (from, to) = (Some(windows[1].start + ns), Some(windows[3].start + ns));
    assert_eq!(
        starts(store.reports_between(from, to, 100).unwrap()),
        all[2..4]
    );
    let (from, to) = (Some(windows[1].start - ns), Some(windows[3].start - ns));
    assert_eq!(
        starts(store.reports_between(from, to, 100).unwrap()),
        all[1..3]
    );
    assert_eq!(
        starts(store.reports_between(None, None, 2).unwrap()),
        all[..2]
    );
    assert!(store.reports_between(to, from, 100).unwrap().is_empty());
    // The latest, newest first, as `last=` reads them.
    let newest: Vec<_> = all.iter().rev().copied().collect();
    assert_eq!(starts(store.latest_reports(2).unwrap()), newest[..2]);
    assert_eq!(starts(store.latest_reports(100).unwrap()), newest);
    let before_1970 = DateTime::from_timestamp(-10, 0);
    assert_eq!(
        starts(store.reports_between(before_1970, None, 100).unwrap()),
        all
    );
}
