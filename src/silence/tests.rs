//! The silence machine with an injected clock, and how sales are seen in the live totals.

use super::baseline::Baseline;
use super::machine::{Action, Machine, Stream, Told};
use super::Seen;
use crate::source::Live;
use crate::window::{OpenWindow, Window};
use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use std::time::Duration;

const PERIOD: Duration = Duration::from_secs(1800);

fn at(mins: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_748_520_000, 0).unwrap() + TimeDelta::minutes(mins)
}

/// Sales over the 7 baseline periods.
fn baseline(rows: &[(&str, u64)]) -> Baseline {
    Baseline {
        sales: rows.iter().map(|(u, n)| ((*u).to_owned(), *n)).collect(),
        days: 7,
    }
}

/// A machine with min 5 sales per period, started at minute 0, IKEDC usually 42, EKEDC 10.
fn machine() -> Machine {
    let mut m = Machine::new(PERIOD, 5, at(0));
    m.baseline(baseline(&[("IKEDC", 294), ("EKEDC", 70)]));
    m
}

fn silent_of(actions: &[Action]) -> Vec<(&str, u64, u64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Silent {
                utility,
                silent_for,
                usual_sales,
                ..
            } => Some((utility.as_str(), silent_for.as_secs() / 60, *usual_sales)),
            Action::Resumed { .. } => None,
        })
        .collect()
}

#[test]
fn one_alert_per_silence_and_one_resumed() {
    let mut m = machine();
    assert_eq!(m.sale("IKEDC", at(1)), None);
    assert_eq!(m.sale("EKEDC", at(1)), None);
    // EKEDC keeps selling; IKEDC stops after minute 1.
    let mut alerts = Vec::new();
    for minute in 2..=60 {
        m.sale("EKEDC", at(minute));
        alerts.extend(m.tick(at(minute), Stream::CaughtUp));
    }
    assert_eq!(silent_of(&alerts), [("IKEDC", 30, 42)]);
    let silent = m.silent();
    assert_eq!(silent.len(), 1);
    assert_eq!(
        (silent[0].utility.as_str(), silent[0].since),
        ("IKEDC", at(1))
    );
    // It sells again: one resumed notice, with how long the silence lasted.
    assert_eq!(
        m.sale("IKEDC", at(75)),
        Some(Action::Resumed {
            utility: "IKEDC".into(),
            lasted: Duration::from_secs(74 * 60),
        })
    );
    assert_eq!(m.sale("IKEDC", at(76)), None);
    assert!(m.tick(at(80), Stream::CaughtUp).is_empty());
    assert!(m.silent().is_empty());
    // A second silence is a second alert.
    let again = m.tick(at(106), Stream::CaughtUp);
    assert_eq!(silent_of(&again), [("EKEDC", 46, 10), ("IKEDC", 30, 42)]);
}

#[test]
fn no_alert_while_disconnected_or_behind() {
    let mut m = machine();
    m.sale("IKEDC", at(0));
    m.sale("EKEDC", at(0));
    for minute in 1..=90 {
        assert!(m.tick(at(minute), Stream::Behind).is_empty());
    }
    assert!(m.silent().is_empty());
    // Caught up again (the backlog held no IKEDC sale, but one of EKEDC): IKEDC alerts now,
    // with the whole silence.
    m.sale("EKEDC", at(91));
    let actions = m.tick(at(91), Stream::CaughtUp);
    assert_eq!(silent_of(&actions), [("IKEDC", 91, 42)]);
}

#[test]
fn below_the_minimum_or_without_a_baseline_never_alerts() {
    let mut m = Machine::new(PERIOD, 5, at(0));
    // No baseline yet: nothing, however long.
    assert!(m.tick(at(120), Stream::CaughtUp).is_empty());
    // 34 sales over 7 days averages 4.86 < 5; NEW sold today but has no baseline.
    m.baseline(baseline(&[("AEDC", 34)]));
    m.sale("NEW", at(121));
    m.sale("AEDC", at(121));
    for minute in 122..=400 {
        assert!(m.tick(at(minute), Stream::CaughtUp).is_empty());
    }
    assert!(m.silent().is_empty());
}

#[test]
fn a_utility_never_seen_is_silent_from_the_start() {
    let mut m = machine();
    m.sale("EKEDC", at(29));
    assert!(m.tick(at(29), Stream::CaughtUp).is_empty());
    let actions = m.tick(at(30), Stream::CaughtUp);
    assert_eq!(silent_of(&actions), [("IKEDC", 30, 42)]);
    assert_eq!(m.silent()[0].since, at(0));
}

#[test]
fn a_held_back_alert_gets_no_resumed_notice() {
    let mut m = machine();
    m.sale("EKEDC", at(40));
    let actions = m.tick(at(40), Stream::CaughtUp);
    assert_eq!(silent_of(&actions), [("IKEDC", 40, 42)]);
    m.told("IKEDC", Told::HeldBack);
    // Still shown as silent, but its end goes unsaid.
    assert_eq!(m.silent().len(), 1);
    assert_eq!(m.sale("IKEDC", at(41)), None);
    assert!(m.silent().is_empty());
}

#[test]
fn a_clock_stepped_back_never_moves_the_last_sale_back() {
    let mut m = machine();
    m.sale("IKEDC", at(20));
    m.sale("IKEDC", at(5));
    m.sale("EKEDC", at(45));
    assert!(silent_of(&m.tick(at(45), Stream::CaughtUp)).is_empty());
    assert_eq!(
        silent_of(&m.tick(at(50), Stream::CaughtUp)),
        [("IKEDC", 30, 42)]
    );
}

#[test]
fn sales_are_seen_where_a_count_goes_up() {
    let live = Live::default();
    let w = Window {
        start: at(0),
        end: at(60),
    };
    let mut open = OpenWindow::new(w, at(0));
    open.totals.add("IKEDC", Decimal::ONE).unwrap();
    live.windows.insert(w.id(), open);
    let mut seen = Seen::default();
    // The first look: what is there was sold before, at unknown times.
    assert!(seen.look(&live).is_empty());
    assert!(seen.look(&live).is_empty());
    live.windows
        .get_mut(&w.id())
        .unwrap()
        .totals
        .add("EKEDC", Decimal::ONE)
        .unwrap();
    assert_eq!(seen.look(&live), ["EKEDC"]);
    // A new window: every count in it is new.
    let next = Window {
        start: at(60),
        end: at(120),
    };
    let mut open = OpenWindow::new(next, at(60));
    open.totals.add("IKEDC", Decimal::ONE).unwrap();
    live.windows.insert(next.id(), open);
    assert_eq!(seen.look(&live), ["IKEDC"]);
    // The first window closes: nothing is seen.
    live.windows.remove(&w.id());
    assert!(seen.look(&live).is_empty());
}

#[test]
fn the_api_shape_is_the_contracts() {
    let board = super::Board::default();
    board.set(vec![super::machine::SilentNow {
        utility: "IK\u{1b}EDC".into(),
        since: at(0),
        usual_sales: 42,
    }]);
    let list = super::SilentView::list(&board, at(31));
    let v = serde_json::to_value(&list).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{
            "utility": "IK\u{1b}EDC",
            "display": "IK\u{FFFD}EDC",
            "silent_since": at(0),
            "silent_for_secs": 31 * 60,
            "usual_sales": 42,
        }])
    );
}
