//! The "📈 Compared with" section: placed after the seed's lines, the same in text and blocks,
//! `n/a` for a failed query, within Slack's limits however many utilities there are.

use super::*;
use crate::compare::{Compared, Comparison};
use std::str::FromStr;

fn totals(rows: &[(&str, &str)]) -> Totals {
    let mut t = Totals::default();
    for (u, amount) in rows {
        t.add(u, Decimal::from_str(amount).unwrap()).unwrap();
    }
    t
}

fn comparison(w: &Window, yesterday: Option<Totals>) -> Comparison {
    let at = |days: i64, totals| Compared {
        window: Window {
            start: w.start - TimeDelta::days(days),
            end: w.end - TimeDelta::days(days),
        },
        totals,
    };
    Comparison {
        previous: Compared {
            window: Window {
                start: w.start - TimeDelta::hours(6),
                end: w.start,
            },
            totals: Some(totals(&[("IKEDC", "40100")])),
        },
        yesterday: at(1, yesterday),
        last_week: at(7, Some(totals(&[("AEDC", "45000")]))),
    }
}

fn render_with(totals: &Totals, c: &Comparison) -> Value {
    let mut view = view_with(totals, vec!["a note".into()]);
    view.compared = Some(c);
    render(&view)
}

#[test]
fn after_the_breakdown_in_text_and_blocks() {
    let now = sample();
    let w = view_with(&now, vec![]).window;
    let c = comparison(&w, Some(totals(&[("IKEDC", "22770"), ("EKEDC", "27230")])));
    let p = render_with(&now, &c);
    let lines = "• Previous window: ₦40,100.00 (+14.1%)\n\
        • Same window yesterday: ₦50,000.00 (-8.5%)\n\
        • Same window last week: ₦45,000.00 (+1.7%)\n\
        • IKEDC: +12.0% vs yesterday\n\
        • EKEDC: -53.2% vs yesterday\n\
        • AEDC: n/a vs yesterday";
    let text = p["text"].as_str().unwrap();
    // The seed's text is a prefix, unchanged; the comparisons follow, then the notes.
    let seed = render(&view_with(&now, vec![]))["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        text,
        format!("{seed}\n\n📈 Compared with\n{lines}\n\na note"),
    );
    let blocks = p["blocks"].as_array().unwrap();
    let section = blocks
        .iter()
        .position(|b| b["text"]["text"] == format!("*📈 Compared with*\n{lines}"))
        .expect("a comparison section");
    let breakdown = blocks
        .iter()
        .position(|b| {
            b["text"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("Revenue Breakdown"))
        })
        .unwrap();
    assert_eq!(section, breakdown + 1);
    assert_within_slack_limits(&p);
}

#[test]
fn a_failed_query_says_n_a_and_drops_the_per_utility_lines() {
    let now = sample();
    let w = view_with(&now, vec![]).window;
    let p = render_with(&now, &comparison(&w, None));
    let text = p["text"].as_str().unwrap();
    assert!(
        text.contains(
            "• Same window yesterday: n/a\n• Same window last week: ₦45,000.00 (+1.7%)\n\na note"
        ),
        "{text}"
    );
    assert!(!text.contains("vs yesterday"), "{text}");
}

#[test]
fn an_empty_window_is_compared_too() {
    let empty = Totals::default();
    let w = view_with(&empty, vec![]).window;
    let p = render_with(&empty, &comparison(&w, Some(Totals::default())));
    let text = p["text"].as_str().unwrap();
    assert!(text.contains("No power transactions were processed during this period.\n\n📈 Compared with\n• Previous window: ₦40,100.00 (-100.0%)\n• Same window yesterday: ₦0.00 (n/a)\n"), "{text}");
}

#[test]
fn many_long_names_stay_within_slack_limits() {
    let names: Vec<(String, String)> = (0..300)
        .map(|i| {
            (
                format!("{i:03}{}", "&<>".repeat(40)),
                format!("{}", 1000 + i),
            )
        })
        .collect();
    let rows: Vec<(&str, &str)> = names
        .iter()
        .map(|(u, a)| (u.as_str(), a.as_str()))
        .collect();
    let now = totals(&rows);
    let w = view_with(&now, vec![]).window;
    let p = render_with(&now, &comparison(&w, Some(totals(&rows[..10]))));
    assert_within_slack_limits(&p);
    let text = p["text"].as_str().unwrap();
    assert_eq!(text.matches("vs yesterday").count(), MAX_UTILITIES_SHOWN);
}
