//! The period summary's wording: the report's lines for the whole period, per window, the
//! previous period; bounded within Slack's limits for a day of short windows; DST days.

use super::*;
use crate::compare::Compared;
use crate::period::PeriodSpec;
use crate::report::summary::{render, SummaryView, DAILY_TITLE, MAX_WINDOW_LINES};
use std::str::FromStr;

fn totals(rows: &[(&str, &str)]) -> Totals {
    let mut t = Totals::default();
    for (u, amount) in rows {
        t.add(u, Decimal::from_str(amount).unwrap()).unwrap();
    }
    t
}

fn tally(naira: &str, count: u64) -> Tally {
    Tally {
        revenue: Decimal::from_str(naira).unwrap(),
        count,
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The day of `t` in `tz`, cut into windows of `window_secs`, each with `per_window`.
fn day(t: &str, window_secs: u64, tz: Tz) -> (PeriodSpec, Window, Vec<Window>) {
    let spec = PeriodSpec::new(86_400, WindowSpec::new(window_secs, tz).unwrap()).unwrap();
    let w = WindowSpec::new(window_secs, tz).unwrap().window_of(at(t));
    let p = spec.period_of(&w);
    let windows = spec.windows_in(&p);
    (spec, p, windows)
}

#[test]
fn daily_summary_text_line_for_line() {
    let (spec, p, windows) = day("2025-05-29T12:00:00Z", 6 * 3600, Tz::UTC);
    let t = totals(&[
        ("IKEDC", "10000"),
        ("IKEDC", "15500"),
        ("EKEDC", "12750"),
        ("AEDC", "7500"),
    ]);
    let by_window = vec![
        (windows[0], tally("0", 0)),
        (windows[1], tally("10000", 1)),
        (windows[2], tally("28250", 2)),
        (windows[3], tally("7500", 1)),
    ];
    let previous = Compared {
        window: spec.previous(&p),
        totals: Some(totals(&[("IKEDC", "30000"), ("EKEDC", "10100")])),
    };
    let view = SummaryView {
        period: p,
        tz: Tz::UTC,
        length_secs: 86_400,
        totals: &t,
        by_window: &by_window,
        previous: &previous,
    };
    let payload = render(&view);
    assert_eq!(
        payload["text"],
        "📆 Daily Revenue Summary\n\n\
         🕐 Time: 00:00 – 24:00 UTC on 2025-05-29\n\n\
         ━━━━━━━━━━━━━━━━━━━━\n\n\
         💰 Total Revenue Generated:\n₦45,750.00\n\n\
         📊 Total Transactions: 4\n\n\
         ━━━━━━━━━━━━━━━━━━━━\n\n\
         🏢 Revenue Breakdown by Utility:\n\
         • IKEDC: ₦25,500.00 (2 transactions)\n\
         • EKEDC: ₦12,750.00 (1 transaction)\n\
         • AEDC: ₦7,500.00 (1 transaction)\n\n\
         🕒 Revenue by Window:\n\
         • Night (00:00 – 06:00): ₦0.00 (0 transactions)\n\
         • Morning (06:00 – 12:00): ₦10,000.00 (1 transaction)\n\
         • Afternoon (12:00 – 18:00): ₦28,250.00 (2 transactions)\n\
         • Evening (18:00 – 24:00): ₦7,500.00 (1 transaction)\n\n\
         📈 Compared with\n\
         • Previous day: ₦40,100.00, 2 transactions (+14.1%)\n\
         • IKEDC: -15.0% vs previous day\n\
         • EKEDC: +26.2% vs previous day\n\
         • AEDC: n/a vs previous day"
    );
    let blocks = payload["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["text"]["text"], DAILY_TITLE);
    assert_eq!(
        blocks.last().unwrap()["elements"][0]["text"],
        "Summary 2025-05-29T00:00:00Z"
    );
    let all: String = blocks
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for line in [
        "• Evening (18:00 – 24:00): ₦7,500.00 (1 transaction)",
        "• Previous day: ₦40,100.00, 2 transactions (+14.1%)",
    ] {
        assert!(all.contains(line), "{line} not in {all}");
    }
}

#[test]
fn other_periods_name_their_length_and_a_failed_previous_is_na() {
    let spec = PeriodSpec::new(6, WindowSpec::new(2, Tz::UTC).unwrap()).unwrap();
    let w = WindowSpec::new(2, Tz::UTC)
        .unwrap()
        .window_of(at("2025-05-29T12:00:02Z"));
    let p = spec.period_of(&w);
    let windows = spec.windows_in(&p);
    let t = totals(&[("IKEDC", "1500.50")]);
    let by_window: Vec<_> = windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            (
                *w,
                if i == 1 {
                    tally("1500.50", 1)
                } else {
                    tally("0", 0)
                },
            )
        })
        .collect();
    let previous = Compared {
        window: spec.previous(&p),
        totals: None,
    };
    let view = SummaryView {
        period: p,
        tz: Tz::UTC,
        length_secs: 6,
        totals: &t,
        by_window: &by_window,
        previous: &previous,
    };
    let text = render(&view)["text"].as_str().unwrap().to_owned();
    assert!(
        text.starts_with(
            "📆 Revenue Summary (6s)\n\n🕐 Time: 12:00:00 – 12:00:06 UTC on 2025-05-29\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("• 12:00:02 – 12:00:04: ₦1,500.50 (1 transaction)"),
        "{text}"
    );
    assert!(
        text.ends_with("📈 Compared with\n• Previous period: n/a"),
        "{text}"
    );
    // No sales: said so, and still compared.
    let empty = Totals::default();
    let view = SummaryView {
        totals: &empty,
        ..view
    };
    let text = render(&view)["text"].as_str().unwrap().to_owned();
    assert!(text.contains("📝 No transactions in this period"), "{text}");
    assert!(!text.contains("Revenue by Window"), "{text}");
}

#[test]
fn a_day_of_ten_minute_windows_and_many_utilities_stays_within_slacks_limits() {
    let (spec, p, windows) = day("2025-05-29T12:00:00Z", 600, Tz::Africa__Lagos);
    assert_eq!(windows.len(), 144);
    let mut t = Totals::default();
    for i in 0..300 {
        // Long names of characters Slack escapes: the breakdown is bounded all the same.
        t.add(
            &format!("{}{i}", "&<".repeat(40)),
            Decimal::from(1_000_000_000 + i),
        )
        .unwrap();
    }
    let by_window: Vec<_> = windows
        .iter()
        .map(|w| (*w, tally("999999999999.99", 999_999)))
        .collect();
    let previous = Compared {
        window: spec.previous(&p),
        totals: Some(t.clone()),
    };
    let view = SummaryView {
        period: p,
        tz: Tz::Africa__Lagos,
        length_secs: 86_400,
        totals: &t,
        by_window: &by_window,
        previous: &previous,
    };
    let payload = render(&view);
    let text = payload["text"].as_str().unwrap();
    let window_lines = text
        .lines()
        .skip_while(|l| !l.starts_with("🕒"))
        .skip(1)
        .take_while(|l| l.starts_with('•'))
        .collect::<Vec<_>>();
    assert_eq!(window_lines.len(), MAX_WINDOW_LINES);
    assert!(
        text.contains("🕒 Revenue by Window (3 windows a line)"),
        "{text}"
    );
    assert!(
        window_lines[0].starts_with("• 00:00 – 00:30: "),
        "{}",
        window_lines[0]
    );
    assert!(
        window_lines[47].starts_with("• 23:30 – 24:00: "),
        "{}",
        window_lines[47]
    );
    assert!(blocks::slack_len(text) <= blocks::MAX_TEXT);
    let blocks = payload["blocks"].as_array().unwrap();
    assert!(blocks.len() <= blocks::MAX_BLOCKS);
    for b in blocks {
        if let Some(s) = b["text"]["text"].as_str() {
            assert!(blocks::slack_len(s) <= blocks::MAX_SECTION_TEXT, "{s}");
        }
    }
}

#[test]
fn dst_days_list_their_windows_by_the_wall_clock() {
    // London, 2025-10-26: 25 hours in 24 hourly windows (01:00 – 02:00 lasts two).
    let (spec, p, windows) = day("2025-10-26T12:00:00Z", 3600, Tz::Europe__London);
    assert_eq!(windows.len(), 24);
    let t = totals(&[("IKEDC", "100")]);
    let by_window: Vec<_> = windows.iter().map(|w| (*w, tally("0", 0))).collect();
    let previous = Compared {
        window: spec.previous(&p),
        totals: Some(Totals::default()),
    };
    let view = SummaryView {
        period: p,
        tz: Tz::Europe__London,
        length_secs: 86_400,
        totals: &t,
        by_window: &by_window,
        previous: &previous,
    };
    let text = render(&view)["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("🕐 Time: 00:00 BST – 24:00 GMT on 2025-10-26"),
        "{text}"
    );
    assert_eq!(text.matches("• 01:00 – 02:00: ").count(), 1, "{text}");
    assert!(text.contains("• 23:00 – 24:00: "), "{text}");
    assert!(
        text.contains("• Previous day: ₦0.00, 0 transactions (n/a)"),
        "{text}"
    );
}
