//! The silence machine with an injected clock, and how sales are seen in the live totals.

use super::baseline::Baseline;
use super::machine::{Machine, Step, Stream};
use super::Seen;
use crate::alert::Resumption;
use crate::source::Live;
use crate::store::{SilenceRecord, SilenceTold};
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

/// One step at `minute` with these sales, caught up.
fn step(m: &mut Machine, minute: i64, sold: &[&str]) -> Step {
    let sold: Vec<String> = sold.iter().map(|u| (*u).to_owned()).collect();
    m.step(at(minute), &sold, Stream::CaughtUp)
}

/// The alerted silences of a step: utility, minutes silent, usual sales.
fn alerted(step: &Step) -> Vec<(&str, u64, u64)> {
    step.alert
        .iter()
        .map(|s| {
            (
                s.utility.as_str(),
                s.silent_for.as_secs() / 60,
                s.usual_sales,
            )
        })
        .collect()
}

fn resumed(step: &Step) -> Vec<(&str, u64)> {
    step.resumed
        .iter()
        .map(|r| (r.utility.as_str(), r.lasted.as_secs() / 60))
        .collect()
}

#[test]
fn one_alert_per_silence_and_one_resumed() {
    let mut m = machine();
    assert_eq!(step(&mut m, 1, &["IKEDC", "EKEDC"]), Step::default());
    // EKEDC keeps selling; IKEDC stops after minute 1.
    let mut alerts = Vec::new();
    for minute in 2..=60 {
        let s = step(&mut m, minute, &["EKEDC"]);
        assert!(s.held_back.is_empty() && s.resumed.is_empty());
        alerts.extend(s.alert);
    }
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (
            alerts[0].utility.as_str(),
            alerts[0].silent_for.as_secs(),
            alerts[0].usual_sales
        ),
        ("IKEDC", 30 * 60, 42)
    );
    let silent = m.silent();
    assert_eq!(silent.len(), 1);
    assert_eq!(
        (silent[0].utility.as_str(), silent[0].since),
        ("IKEDC", at(1))
    );
    // It sells again: one resumed notice, with how long the silence lasted.
    let s = step(&mut m, 75, &["IKEDC"]);
    assert_eq!(
        s.resumed,
        [Resumption {
            utility: "IKEDC".into(),
            lasted: Duration::from_secs(74 * 60),
        }]
    );
    assert!(s.alert.is_empty());
    assert_eq!(step(&mut m, 76, &["IKEDC"]), Step::default());
    assert_eq!(step(&mut m, 80, &[]), Step::default());
    assert!(m.silent().is_empty());
    // A second silence (past the rate limit) is a second alert; both utilities falling
    // silent in the same step share it, most usual sales first.
    let again = step(&mut m, 106, &[]);
    assert_eq!(alerted(&again), [("IKEDC", 30, 42), ("EKEDC", 46, 10)]);
}

#[test]
fn an_outage_upstream_is_one_alert_and_one_resumed_notice() {
    let names: Vec<String> = (0..25).map(|i| format!("U{i:02}")).collect();
    let rows: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 70)).collect();
    let mut m = Machine::new(PERIOD, 5, at(0));
    m.baseline(baseline(&rows));
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    step(&mut m, 0, &all);
    for minute in 1..30 {
        assert_eq!(step(&mut m, minute, &[]), Step::default());
    }
    // Every utility falls silent in the same step: one alert names them all.
    let s = step(&mut m, 30, &[]);
    assert_eq!(s.alert.len(), 25);
    assert!(s.held_back.is_empty() && s.resumed.is_empty());
    assert_eq!(m.silent().len(), 25);
    // Sales come back in one step: one notice.
    let s = step(&mut m, 50, &all);
    assert_eq!(s.resumed.len(), 25);
    assert!(s.resumed.iter().all(|r| r.lasted.as_secs() == 50 * 60));
    assert!(s.alert.is_empty());
}

#[test]
fn no_alert_while_disconnected_or_behind() {
    let mut m = machine();
    step(&mut m, 0, &["IKEDC", "EKEDC"]);
    for minute in 1..=90 {
        assert_eq!(m.step(at(minute), &[], Stream::Behind), Step::default());
    }
    assert!(m.silent().is_empty());
    // Caught up again (the backlog held no IKEDC sale, but one of EKEDC): IKEDC alerts now,
    // with the whole silence.
    let s = step(&mut m, 91, &["EKEDC"]);
    assert_eq!(alerted(&s), [("IKEDC", 91, 42)]);
}

#[test]
fn below_the_minimum_or_without_a_baseline_never_alerts() {
    let mut m = Machine::new(PERIOD, 5, at(0));
    // No baseline yet: nothing, however long.
    assert_eq!(step(&mut m, 120, &[]), Step::default());
    // 34 sales over 7 days averages 4.86 < 5; NEW sold today but has no baseline.
    m.baseline(baseline(&[("AEDC", 34)]));
    step(&mut m, 121, &["NEW", "AEDC"]);
    for minute in 122..=400 {
        assert_eq!(step(&mut m, minute, &[]), Step::default());
    }
    assert!(m.silent().is_empty());
}

#[test]
fn a_utility_never_seen_is_silent_from_the_start() {
    let mut m = machine();
    assert_eq!(step(&mut m, 29, &["EKEDC"]), Step::default());
    let s = step(&mut m, 30, &[]);
    assert_eq!(alerted(&s), [("IKEDC", 30, 42)]);
    assert_eq!(m.silent()[0].since, at(0));
}

#[test]
fn a_silence_within_the_rate_limit_is_held_back_and_its_end_unsaid() {
    // A 5-minute period: IKEDC can fall silent again well within the 30-minute limit.
    let mut m = Machine::new(Duration::from_secs(300), 5, at(0));
    m.baseline(baseline(&[("IKEDC", 294)]));
    step(&mut m, 0, &["IKEDC"]);
    assert_eq!(alerted(&step(&mut m, 5, &[])), [("IKEDC", 5, 42)]);
    assert_eq!(resumed(&step(&mut m, 6, &["IKEDC"])), [("IKEDC", 6)]);
    let s = step(&mut m, 11, &[]);
    assert!(s.alert.is_empty());
    assert_eq!(s.held_back.len(), 1);
    // Still shown as silent, but its end goes unsaid.
    assert_eq!(m.silent().len(), 1);
    assert_eq!(step(&mut m, 12, &["IKEDC"]), Step::default());
    assert!(m.silent().is_empty());
    // Held back until the limit (30 minutes) has passed since the alert…
    step(&mut m, 29, &["IKEDC"]);
    assert_eq!(step(&mut m, 34, &[]).held_back.len(), 1);
    // …and then alerted again.
    step(&mut m, 35, &["IKEDC"]);
    assert_eq!(alerted(&step(&mut m, 40, &[])), [("IKEDC", 5, 42)]);
}

#[test]
fn a_restart_neither_alerts_an_alerted_silence_again_nor_loses_its_end() {
    let mut m = machine();
    step(&mut m, 0, &["IKEDC", "EKEDC"]);
    let before = m.saved();
    // Sales of selling utilities change nothing to save.
    step(&mut m, 10, &["IKEDC", "EKEDC"]);
    assert_eq!(m.saved(), before);
    assert_eq!(alerted(&step(&mut m, 40, &["EKEDC"])), [("IKEDC", 30, 42)]);
    let saved = m.saved();
    assert_eq!(saved.silent.len(), 1);
    assert_eq!(saved.silent[0].told, SilenceTold::Alerted);
    assert_eq!(saved.alerted_at.get("IKEDC"), Some(&at(40)));
    // Restarted at minute 45 (and again at 80: a crash loop longer than the period).
    for started in [45, 80] {
        let mut m = Machine::new(PERIOD, 5, at(started));
        m.baseline(baseline(&[("IKEDC", 294), ("EKEDC", 70)]));
        m.restore(saved.clone());
        assert_eq!(m.saved(), saved);
        for minute in started..started + 60 {
            let s = step(&mut m, minute, &["EKEDC"]);
            assert!(s.alert.is_empty() && s.held_back.is_empty(), "{s:?}");
        }
        assert_eq!(m.silent()[0].since, at(10));
        // Its end is still told, with the whole silence.
        let s = step(&mut m, started + 60, &["IKEDC", "EKEDC"]);
        assert_eq!(
            resumed(&s),
            [("IKEDC", u64::try_from(started + 50).unwrap())]
        );
        assert_eq!(
            m.saved(),
            SilenceRecord::default(),
            "the alert time expired too"
        );
    }
    // A held-back silence stays unsaid after a restart.
    let mut held = saved.clone();
    held.silent[0].told = SilenceTold::HeldBack;
    let mut m = machine();
    m.restore(held);
    assert_eq!(step(&mut m, 41, &["IKEDC", "EKEDC"]), Step::default());
}

#[test]
fn a_clock_stepped_back_never_moves_the_last_sale_back() {
    let mut m = machine();
    step(&mut m, 20, &["IKEDC"]);
    step(&mut m, 5, &["IKEDC"]);
    assert!(alerted(&step(&mut m, 45, &["EKEDC"])).is_empty());
    assert_eq!(alerted(&step(&mut m, 50, &[])), [("IKEDC", 30, 42)]);
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

#[test]
fn a_utility_no_longer_usual_leaves_with_one_notice_and_its_silence_goes_on_if_usual_again() {
    let mut m = machine();
    step(&mut m, 1, &["IKEDC", "EKEDC"]);
    let alert = (2..=40)
        .map(|minute| step(&mut m, minute, &["EKEDC"]))
        .find(|s| !s.alert.is_empty())
        .expect("IKEDC alerted");
    assert_eq!(alerted(&alert), [("IKEDC", 30, 42)]);
    // At this hour IKEDC no longer usually sells: one notice, and it is not silent any more.
    m.baseline(baseline(&[("IKEDC", 7), ("EKEDC", 70)]));
    let left = step(&mut m, 45, &["EKEDC"]);
    let notice: Vec<_> = left
        .unwatched
        .iter()
        .map(|r| (r.utility.as_str(), r.lasted.as_secs() / 60))
        .collect();
    assert_eq!(notice, [("IKEDC", 44)]);
    assert!(m.silent().is_empty());
    assert_eq!(step(&mut m, 46, &["EKEDC"]), Step::default());
    // Usual again (another hour) and still not selling: the same silence, counted from its
    // last sale, not from when watching began.
    m.baseline(baseline(&[("IKEDC", 294), ("EKEDC", 70)]));
    let again = step(&mut m, 120, &["EKEDC"]);
    assert_eq!(
        alerted(&again).len() + again.held_back.len(),
        1,
        "{again:?}"
    );
    assert_eq!(m.silent()[0].since, at(1));
    // A sale of a retired utility is simply a sale: no "resumed" for a silence whose notice
    // said it was no longer watched.
    m.baseline(baseline(&[("IKEDC", 7), ("EKEDC", 70)]));
    step(&mut m, 121, &["EKEDC"]);
    assert!(step(&mut m, 122, &["IKEDC", "EKEDC"]).resumed.is_empty());
}
