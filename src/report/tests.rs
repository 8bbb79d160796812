use super::*;
use crate::window::WindowSpec;
use chrono::{DateTime, Datelike, Utc};
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
        compared: None,
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
        compared: None,
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
        compared: None,
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

/// Every limit Slack checks, for one payload.
fn assert_within_slack_limits(p: &Value) {
    let len = |v: &Value| blocks::slack_len(v.as_str().expect("a string"));
    let text = p["text"].as_str().expect("text");
    assert!(!text.trim().is_empty(), "empty text");
    assert!(
        len(&p["text"]) <= blocks::MAX_TEXT,
        "text has {}",
        len(&p["text"])
    );
    let all = p["blocks"].as_array().expect("blocks");
    assert!(all.len() <= blocks::MAX_BLOCKS, "{} blocks", all.len());
    for b in all {
        match b["type"].as_str().unwrap() {
            "header" => assert!(len(&b["text"]["text"]) <= blocks::MAX_HEADER_TEXT),
            "divider" => {}
            "section" => {
                if let Some(t) = b.get("text") {
                    assert!(
                        len(&t["text"]) <= blocks::MAX_SECTION_TEXT,
                        "section of {}",
                        len(&t["text"])
                    );
                }
                for f in b["fields"].as_array().into_iter().flatten() {
                    assert!(len(&f["text"]) <= blocks::MAX_FIELD_TEXT);
                }
            }
            "context" => {
                let e = b["elements"].as_array().unwrap();
                assert!(
                    !e.is_empty() && e.len() <= blocks::MAX_CONTEXT_ELEMENTS,
                    "{} elements",
                    e.len()
                );
            }
            other => panic!("unexpected block {other}"),
        }
    }
}

/// Lines of `text` equal to `line`, over all payloads.
fn occurrences(parts: &[Value], line: &str) -> usize {
    parts
        .iter()
        .map(|p| {
            p["text"]
                .as_str()
                .unwrap()
                .lines()
                .filter(|l| *l == line)
                .count()
        })
        .sum()
}

fn corrections(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let day = format!("2025-05-{:02} #{i}", 1 + i % 28);
            if i % 2 == 0 {
                format!("Late for Morning {day}: +₦1,500.00, 1 transaction")
            } else {
                format!("Correction for Morning {day}: -₦1,500.00, -1 transaction")
            }
        })
        .collect()
}

fn view_with(totals: &Totals, notes: Vec<String>) -> ReportView<'_> {
    ReportView {
        window: window("2025-05-29T12:00:00Z", 6 * 3600, Tz::UTC),
        tz: Tz::UTC,
        totals,
        notes,
        compared: None,
    }
}

/// Renders `n` notes into parts and checks every limit and that each note is posted once.
fn parts_for(n: usize) -> (Vec<String>, Vec<Value>) {
    let totals = sample();
    let notes = corrections(n);
    let parts = render_parts(&view_with(&totals, notes.clone()));
    for p in &parts {
        assert_within_slack_limits(p);
        assert_eq!(
            p["blocks"].as_array().unwrap().last().unwrap()["elements"][0]["text"],
            "Window 2025-05-29T12:00:00Z"
        );
    }
    for note in &notes {
        assert_eq!(occurrences(&parts, note), 1, "{note}");
    }
    (notes, parts)
}

#[test]
fn twelve_corrections_are_sections_not_context_elements() {
    let (notes, parts) = parts_for(12);
    assert_eq!(parts.len(), 1);
    let blocks = parts[0]["blocks"].as_array().unwrap();
    let context = &blocks.last().unwrap()["elements"];
    assert_eq!(context.as_array().unwrap().len(), 1, "{context}");
    let sections: String = blocks
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for note in &notes {
        assert!(sections.lines().any(|l| l == note), "{note} not in blocks");
    }
    // The layout before the notes is the one without notes, byte for byte; then one per line.
    let totals = sample();
    let bare = render(&view_with(&totals, vec![]))["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = parts[0]["text"].as_str().unwrap();
    assert_eq!(text, format!("{bare}\n\n{}", notes.join("\n\n")));
}

#[test]
fn sixty_corrections_fit_one_message() {
    let (_, parts) = parts_for(60);
    assert_eq!(parts.len(), 1);
    assert!(!parts[0]["text"].as_str().unwrap().contains("(continued)"));
}

#[test]
fn two_thousand_corrections_are_split_in_order_into_valid_parts() {
    let (notes, parts) = parts_for(2000);
    let n = parts.len();
    assert!(n >= 3, "{n} parts");
    let totals = sample();
    let bare = render(&view_with(&totals, vec![]))["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = parts[0]["text"].as_str().unwrap();
    assert!(first.starts_with(&format!("{bare}\n\n{}", notes[0])));
    assert!(first.ends_with(&format!("➡️ Continued in {} more message(s).", n - 1)));
    let mut posted = vec![];
    for (i, p) in parts.iter().enumerate() {
        let text = p["text"].as_str().unwrap();
        if i > 0 {
            let line = format!(
                "(continued) Window 2025-05-29T12:00:00Z, part {} of {n}",
                i + 1
            );
            assert_eq!(text.lines().next(), Some(line.as_str()));
            // Not mistaken for the report itself: the time line is only in the first part.
            assert!(!text.contains("12:00 – 18:00 UTC on 2025-05-29"));
        }
        // One context element, the window: scripts read it as the first or the last.
        let context = &p["blocks"].as_array().unwrap().last().unwrap()["elements"];
        assert_eq!(context.as_array().unwrap().len(), 1, "{context}");
        posted.extend(
            text.lines()
                .filter(|l| notes.iter().any(|n| n == l))
                .map(str::to_owned),
        );
    }
    assert_eq!(posted, notes, "notes keep their order across parts");
}

#[test]
fn one_message_cuts_its_blocks_at_fifty_and_says_how_many_lines_are_only_in_the_text() {
    let totals = sample();
    // Long notes: one per section, so the blocks run out before the notes.
    let notes: Vec<String> = (0..80)
        .map(|i| format!("{i:03} {}", "x".repeat(1600)))
        .collect();
    let payload = render(&view_with(&totals, notes.clone()));
    let blocks = payload["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), blocks::MAX_BLOCKS);
    let shown = blocks
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .filter(|t| t.contains("xxxx"))
        .count();
    let more = &blocks[blocks.len() - 2]["text"]["text"];
    assert_eq!(
        *more,
        format!("…{} more lines in the text", notes.len() - shown)
    );
    for note in &notes {
        assert_eq!(occurrences(std::slice::from_ref(&payload), note), 1);
    }
    // As parts, each is valid: the text limit splits before the block limit cuts.
    let parts = render_parts(&view_with(&totals, notes.clone()));
    assert!(parts.len() > 1);
    parts.iter().for_each(assert_within_slack_limits);
    for note in &notes {
        assert_eq!(occurrences(&parts, note), 1);
    }
}

#[test]
fn a_note_longer_than_a_section_is_cut_in_the_blocks_only() {
    let totals = sample();
    let note = "y".repeat(5000);
    let parts = render_parts(&view_with(&totals, vec![note.clone()]));
    assert_eq!(parts.len(), 1);
    assert_within_slack_limits(&parts[0]);
    assert_eq!(occurrences(&parts, &note), 1);
}

#[test]
fn ampersand_names_are_escaped_then_cut_within_the_limit() {
    let mut totals = Totals::default();
    for i in 0..25 {
        let name = format!("{}{i:02}", "&".repeat(98));
        totals.add(&name, Decimal::from(i + 1)).unwrap();
    }
    let parts = render_parts(&view_with(&totals, corrections(12)));
    assert_eq!(parts.len(), 1);
    assert_within_slack_limits(&parts[0]);
    let text = parts[0]["text"].as_str().unwrap();
    assert!(text.contains("• …and 5 more: "), "{text}");

    let shown = display_name(&"&".repeat(100));
    assert_eq!(shown, format!("{}…", "&amp;".repeat(11)));
    for name in [
        "&".repeat(100),
        "<".repeat(100),
        format!("a{}", "&<>".repeat(40)),
        "é".repeat(61),
    ] {
        let shown = display_name(&name);
        assert!(shown.chars().count() <= MAX_NAME_CHARS, "{shown}");
        assert!(shown.ends_with('…'), "{shown}");
        // Never half an entity: every '&' starts a whole one.
        let body = shown.trim_end_matches('…');
        for (i, _) in body.match_indices('&') {
            let rest = &body[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;"]
                    .iter()
                    .any(|e| rest.starts_with(e)),
                "{shown}"
            );
        }
        assert!(!body.contains('<') && !body.contains('>'));
    }
    // Short names are unchanged but for the escaping.
    assert_eq!(display_name("A&B <x>"), "A&amp;B &lt;x&gt;");
    assert_eq!(display_name(&"z".repeat(60)), "z".repeat(60));
}

mod compare;
mod dst;
mod names;
mod summary;
