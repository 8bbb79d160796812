use super::*;
use crate::window::WindowSpec;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

fn window(start: &str, secs: u64, tz: Tz) -> Window {
    let t = DateTime::parse_from_rfc3339(start)
        .unwrap()
        .with_timezone(&Utc);
    WindowSpec::new(secs, tz).unwrap().window_of(t)
}

fn sample() -> Totals {
    let mut t = Totals::default();
    for (u, amount, n) in [
        ("IKEDC", 25_500, 14),
        ("EKEDC", 12_750, 6),
        ("AEDC", 7_500, 3),
    ] {
        for i in 0..n {
            // Spread the amount over n sales, the remainder on the first.
            let share = Decimal::from(amount / n)
                + if i == 0 {
                    Decimal::from(amount % n)
                } else {
                    Decimal::ZERO
                };
            t.add(u, share).unwrap();
        }
    }
    t
}

#[test]
fn text_matches_the_lambda_layout_line_for_line() {
    let totals = sample();
    let view = ReportView {
        window: window("2025-05-29T12:00:00Z", 6 * 3600, Tz::UTC),
        tz: Tz::UTC,
        totals: &totals,
        notes: vec![],
    };
    let payload = render(&view);
    assert_eq!(
        payload["text"],
        "⚡ Power Transaction Revenue Report\n\n\
         📅 Period: Afternoon Period (12:00 PM – 6:00 PM)\n\
         🕐 Time: 12:00 – 18:00 UTC on 2025-05-29\n\n\
         ━━━━━━━━━━━━━━━━━━━━\n\n\
         💰 Total Revenue Generated:\n₦45,750.00\n\n\
         📊 Total Transactions: 23\n\n\
         ━━━━━━━━━━━━━━━━━━━━\n\n\
         🏢 Revenue Breakdown by Utility:\n\
         • IKEDC: ₦25,500.00 (14 transactions)\n\
         • EKEDC: ₦12,750.00 (6 transactions)\n\
         • AEDC: ₦7,500.00 (3 transactions)"
    );
    let blocks = payload["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["text"]["text"], TITLE);
    assert!(blocks.iter().any(|b| b["text"]["text"]
        .as_str()
        .is_some_and(|t| t.contains("• AEDC: ₦7,500.00 (3 transactions)"))));
    assert_eq!(
        blocks.last().unwrap()["elements"][0]["text"],
        "Window 2025-05-29T12:00:00Z"
    );
}

#[test]
fn no_sales_and_singular() {
    let empty = Totals::default();
    let view = ReportView {
        window: window("2025-05-29T20:00:00Z", 6 * 3600, Tz::UTC),
        tz: Tz::UTC,
        totals: &empty,
        notes: vec![],
    };
    let text = render(&view)["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("📅 Period: Evening Period (6:00 PM – 12:00 AM)"),
        "{text}"
    );
    assert!(
        text.contains("🕐 Time: 18:00 – 24:00 UTC on 2025-05-29"),
        "{text}"
    );
    assert!(text.ends_with(
        "📝 No new transactions yet\n\nNo power transactions were processed during this period."
    ));
    assert_eq!(transactions(1), "1 transaction");
}

#[test]
fn other_lengths_and_zones_show_the_clock_range() {
    let w = window("2025-05-29T10:20:25Z", 20, Tz::Africa__Lagos);
    assert_eq!(
        period_line(&w, Tz::Africa__Lagos),
        "11:20:20 AM – 11:20:40 AM"
    );
    assert_eq!(
        time_line(&w, Tz::Africa__Lagos),
        "11:20:20 – 11:20:40 WAT on 2025-05-29"
    );
    let w = window("2025-05-29T10:20:00Z", 600, Tz::UTC);
    assert_eq!(time_line(&w, Tz::UTC), "10:20 – 10:30 UTC on 2025-05-29");
}

#[test]
fn many_utilities_stay_within_slack_limits() {
    let mut totals = Totals::default();
    for i in 0..500 {
        totals
            .add(
                &format!("<!channel> UTILITY-{i:03}-{}", "X".repeat(200)),
                Decimal::from(i + 1),
            )
            .unwrap();
    }
    let view = ReportView {
        window: window("2025-05-29T00:00:00Z", 3600, Tz::UTC),
        tz: Tz::UTC,
        totals: &totals,
        notes: vec!["note".into()],
    };
    let payload = render(&view);
    let blocks = payload["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    for b in blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            assert!(
                t.chars().count() <= 3000,
                "section text has {} chars",
                t.chars().count()
            );
            assert!(!t.contains("<!channel>"));
        }
    }
    let text = payload["text"].as_str().unwrap();
    assert!(text.contains("• …and 480 more: "), "{text}");
    assert!(text.contains("₦115,440.00 (480 transactions)"));
}
