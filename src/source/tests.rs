//! The tailer's batch loop around the closer, with a real store and a client that never
//! connects (nothing here reaches the server: no window falls due).

use super::*;
use crate::config::Settings;
use crate::window::OpenWindow;
use bson::rawdoc;

async fn tailer(state: &std::path::Path) -> Tailer {
    tailer_on(state, Store::open(state).unwrap()).await
}

async fn tailer_on(state: &std::path::Path, store: Store) -> Tailer {
    let config = Config::from_settings(Settings {
        mongodb_uri: Some("mongodb://127.0.0.1:1/power".into()),
        state_dir: Some(state.to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    // Lazy: the driver connects on first use, and nothing here uses it.
    let client = mongodb::Client::with_uri_str("mongodb://127.0.0.1:1/?directConnection=true")
        .await
        .unwrap();
    let coll = client
        .database("power")
        .collection("power_transaction_items");
    let sales = Sales {
        stream: coll.clone(),
        queries: coll,
    };
    let alerts = Alerter::new(store.clone(), Arc::new(Notify::new()));
    Tailer::restore(
        sales,
        Arc::new(config),
        store,
        Arc::new(Live::default()),
        Arc::new(Notify::new()),
        alerts,
        Utc::now(),
    )
    .unwrap()
}

/// An insert of a fulfilled ₦100 sale now, with resume token `n`.
fn insert(n: u32) -> bson::RawDocumentBuf {
    rawdoc! {
        "_id": { "_data": format!("{n:08}") },
        "operationType": "insert",
        "clusterTime": bson::Timestamp { time: 1, increment: n },
        "fullDocument": {
            "createdAt": bson::DateTime::now(),
            "amount": 100,
            "utility": "IKEDC",
            "status": "fulfilled",
        },
    }
}

fn counted(t: &Tailer) -> u64 {
    t.live.windows.iter().map(|w| w.totals.total().count).sum()
}

/// Suspected defect: a malformed event mid-batch made the stream resume from the token saved
/// before the batch, applying the events before it a second time.
#[tokio::test]
async fn a_malformed_event_resumes_after_the_last_event_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tailer(dir.path()).await;
    let before = t.token.clone();
    let (one, two, three) = (insert(1), insert(2), insert(3));
    let events = [Some(&*one), Some(&*two), None, Some(&*three)];
    let outcome = t.apply_events(events.into_iter(), || None).await;
    assert!(
        matches!(outcome, Err(SourceError::Malformed)),
        "{outcome:?}"
    );
    assert_eq!(
        counted(&t),
        2,
        "the events before the bad one are applied, once"
    );
    assert_ne!(t.token, before);
    assert_eq!(
        t.token,
        event_token(&two),
        "the stream resumes right after them"
    );
    // Resuming there, the server sends the rest: nothing is counted twice.
    t.apply_events([Some(&*three)].into_iter(), || None)
        .await
        .unwrap();
    assert_eq!(counted(&t), 3);
    assert_eq!(t.token, event_token(&three));
}

/// A whole batch moves the position to the server's end token, past its events.
#[tokio::test]
async fn a_batch_ends_at_the_servers_position() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tailer(dir.path()).await;
    let (one, end) = (insert(1), insert(9));
    let end_token = event_token(&end);
    t.apply_events([Some(&*one)].into_iter(), || end_token.clone())
        .await
        .unwrap();
    assert_eq!(counted(&t), 1);
    assert_eq!(t.token, event_token(&end));
}

/// After history loss a window's totals are read from the database at a cluster time; a
/// restart that replays the stream from before that time must not count those events again.
#[tokio::test]
async fn a_rebuilt_windows_fence_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut t = tailer_on(dir.path(), store.clone()).await;
    let sale = insert(5);
    let window = t.config.window.window_of(Utc::now());
    let mut open = OpenWindow::new(window, window.start);
    open.totals
        .add("IKEDC", rust_decimal::Decimal::from(100))
        .unwrap();
    open.recomputed = true;
    open.read_at = Some(cluster_time(bson::Timestamp {
        time: 1,
        increment: 10,
    }));
    t.live.windows.insert(window.id(), open);
    t.save_position().await.unwrap();
    drop(t);
    let mut t = tailer_on(dir.path(), store).await;
    assert_eq!(counted(&t), 1);
    // Replayed: committed before the read, so already in the rebuilt totals.
    t.apply_events([Some(&*sale)].into_iter(), || None)
        .await
        .unwrap();
    assert_eq!(counted(&t), 1);
    // After the read: counted.
    let later = insert(11);
    t.apply_events([Some(&*later)].into_iter(), || None)
        .await
        .unwrap();
    assert_eq!(counted(&t), 2);
}

/// Silence alerts wait for the stream to catch up: an event applied long after its commit is
/// behind, one applied at once is caught up and stays so while the stream idles; behind, two
/// empty batches in a row (the end of the oplog) catch it up; a reconnect starts behind.
#[tokio::test]
async fn caught_up_by_lag_or_at_the_end_of_the_oplog() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tailer(dir.path()).await;
    let caught_up = |t: &Tailer| t.live.caught_up.load(Relaxed);
    let none = || std::iter::empty::<Option<&RawDocument>>();
    assert!(!caught_up(&t));
    // Committed in 1970: far behind.
    t.apply_events([Some(&*insert(1))].into_iter(), || None)
        .await
        .unwrap();
    assert!(!caught_up(&t));
    t.apply_events(none(), || None).await.unwrap();
    assert!(!caught_up(&t), "one empty batch proves nothing");
    t.apply_events(none(), || None).await.unwrap();
    assert!(caught_up(&t), "two in a row: the end of the oplog");
    t.on_connected(&mut reconnect_backoff());
    assert!(!caught_up(&t), "a reopened stream starts behind");
    let now = u32::try_from(Utc::now().timestamp()).unwrap();
    let fresh = rawdoc! {
        "_id": { "_data": "00000002" },
        "operationType": "insert",
        "clusterTime": bson::Timestamp { time: now, increment: 1 },
        "fullDocument": {
            "createdAt": bson::DateTime::now(),
            "amount": 100,
            "utility": "IKEDC",
            "status": "fulfilled",
        },
    };
    t.apply_events([Some(&*fresh)].into_iter(), || None)
        .await
        .unwrap();
    assert!(caught_up(&t), "applied right after its commit");
    t.apply_events(none(), || None).await.unwrap();
    assert!(caught_up(&t), "and stays so on an idle stream");
    t.on_disconnected();
    assert!(!caught_up(&t));
}
