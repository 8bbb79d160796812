//! The outbox record's moves, and its stored shape.

use super::*;
use crate::store::Settlement;
use crate::window::{Tally, WindowId, WindowSpec};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde_json::json;

fn window() -> Window {
    WindowSpec::new(3600, Tz::UTC)
        .unwrap()
        .window_of(DateTime::from_timestamp(1_748_520_000, 0).unwrap())
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn streamed() -> Totals {
    let mut t = Totals::default();
    t.add("IKEDC", Decimal::new(150050, 2)).unwrap();
    t.add("EKEDC", Decimal::from(2500)).unwrap();
    t
}

fn database() -> Totals {
    let mut t = streamed();
    t.add("IKEDC", Decimal::from(100)).unwrap();
    t
}

fn settles() -> Settlement {
    let earlier = WindowId(window().id().0 - 3600);
    Settlement {
        marks: [(
            earlier,
            Tally {
                revenue: Decimal::from(5),
                count: 1,
            },
        )]
        .into(),
        rechecked: [(earlier, database())].into(),
        corrections: 1,
        ..Settlement::default()
    }
}

fn messages() -> Messages {
    Messages::new(
        json!({ "text": "part 1", "blocks": [{ "type": "divider" }] }),
        vec![json!({ "text": "part 2" }), json!({ "text": "part 3" })],
    )
}

fn closed() -> ReportRecord {
    let w = window();
    let mut open = OpenWindow::new(w, w.start);
    open.totals = streamed();
    ReportRecord::closed(open, ClosedBy::Stream, w.end)
}

fn ready() -> ReportRecord {
    let mut r = closed();
    r.ready(
        Reconciled::Database(database()),
        messages(),
        settles(),
        at("2025-05-29T13:00:30Z"),
    )
    .unwrap();
    r
}

#[test]
fn records_read_back_as_saved_in_every_state() {
    let mut sent = ready();
    while sent.next_part().is_some() {
        sent.part_accepted(sent.updated_at).unwrap();
    }
    sent.sent(at("2025-05-29T13:01:30Z")).unwrap();
    let mut refused = ready();
    refused.part_accepted(refused.updated_at).unwrap();
    refused
        .refused(
            "Slack refused the message: 404 no_service".into(),
            refused.updated_at,
        )
        .unwrap();
    let mut failed = closed();
    failed
        .ready(
            Reconciled::Failed {
                error: "query timed out after 120 s".into(),
            },
            Messages::new(json!({ "text": "stream totals" }), vec![]),
            Settlement::default(),
            failed.updated_at,
        )
        .unwrap();
    for r in [closed(), ready(), sent, refused, failed] {
        let saved = serde_json::to_value(&r).unwrap();
        let state = match &saved["outbox"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(o) if o.len() == 1 => o.keys().next().unwrap().clone(),
            other => panic!("outbox is {other}"),
        };
        assert_eq!(state, r.stage().as_str());
        assert_eq!(serde_json::from_value::<ReportRecord>(saved).unwrap(), r);
    }
}

#[test]
fn a_record_without_its_state_is_refused() {
    let mut saved = serde_json::to_value(ready()).unwrap();
    saved.as_object_mut().unwrap().remove("outbox");
    let error = serde_json::from_value::<ReportRecord>(saved).unwrap_err();
    assert!(error.to_string().contains("outbox"), "{error}");
}

#[test]
fn messages_on_disk_cannot_claim_more_accepted_than_they_hold() {
    let stored = json!({ "first": { "text": "a" }, "follow_ups": [], "accepted": 2 });
    assert!(serde_json::from_value::<Messages>(stored).is_err());
    let stored = json!({ "first": { "text": "a" }, "follow_ups": [], "accepted": 1 });
    assert_eq!(
        serde_json::from_value::<Messages>(stored)
            .unwrap()
            .accepted(),
        1
    );
}

#[test]
fn a_report_goes_closed_ready_sent_and_its_parts_in_order() {
    let mut r = closed();
    let id = r.id();
    let wrong = |stage, step| Transition::Wrong {
        message: id,
        stage,
        step,
    };
    assert!(r.is_pending());
    assert_eq!(
        (r.next_part(), r.reconciled(), r.parts_accepted()),
        (None, None, 0)
    );
    assert_eq!(
        r.part_accepted(r.updated_at),
        Err(wrong(Stage::Closed, Step::PartAccepted))
    );
    assert_eq!(
        r.sent(r.updated_at),
        Err(wrong(Stage::Closed, Step::MarkedSent))
    );
    assert_eq!(
        r.refused("x".into(), r.updated_at),
        Err(wrong(Stage::Closed, Step::Refused))
    );
    assert_eq!(r, closed(), "a refused move leaves the record as it was");

    let mut r = ready();
    assert_eq!(r.stage(), Stage::Ready);
    assert_eq!(r.updated_at, at("2025-05-29T13:00:30Z"));
    let again = r.ready(
        Reconciled::Database(database()),
        messages(),
        settles(),
        r.updated_at,
    );
    assert_eq!(again, Err(wrong(Stage::Ready, Step::MadeReady)));
    r.last_error = Some("Slack answered 500".into());
    let before = r.clone();
    assert_eq!(
        r.sent(r.updated_at),
        Err(Transition::PartsLeft {
            message: id,
            left: 3
        })
    );
    assert_eq!(r, before);
    let mut posted = vec![];
    let mut progress = vec![];
    while let Some(next) = r.next_part().cloned() {
        posted.push(next);
        progress.push(r.part_accepted(at("2025-05-29T13:01:00Z")).unwrap());
        assert_eq!(r.last_error, None, "an accepted part ends the error");
    }
    assert_eq!(posted, messages().iter().cloned().collect::<Vec<_>>());
    assert_eq!(
        progress,
        [
            Progress::PartsLeft,
            Progress::PartsLeft,
            Progress::AllAccepted
        ]
    );
    assert_eq!(
        r.part_accepted(r.updated_at),
        Err(Transition::NoPartLeft { message: id })
    );
    assert!(r.is_pending(), "pending until marked sent");

    let sent_at = at("2025-05-29T13:01:05Z");
    r.sent(sent_at).unwrap();
    assert_eq!(
        *r.delivery(),
        Delivery::Sent(Sent {
            at: sent_at,
            what: Reported {
                reconciled: Reconciled::Database(database()),
                settles: settles(),
            },
            parts: 3,
        })
    );
    assert_eq!(
        (r.updated_at, r.parts_accepted(), r.is_pending()),
        (sent_at, 3, false)
    );
    assert_eq!(r.sent(sent_at), Err(wrong(Stage::Sent, Step::MarkedSent)));
    assert_eq!(
        r.refused("x".into(), sent_at),
        Err(wrong(Stage::Sent, Step::Refused))
    );
    assert_eq!(
        r.part_accepted(sent_at),
        Err(wrong(Stage::Sent, Step::PartAccepted))
    );
}

#[test]
fn a_refused_report_keeps_what_slack_took_and_settles_nothing() {
    let mut r = ready();
    r.part_accepted(r.updated_at).unwrap();
    r.refused("400 invalid_payload".into(), at("2025-05-29T13:02:00Z"))
        .unwrap();
    let Delivery::Undeliverable(u) = r.delivery() else {
        panic!("{r:?}")
    };
    assert_eq!(u.reason, "400 invalid_payload");
    assert_eq!((u.messages.accepted(), r.parts_accepted()), (1, 1));
    assert_eq!(
        r.status(),
        DeliveryStatus::Undeliverable {
            reason: u.reason.clone()
        }
    );
    assert!(!r.is_pending());
    assert_eq!(r.next_part(), None);
    let id = r.id();
    assert_eq!(
        r.sent(r.updated_at),
        Err(Transition::Wrong {
            message: id,
            stage: Stage::Undeliverable,
            step: Step::MarkedSent
        })
    );
}

#[test]
fn what_a_report_shows_is_the_database_reading_else_the_stream() {
    let mut r = closed();
    assert_eq!(r.shown(), &streamed());
    r.ready(
        Reconciled::Failed {
            error: "timed out".into(),
        },
        messages(),
        Settlement::default(),
        r.updated_at,
    )
    .unwrap();
    assert_eq!(r.shown(), &streamed());
    assert_eq!(ready().shown(), &database());
}

#[test]
fn status_and_the_api_name_states_as_before() {
    let names: Vec<_> = [
        Stage::Closed,
        Stage::Ready,
        Stage::Sent,
        Stage::Undeliverable,
    ]
    .map(Stage::as_str)
    .into();
    assert_eq!(names, ["closed", "ready", "sent", "undeliverable"]);
    let json = |s: &DeliveryStatus| serde_json::to_value(s).unwrap();
    assert_eq!(json(&closed().status()), json!({ "state": "closed" }));
    assert_eq!(json(&ready().status()), json!({ "state": "ready" }));
    let sent = DeliveryStatus::Sent {
        at: at("2025-05-29T13:01:30Z"),
    };
    assert_eq!(
        json(&sent),
        json!({ "state": "sent", "at": "2025-05-29T13:01:30Z" })
    );
}
