//! The outbox record's moves, and records of format 1 read into the current shape.

use super::*;
use crate::store::Settlement;
use crate::window::{Tally, WindowSpec};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde_json::json;

/// Records as format 1 (the release before typed states) wrote them, byte for byte: one per
/// state, all for window 2025-05-29T12:00Z of an hour, streamed ₦4,000.50 in 2 sales, the
/// database ₦4,100.50 in 3.
const V1_CLOSED: &str = r#"{"window":{"start":"2025-05-29T12:00:00Z","end":"2025-05-29T13:00:00Z"},"streamed":{"by_utility":{"EKEDC":{"revenue":"2500","count":1},"IKEDC":{"revenue":"1500.50","count":1}}},"streamed_partial":false,"events_applied":0,"recomputed":false,"reconciliation":null,"rechecked":null,"settles":{"marks":{},"anywhere":null,"rechecked":{},"unreported":{"revenue":"0","count":0},"beyond_horizon":{"revenue":"0","count":0},"corrections":0},"payload":null,"follow_ups":[],"parts_sent":0,"delivery":{"state":"closed"},"attempts":0,"last_error":null,"updated_at":"2025-05-29T13:00:00Z"}"#;
/// Three messages, the first accepted, after three attempts; settles one correction.
const V1_READY: &str = r#"{"window":{"start":"2025-05-29T12:00:00Z","end":"2025-05-29T13:00:00Z"},"streamed":{"by_utility":{"EKEDC":{"revenue":"2500","count":1},"IKEDC":{"revenue":"1500.50","count":1}}},"streamed_partial":false,"events_applied":0,"recomputed":false,"reconciliation":{"database":{"by_utility":{"EKEDC":{"revenue":"2500","count":1},"IKEDC":{"revenue":"1600.50","count":2}}},"error":null},"rechecked":null,"settles":{"marks":{"1748519996400":{"revenue":"5","count":1}},"anywhere":null,"rechecked":{"1748519996400":{"by_utility":{"EKEDC":{"revenue":"2500","count":1},"IKEDC":{"revenue":"1600.50","count":2}}}},"unreported":{"revenue":"0","count":0},"beyond_horizon":{"revenue":"0","count":0},"corrections":1},"payload":{"text":"part 1","blocks":[{"type":"divider"}]},"follow_ups":[{"text":"part 2"},{"text":"part 3"}],"parts_sent":1,"delivery":{"state":"ready"},"attempts":3,"last_error":"Slack answered 500 rollup_error","updated_at":"2025-05-29T13:01:10Z"}"#;
const V1_SENT: &str = r#"{"window":{"start":"2025-05-29T12:00:00Z","end":"2025-05-29T13:00:00Z"},"streamed":{"by_utility":{"EKEDC":{"revenue":"2500","count":1},"IKEDC":{"revenue":"1500.50","count":1}}},"streamed_partial":false,"events_applied":0,"recomputed":false,"reconciliation":{"database":{"by_utility":{"EKEDC":{"revenue":"2500","count":1},"IKEDC":{"revenue":"1600.50","count":2}}},"error":null},"rechecked":{"by_utility":{"EKEDC":{"revenue":"2500","count":1},"IKEDC":{"revenue":"1600.50","count":2}}},"settles":{"marks":{"1748519996400":{"revenue":"5","count":1}},"anywhere":null,"rechecked":{"1748519996400":{"by_utility":{"EKEDC":{"revenue":"2500","count":1},"IKEDC":{"revenue":"1600.50","count":2}}}},"unreported":{"revenue":"0","count":0},"beyond_horizon":{"revenue":"0","count":0},"corrections":1},"payload":{"text":"part 1","blocks":[{"type":"divider"}]},"follow_ups":[{"text":"part 2"},{"text":"part 3"}],"parts_sent":3,"delivery":{"state":"sent","at":"2025-05-29T13:01:30Z"},"attempts":3,"last_error":null,"updated_at":"2025-05-29T13:01:10Z"}"#;
/// Refused at its second follow-up: two of three messages accepted.
const V1_UNDELIVERABLE: &str = r#"{"window":{"start":"2025-05-29T12:00:00Z","end":"2025-05-29T13:00:00Z"},"streamed":{"by_utility":{"EKEDC":{"revenue":"2500","count":1},"IKEDC":{"revenue":"1500.50","count":1}}},"streamed_partial":false,"events_applied":0,"recomputed":false,"reconciliation":{"database":{"by_utility":{"EKEDC":{"revenue":"2500","count":1},"IKEDC":{"revenue":"1600.50","count":2}}},"error":null},"rechecked":null,"settles":{"marks":{"1748519996400":{"revenue":"5","count":1}},"anywhere":null,"rechecked":{"1748519996400":{"by_utility":{"EKEDC":{"revenue":"2500","count":1},"IKEDC":{"revenue":"1600.50","count":2}}}},"unreported":{"revenue":"0","count":0},"beyond_horizon":{"revenue":"0","count":0},"corrections":1},"payload":{"text":"part 1","blocks":[{"type":"divider"}]},"follow_ups":[{"text":"part 2"},{"text":"part 3"}],"parts_sent":2,"delivery":{"state":"undeliverable","reason":"Slack refused the message: 404 no_service"},"attempts":3,"last_error":"Slack refused the message: 404 no_service","updated_at":"2025-05-29T13:01:10Z"}"#;
/// The database query failed: stream totals in one message.
const V1_FAILED: &str = r#"{"window":{"start":"2025-05-29T12:00:00Z","end":"2025-05-29T13:00:00Z"},"streamed":{"by_utility":{"EKEDC":{"revenue":"2500","count":1},"IKEDC":{"revenue":"1500.50","count":1}}},"streamed_partial":false,"events_applied":0,"recomputed":false,"reconciliation":{"database":null,"error":"query timed out after 120 s"},"rechecked":null,"settles":{"marks":{},"anywhere":null,"rechecked":{},"unreported":{"revenue":"0","count":0},"beyond_horizon":{"revenue":"0","count":0},"corrections":0},"payload":{"text":"stream totals"},"follow_ups":[],"parts_sent":0,"delivery":{"state":"ready"},"attempts":0,"last_error":null,"updated_at":"2025-05-29T13:00:00Z"}"#;

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

fn decode(json: &str) -> ReportRecord {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

#[test]
fn format_1_records_read_in_every_state() {
    let r = decode(V1_CLOSED);
    assert_eq!(r, closed());

    let r = decode(V1_READY);
    let Delivery::Ready(ready) = r.delivery() else {
        panic!("{r:?}")
    };
    assert_eq!(ready.reconciled, Reconciled::Database(database()));
    assert_eq!(ready.settles, settles());
    assert_eq!((ready.messages.len(), ready.messages.accepted()), (3, 1));
    assert_eq!(r.next_part(), Some(&json!({ "text": "part 2" })));
    assert_eq!(
        (r.attempts, r.last_error.as_deref()),
        (3, Some("Slack answered 500 rollup_error"))
    );
    assert_eq!(r.updated_at, at("2025-05-29T13:01:10Z"));
    assert!(r.is_pending());

    let r = decode(V1_SENT);
    let Delivery::Sent(sent) = r.delivery() else {
        panic!("{r:?}")
    };
    assert_eq!(sent.at, at("2025-05-29T13:01:30Z"));
    assert_eq!(sent.reconciled, Reconciled::Database(database()));
    assert_eq!((sent.parts, &sent.settled), (3, &settles()));
    assert_eq!(r.rechecked, Some(database()));
    assert_eq!(r.parts_accepted(), 3);
    assert!(!r.is_pending());
    assert_eq!(r.status(), DeliveryStatus::Sent { at: sent.at });

    let r = decode(V1_UNDELIVERABLE);
    let Delivery::Undeliverable(u) = r.delivery() else {
        panic!("{r:?}")
    };
    assert_eq!(u.reason, "Slack refused the message: 404 no_service");
    assert_eq!((u.messages.len(), u.messages.accepted()), (3, 2));
    assert_eq!(r.last_error.as_deref(), Some(u.reason.as_str()));
    assert_eq!(r.next_part(), None);
    assert!(!r.is_pending());

    let r = decode(V1_FAILED);
    let Delivery::Ready(ready) = r.delivery() else {
        panic!("{r:?}")
    };
    assert_eq!(
        ready.reconciled,
        Reconciled::Failed {
            error: "query timed out after 120 s".into()
        }
    );
    assert_eq!(ready.messages.len(), 1);
    assert_eq!(r.next_part(), Some(&json!({ "text": "stream totals" })));
    assert_eq!(r.shown(), &streamed());
}

#[test]
fn format_1_records_become_the_current_shape_when_saved() {
    for old in [V1_CLOSED, V1_READY, V1_SENT, V1_UNDELIVERABLE, V1_FAILED] {
        let r = decode(old);
        let saved = serde_json::to_value(&r).unwrap();
        for gone in [
            "delivery",
            "reconciliation",
            "payload",
            "follow_ups",
            "parts_sent",
            "settles",
        ] {
            assert!(saved.get(gone).is_none(), "{gone} in {saved}");
        }
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
fn format_1_oddities_read_safely() {
    let mut old: serde_json::Value = serde_json::from_str(V1_READY).unwrap();
    // Stored before reports had parts: one message, nothing accepted.
    let fields = old.as_object_mut().unwrap();
    fields.remove("follow_ups");
    fields.remove("parts_sent");
    let r: ReportRecord = serde_json::from_value(old.clone()).unwrap();
    assert_eq!(
        (r.next_part(), r.parts_accepted()),
        (
            Some(&json!({ "text": "part 1", "blocks": [{ "type": "divider" }] })),
            0
        )
    );
    // Ready with nothing to post (format 1 skipped it as if delivered; nothing of it was
    // posted): closed again, so it is prepared and posted.
    old["payload"] = serde_json::Value::Null;
    let r: ReportRecord = serde_json::from_value(old.clone()).unwrap();
    assert_eq!(*r.delivery(), Delivery::Closed);
    // A state format 1 never wrote is refused, not guessed.
    old["delivery"] = json!({ "state": "sent", "at": "2025-05-29T13:01:30Z" });
    old["reconciliation"] = serde_json::Value::Null;
    let error = serde_json::from_value::<ReportRecord>(old).unwrap_err();
    assert!(
        error.to_string().contains("sent without a reconciliation"),
        "{error}"
    );
    // Neither shape.
    let error = serde_json::from_str::<ReportRecord>(r#"{"window":{"start":"2025-05-29T12:00:00Z","end":"2025-05-29T13:00:00Z"},"streamed":{"by_utility":{}},"streamed_partial":false,"events_applied":0,"attempts":0,"last_error":null,"updated_at":"2025-05-29T13:00:00Z"}"#).unwrap_err();
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
    let id = r.window.id();
    let wrong = |stage, step| Transition::Wrong {
        window: id,
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
            window: id,
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
        Err(Transition::NoPartLeft { window: id })
    );
    assert!(r.is_pending(), "pending until marked sent");

    let sent_at = at("2025-05-29T13:01:05Z");
    r.sent(sent_at).unwrap();
    assert_eq!(
        *r.delivery(),
        Delivery::Sent(Sent {
            at: sent_at,
            reconciled: Reconciled::Database(database()),
            parts: 3,
            settled: settles(),
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
    let id = r.window.id();
    assert_eq!(
        r.sent(r.updated_at),
        Err(Transition::Wrong {
            window: id,
            stage: Stage::Undeliverable,
            step: Step::MarkedSent
        })
    );
}

#[test]
fn what_a_report_says_is_the_latest_database_reading() {
    let mut r = closed();
    assert_eq!(r.reported(), &streamed());
    r.ready(
        Reconciled::Failed {
            error: "timed out".into(),
        },
        messages(),
        Settlement::default(),
        r.updated_at,
    )
    .unwrap();
    assert_eq!((r.shown(), r.reported()), (&streamed(), &streamed()));
    let r = ready();
    assert_eq!((r.shown(), r.reported()), (&database(), &database()));
    let mut rechecked = database();
    rechecked.add("EKEDC", Decimal::from(7)).unwrap();
    let mut r = r;
    r.rechecked = Some(rechecked.clone());
    assert_eq!((r.shown(), r.reported()), (&database(), &rechecked));
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
