use super::*;
use crate::window::Totals;
use proptest::prelude::*;
use rust_decimal::Decimal;

/// Characters that act rather than show, one of each kind named in the module doc.
const HOSTILE: &[char] = &[
    '\n',
    '\r',
    '\t',
    '\0',
    '\x07',
    '\x1b',
    '\x7f',
    '\u{85}',
    '\u{9b}',
    '\u{2028}',
    '\u{2029}',
    '\u{202a}',
    '\u{202b}',
    '\u{202c}',
    '\u{202d}',
    '\u{202e}',
    '\u{2066}',
    '\u{2067}',
    '\u{2068}',
    '\u{2069}',
    '\u{200e}',
    '\u{200f}',
    '\u{061c}',
    '\u{200b}',
    '\u{200c}',
    '\u{200d}',
    '\u{2060}',
    '\u{feff}',
    '\u{ad}',
    '\u{e0001}',
    '\u{e0041}',
];

/// Strings mixing ordinary text, markup, multi-byte letters and [`HOSTILE`] characters.
fn hostile_string() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        3 => prop::sample::select(HOSTILE),
        3 => prop::sample::select(&['I', 'K', 'E', 'D', 'C', ' ', '*', '&', '<', '>', '!', '@', '\\', '₦', 'é', '😀', '…'][..]),
        1 => any::<char>(),
    ];
    prop::collection::vec(c, 0..90).prop_map(|v| v.into_iter().collect())
}

fn tricky_string() -> impl Strategy<Value = String> {
    let c = prop::sample::select(&['a', '\\', 'n', 'u', '{', '}', '1', 'b', '\n', '\x1b'][..]);
    prop::collection::vec(c, 0..6).prop_map(|v| v.into_iter().collect())
}

#[test]
fn every_named_character_is_hidden_and_ordinary_ones_are_not() {
    for &c in HOSTILE {
        assert!(is_hidden(c), "{c:?}");
    }
    for c in [
        'A', 'z', ' ', '₦', 'é', '&', '<', '*', '…', '\u{301}', '😀', '\u{a0}',
    ] {
        assert!(!is_hidden(c), "{c:?}");
    }
}

#[test]
fn the_reported_attacks_are_shown_inert() {
    assert_eq!(
        utility_name("X\n• IKEDC: ₦9,999,999.00 (1 transaction)"),
        "X�• IKEDC: ₦9,999,999.00 (1 transaction)"
    );
    assert_eq!(utility_name("\x1b]0;pwned\x07"), "�]0;pwned�");
    assert_eq!(utility_name("\x1b[2J"), "�[2J");
    assert_eq!(utility_name("CDE\u{202e}KI"), "CDE�KI");
    // Markup is left to the renderer (Slack escapes it; the dashboard sets textContent).
    assert_eq!(utility_name("<!channel> *bold*"), "<!channel> *bold*");
    assert!(matches!(utility_name("IKEDC"), Cow::Borrowed("IKEDC")));
}

#[test]
fn long_names_are_cut_to_the_limit_with_an_ellipsis() {
    assert_eq!(
        utility_name(&"A".repeat(MAX_NAME_CHARS)),
        "A".repeat(MAX_NAME_CHARS)
    );
    let long = "é".repeat(MAX_NAME_CHARS + 1);
    assert_eq!(
        utility_name(&long),
        format!("{}…", "é".repeat(MAX_NAME_CHARS - 1))
    );
}

#[test]
fn escaped_keeps_every_character_and_shows_hidden_ones_as_escapes() {
    assert_eq!(escaped("\"abc\""), "\"abc\"");
    assert_eq!(escaped("a\nb\\n"), "a\\nb\\\\n");
    assert_eq!(escaped("\x1b[2J\u{202e}"), "\\u{1b}[2J\\u{202e}");
}

#[test]
fn json_keeps_its_value_and_loses_its_hidden_characters() {
    let value = serde_json::json!({ "utility": "A\u{202e}B\u{9b}C\u{7f}\u{e0041}\u{2028}" });
    let json = serde_json::to_string(&value).unwrap();
    let safe = json_escape_hidden(&json);
    assert_eq!(
        safe,
        r#"{"utility":"A\u202eB\u009bC\u007f\udb40\udc41\u2028"}"#
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&safe).unwrap(),
        value
    );
    // Pretty-printed: the layout's line breaks stay (they are outside strings).
    let pretty = serde_json::to_string_pretty(&value).unwrap();
    let safe = json_escape_hidden(&pretty);
    assert_eq!(safe.lines().count(), 3, "{safe}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&safe).unwrap(),
        value
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the name: nothing hidden, no line break, within the limit, never a panic.
    #[test]
    fn shown_names_are_inert_and_bounded(raw in hostile_string()) {
        let shown = utility_name(&raw);
        prop_assert!(!shown.chars().any(is_hidden), "{:?}", shown);
        let breaks = ['\n', '\r', '\u{2028}', '\u{2029}', '\u{85}'];
        prop_assert!(!shown.contains(breaks), "{:?}", shown);
        prop_assert!(shown.chars().count() <= MAX_NAME_CHARS);
        if raw.chars().count() <= MAX_NAME_CHARS {
            // One shown character per raw one: a hidden character still shows that it is there.
            prop_assert_eq!(shown.chars().count(), raw.chars().count());
        }
    }

    /// A hidden character inserted into a name makes another utility: its own totals, and a
    /// shown name that differs from the first one's (while both fit the limit).
    #[test]
    fn names_differing_only_in_hidden_characters_stay_distinct(
        raw in hostile_string(),
        at in any::<prop::sample::Index>(),
        hidden in prop::sample::select(HOSTILE),
    ) {
        let chars: Vec<char> = raw.chars().collect();
        let i = at.index(chars.len() + 1);
        let other: String = chars[..i].iter().chain([&hidden]).chain(&chars[i..]).collect();
        let mut totals = Totals::default();
        totals.add(&raw, Decimal::ONE).unwrap();
        totals.add(&other, Decimal::TWO).unwrap();
        prop_assert_eq!(totals.by_utility.len(), 2);
        prop_assert_eq!(totals.by_utility[&raw].revenue, Decimal::ONE);
        prop_assert_eq!(totals.by_utility[&other].revenue, Decimal::TWO);
        if other.chars().count() <= MAX_NAME_CHARS {
            prop_assert_ne!(utility_name(&raw), utility_name(&other));
        }
    }

    /// Escaping for logs loses nothing (different values, different text) and hides nothing.
    /// Short strings over a few characters, so that look-alike pairs (`\\n` and a newline)
    /// come up often.
    #[test]
    fn escaped_is_inert_and_one_to_one(a in tricky_string(), b in tricky_string()) {
        let (ea, eb) = (escaped(&a), escaped(&b));
        prop_assert!(!ea.chars().any(is_hidden));
        prop_assert_eq!(ea == eb, a == b);
    }

    /// Serialized JSON with its hidden characters escaped parses to the same value.
    #[test]
    fn json_escapes_round_trip(raw in hostile_string()) {
        let json = serde_json::to_string_pretty(&serde_json::json!({ "utility": raw, "n": 1 })).unwrap();
        let safe = json_escape_hidden(&json);
        prop_assert!(!safe.chars().any(|c| c != '\n' && is_hidden(c)));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        prop_assert_eq!(back["utility"].as_str(), Some(raw.as_str()));
    }
}
