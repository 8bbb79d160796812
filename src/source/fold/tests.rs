//! The fold: open and closed windows, edits, refunds, fences.

use super::*;
use bson::rawdoc;
use chrono_tz::Tz;

const HOUR_MS: i64 = 3_600_000;

fn fold(open_from_ms: i64) -> Fold {
    let fields = Fields {
        time: "createdAt".into(),
        amount: "amount".into(),
        utility: "utility".into(),
        status: "status".into(),
    };
    let spec = WindowSpec::new(3600, Tz::UTC).unwrap();
    let open_from = DateTime::from_timestamp_millis(open_from_ms).unwrap();
    Fold::new(fields, "fulfilled", spec, open_from)
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_748_520_000_000).unwrap()
}

fn doc_at(ms: i64, amount: i32) -> bson::RawDocumentBuf {
    rawdoc! { "createdAt": bson::DateTime::from_millis(ms), "amount": amount,
    "utility": "IKEDC", "status": "fulfilled" }
}

#[test]
fn a_sale_moved_between_closed_windows_marks_both() {
    let base = 1_748_520_000_000 - 1_748_520_000_000 % HOUR_MS;
    let mut f = fold(base + 10 * HOUR_MS);
    let live = Live::default();
    let event = rawdoc! {
        "operationType": "update",
        "fullDocumentBeforeChange": doc_at(base + 1_000, 500),
        "updateDescription": { "updatedFields": { "createdAt": bson::DateTime::from_millis(base + HOUR_MS + 1_000) } },
    };
    assert!(matches!(f.apply(&event, now(), &live), Folded::Late { .. }));
    let marks: Vec<_> = f
        .marks
        .by_window
        .iter()
        .map(|(w, t)| (w.0 - base, t.revenue, t.count))
        .collect();
    assert_eq!(
        marks,
        vec![
            (0, Decimal::from(-500), 1),
            (HOUR_MS, Decimal::from(500), 1)
        ]
    );
}

#[test]
fn refunds_and_edits_move_the_difference_in_open_windows() {
    let base = 1_748_520_000_000 - 1_748_520_000_000 % HOUR_MS;
    let mut f = fold(base);
    let live = Live::default();
    let insert = rawdoc! { "operationType": "insert", "fullDocument": doc_at(base + 1, 500) };
    assert_eq!(f.apply(&insert, now(), &live), Folded::Counted);
    let edit = rawdoc! {
        "operationType": "update",
        "fullDocumentBeforeChange": doc_at(base + 1, 500),
        "updateDescription": { "updatedFields": { "amount": 800 } },
    };
    assert_eq!(f.apply(&edit, now(), &live), Folded::Counted);
    let total = |live: &Live| {
        live.windows
            .iter()
            .map(|w| w.totals.total())
            .next()
            .unwrap()
    };
    assert_eq!(
        (total(&live).revenue, total(&live).count),
        (Decimal::from(800), 1)
    );
    let refund = rawdoc! {
        "operationType": "update",
        "fullDocumentBeforeChange": doc_at(base + 1, 800),
        "updateDescription": { "updatedFields": { "status": "refunded" } },
    };
    assert_eq!(f.apply(&refund, now(), &live), Folded::Counted);
    assert_eq!(total(&live).count, 0);
    // Replaying the same insert twice through a replace with its pre-image changes nothing.
    f.apply(&insert, now(), &live);
    let replace = rawdoc! { "operationType": "replace", "fullDocument": doc_at(base + 1, 500),
    "fullDocumentBeforeChange": doc_at(base + 1, 500) };
    assert_eq!(f.apply(&replace, now(), &live), Folded::Ignored);
    assert_eq!(
        (total(&live).revenue, total(&live).count),
        (Decimal::from(500), 1)
    );
}

/// After history loss the open windows are read from the database while the new stream
/// already runs: events up to that read are in the totals and must not count twice.
#[test]
fn events_up_to_a_fence_are_already_in_the_rebuilt_totals() {
    let base = 1_748_520_000_000 - 1_748_520_000_000 % HOUR_MS;
    let mut f = fold(base);
    let live = Live::default();
    let at = |t: u32| bson::Timestamp {
        time: t,
        increment: 1,
    };
    let insert = |t: u32| {
        rawdoc! { "operationType": "insert", "clusterTime": at(t),
        "fullDocument": doc_at(base + 1, 500) }
    };
    let window = f
        .spec
        .window_of(DateTime::from_timestamp_millis(base).unwrap());
    f.fence(window.id(), cluster_time(at(10)));
    assert_eq!(f.apply(&insert(9), now(), &live), Folded::Ignored);
    assert_eq!(f.apply(&insert(10), now(), &live), Folded::Ignored);
    assert_eq!(f.apply(&insert(11), now(), &live), Folded::Counted);
    // A refund read before the fence is in the totals too.
    let refund = rawdoc! { "operationType": "update", "clusterTime": at(10),
    "fullDocumentBeforeChange": doc_at(base + 1, 500),
    "updateDescription": { "updatedFields": { "status": "refunded" } } };
    assert_eq!(f.apply(&refund, now(), &live), Folded::Ignored);
    let count = live.windows.get(&window.id()).unwrap().totals.total().count;
    assert_eq!(count, 1);
    // Another window is not fenced; the fence goes when its window closes.
    f.close_before(window.end);
    assert!(f.fences.is_empty());
}
