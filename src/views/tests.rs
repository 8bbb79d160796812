//! The views' shapes, pinned: what the API, the status and `status --json` print.

use super::*;
use crate::window::ClosedBy;
use rust_decimal::Decimal;
use serde_json::json;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("in range")
}

fn open_window() -> OpenWindow {
    let window = Window {
        start: at(0),
        end: at(60),
    };
    let mut w = OpenWindow::new(window, at(10));
    w.totals.add("IKEDC", Decimal::new(150_050, 2)).unwrap();
    w.totals.add("EKEDC", Decimal::new(2_000, 2)).unwrap();
    w.totals.add("EKEDC", Decimal::new(1_000, 2)).unwrap();
    w.events_applied = 3;
    w.last_event_at = Some(at(30));
    w
}

#[test]
fn ranked_rows_keep_the_apis_shape() {
    let v = serde_json::to_value(TotalsView::of(&open_window().totals)).unwrap();
    assert_eq!(
        v,
        json!({
            "revenue": "1530.50",
            "count": 3,
            "by_utility": [
                {"utility": "IKEDC", "display": "IKEDC", "revenue": "1500.50", "count": 1},
                {"utility": "EKEDC", "display": "EKEDC", "revenue": "30.00", "count": 2},
            ]
        })
    );
}

#[test]
fn the_status_window_carries_its_first_shape_and_the_apis() {
    let w = open_window();
    let status = serde_json::to_value(WindowView::of(&w)).unwrap();
    let api = serde_json::to_value(OpenWindowView::of(&w)).unwrap();
    assert_eq!(status["window"], json!({"start": at(0), "end": at(60)}));
    assert_eq!(status["total"], json!({"revenue": "1530.50", "count": 3}));
    assert_eq!(
        status["by_utility"],
        json!([
            ["IKEDC", {"revenue": "1500.50", "count": 1}],
            ["EKEDC", {"revenue": "30.00", "count": 2}],
        ])
    );
    for (k, v) in api.as_object().unwrap() {
        assert_eq!(&status[k], v, "{k}");
    }
    assert_eq!(status["partial"], true);
    // `status` reads the running service's JSON back.
    let back: WindowView = serde_json::from_value(status.clone()).unwrap();
    assert_eq!(serde_json::to_value(back).unwrap(), status);
}

#[test]
fn a_report_shows_the_same_record_in_the_status_and_the_api() {
    let r = ReportRecord::closed(open_window(), ClosedBy::Stream, at(90));
    let api = serde_json::to_value(ClosedWindowView::from_record(&r, None)).unwrap();
    let status = serde_json::to_value(ReportStatus {
        window: r.window,
        delivery: r.status(),
        total: Some(r.shown().total()),
        late: Tally::default(),
        late_not_yet_reported: Tally::default(),
        record: RecordView::of(&r, None),
    })
    .unwrap();
    for (k, v) in api.as_object().unwrap() {
        if k != "delivery" {
            assert_eq!(&status[k], v, "{k}");
        }
    }
    assert_eq!(api["delivery"], "closed");
    assert_eq!(status["delivery"], json!({"state": "closed"}));
    for field in ["attempts", "last_error", "recomputed", "late", "total"] {
        assert!(status.get(field).is_some(), "{field}");
    }
    let back: ReportStatus = serde_json::from_value(status.clone()).unwrap();
    assert_eq!(serde_json::to_value(back).unwrap(), status);
}
