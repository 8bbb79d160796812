//! Utility names (and document ids) are data, not markup or control: hostile names inserted
//! into the real server reach the Slack report, `status` (text and JSON), the API the
//! dashboard reads, and the log of the real binary without forging a line, pinging anyone, or
//! passing a terminal escape or bidi override; and names that differ only in such characters
//! keep their own totals.

use crate::common::service::{run_cli, Service};
use crate::common::slack::FakeSlack;
use crate::common::{report_of, upcoming, wait_for, TestDb};
use bson::{doc, Document};
use power_revenue::display::is_hidden;
use serde_json::Value;
use std::time::Duration;

/// Raw names (already in the rules' normal form: trimmed, ASCII upper case) and their sales.
const NAMES: [(&str, i64); 9] = [
    ("X\n• IKEDC: ₦9,999,999.00 (1 TRANSACTION)", 101),
    ("\x1b]0;PWNED\x07", 102),
    ("\x1b[2J", 103),
    ("CDE\u{202e}KI", 104),
    ("<!CHANNEL>", 105),
    ("<@U123>", 106),
    ("*BOLD*", 107),
    ("IKEDC", 1000),
    // Differs from IKEDC only by a BEL: another utility.
    ("IK\x07EDC", 2000),
];

/// The first hidden character in `s` other than the line breaks its layout has.
fn hidden_in(s: &str) -> Option<char> {
    s.chars().find(|c| *c != '\n' && is_hidden(*c))
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_are_shown_inert_everywhere_and_counted_apart() {
    let db = TestDb::new("names").await;
    let slack = FakeSlack::start().await;
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[("POWER_REVENUE_WINDOW", "20s")],
    );
    svc.wait_connected().await;

    // Sales dated into the next window, so it is open while status and the API are read.
    let w = upcoming(20, 2);
    let at = bson::DateTime::from_chrono(w.start + chrono::TimeDelta::seconds(1));
    let mut docs: Vec<Document> = NAMES
        .iter()
        .map(|(name, naira)| doc! { "createdAt": at, "utility": *name, "amount": *naira, "status": "fulfilled" })
        .collect();
    // A skipped sale whose id would forge a log line and clear the screen.
    docs.push(doc! { "_id": "evil\n2026-01-01T00:00:00Z  INFO forged \x1b[2J\u{202e}", "createdAt": at, "utility": "X", "amount": "abc", "status": "fulfilled" });
    db.coll.insert_many(docs).await.unwrap();

    // The live view: the API (what the dashboard reads) has the raw name and its shown form.
    let cur = wait_for(
        Duration::from_secs(20),
        "the sales in the API",
        async || {
            let cur = svc.get_json("/api/v1/windows/current").await?;
            let w = cur["windows"]
                .as_array()?
                .iter()
                .find(|w| w["totals"]["count"] == NAMES.len())?;
            Some(w["totals"]["by_utility"].clone())
        },
    )
    .await;
    let rows = cur.as_array().unwrap();
    assert_eq!(rows.len(), NAMES.len());
    for (name, naira) in NAMES {
        let row = rows.iter().find(|r| r["utility"] == name).expect(name);
        assert_eq!(row["revenue"], format!("{naira}.00"), "{name:?}");
        let display = row["display"].as_str().unwrap();
        assert_eq!(hidden_in(display), None, "{display:?}");
        assert_eq!(
            display.chars().count(),
            name.chars().count(),
            "one shown char each"
        );
    }
    let raw_body = reqwest::get(format!("{}/api/v1/windows/current", svc.http()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(hidden_in(&raw_body), None, "raw bytes of the API answer");
    // The dashboard sets names as text, in their shown form, never as markup.
    let page = reqwest::get(format!("{}/", svc.http()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(".textContent = u.display;"), "{page}");
    for line in page.lines().filter(|l| l.contains("innerHTML =")) {
        assert!(
            line.trim_start()
                .split("innerHTML = ")
                .nth(1)
                .is_some_and(|v| v.starts_with(['"', '\''])),
            "innerHTML only for fixed markup: {line}"
        );
    }

    // `status` while it runs (through the API) and `status --json`.
    let owned = svc.env().to_vec();
    let env: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (code, text, err) = run_cli(&["status"], &env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(hidden_in(&text), None, "{text:?}");
    let bullets: Vec<&str> = text.lines().filter(|l| l.starts_with("    • ")).collect();
    assert_eq!(bullets.len(), NAMES.len(), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with("• IKEDC: ₦9,999,999")),
        "{text}"
    );
    assert!(
        text.contains("    • IKEDC: ₦1,000.00 (1 transaction)"),
        "{text}"
    );
    assert!(
        text.contains("    • IK�EDC: ₦2,000.00 (1 transaction)"),
        "{text}"
    );
    let (code, json, err) = run_cli(&["status", "--json"], &env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(hidden_in(&json), None, "{json:?}");
    let status: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let raw: Vec<&str> = status["open_windows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["by_utility"].as_array().unwrap())
        .map(|row| row[0].as_str().unwrap())
        .collect();
    for (name, _) in NAMES {
        assert!(
            raw.contains(&name),
            "the JSON keeps the data: {name:?} in {raw:?}"
        );
    }

    // The report: one line per utility, none forged, nothing hidden, no mention.
    let text = report_of(&slack, &w, 40).await;
    // The breakdown, then the comparisons: one line per utility in each, none forged.
    let (breakdown, compared) = text
        .split_once("\n\n📈 Compared with\n")
        .expect("comparisons");
    let bullets: Vec<&str> = breakdown.lines().filter(|l| l.starts_with("• ")).collect();
    assert_eq!(bullets.len(), NAMES.len(), "{text}");
    let changes = compared
        .lines()
        .filter(|l| l.starts_with("• ") && l.ends_with(" vs yesterday"));
    assert_eq!(changes.count(), NAMES.len(), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("• IKEDC: ₦9,999,999")),
        "{text}"
    );
    assert!(
        text.contains("• IKEDC: ₦1,000.00 (1 transaction)"),
        "{text}"
    );
    assert!(
        text.contains("• IK�EDC: ₦2,000.00 (1 transaction)"),
        "{text}"
    );
    assert!(
        text.contains("• &lt;!CHANNEL&gt;: ₦105.00") && text.contains("• &lt;@U123&gt;: ₦106.00"),
        "{text}"
    );
    let payload = slack
        .messages()
        .into_iter()
        .find(|m| m["text"].as_str() == Some(text.as_str()))
        .unwrap();
    let mut all = vec![];
    strings(&payload, &mut all);
    for s in &all {
        assert_eq!(hidden_in(s), None, "{s:?}");
        assert!(!s.contains("<!") && !s.contains("<@"), "{s}");
    }

    // The database agrees, name for name: the two IKEDCs are two utilities there too.
    let closed = wait_for(
        Duration::from_secs(20),
        "the reconciled window",
        async || {
            let list = svc.get_json("/api/v1/windows?last=5").await?;
            list.as_array()?
                .iter()
                .find(|x| x["reconciled"]["count"] == NAMES.len())
                .cloned()
        },
    )
    .await;
    assert_eq!(closed["matched_stream"], true, "{closed}");

    // The log: the hostile id is there, escaped, and nothing in the log acts on a terminal.
    let log = svc.output();
    assert_eq!(hidden_in(&log), None, "{log:?}");
    assert!(
        log.contains(r#"evil\n2026-01-01T00:00:00Z  INFO forged \u{1b}[2J\u{202e}"#),
        "{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00Z  INFO forged")),
        "{log}"
    );
}
