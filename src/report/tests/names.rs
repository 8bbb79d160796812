//! Utility names from the data in the rendered message.

use super::*;

/// Names holding line breaks, terminal escapes, bidi overrides and Slack mentions add no line,
/// ping no one and carry no hidden character; names differing only in such characters keep
/// their own lines and figures.
#[test]
fn hostile_names_cannot_forge_lines_or_mentions() {
    let names = [
        "X\n• IKEDC: ₦9,999,999.00 (1 transaction)",
        "\x1b]0;pwned\x07",
        "\x1b[2J",
        "CDE\u{202e}KI",
        "<!channel>",
        "<@U123>",
        "*bold*",
        "IKEDC",
        "IKEDC\u{7}",
    ];
    let mut totals = Totals::default();
    for (i, name) in names.iter().enumerate() {
        totals.add(name, Decimal::from(i + 1)).unwrap();
    }
    let payload = render(&view_with(&totals, vec![]));
    let text = payload["text"].as_str().unwrap();
    let bullets: Vec<&str> = text.lines().filter(|l| l.starts_with("• ")).collect();
    assert_eq!(bullets.len(), names.len(), "{text}");
    assert!(!text.contains("₦9,999,999.00 (1 transaction)\n"), "{text}");
    assert!(text.contains("• X�• IKEDC: ₦9,999,999.00 (1 transaction): ₦1.00 (1 transaction)"));
    assert!(text.contains("• &lt;!channel&gt;: ") && text.contains("• &lt;@U123&gt;: "));
    assert!(text.contains("• IKEDC: ₦8.00") && text.contains("• IKEDC�: ₦9.00"));
    // Every string of the payload (text and blocks): line breaks only where the layout has them.
    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    let mut all = vec![];
    strings(&payload, &mut all);
    for s in &all {
        let hidden = s
            .chars()
            .find(|c| *c != '\n' && crate::display::is_hidden(*c));
        assert_eq!(hidden, None, "{s:?}");
        assert!(!s.contains("<!channel>") && !s.contains("<@U123>"), "{s}");
    }
    let section = all.iter().find(|s| s.contains("Breakdown")).unwrap();
    assert_eq!(
        section.lines().filter(|l| l.starts_with("• ")).count(),
        names.len()
    );
}
