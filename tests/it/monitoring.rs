//! The monitoring artefacts in `deploy/`, each checked by Prometheus's own tool and against
//! what the real binary serves: the alert rules (`promtool check rules`, their unit tests with
//! `promtool test rules`), the scrape config (`promtool check config`), and the Grafana
//! dashboard (every query parses as PromQL, and every metric it names is served by `/metrics`
//! once the events behind the labelled series have happened).

use crate::common::promtool;
use crate::common::service::Service;
use crate::common::slack::FakeSlack;
use crate::common::TestDb;
use crate::http_surface::families;
use bson::doc;
use chrono::Utc;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TOKEN: &str = "monitoring-token-for-tests";

/// Names in the alert rules that this service does not serve: Prometheus's own `up`.
const NOT_FROM_THIS_SERVICE: [&str; 1] = ["up"];

/// What the dashboard must chart (issue 17): lag, checkpoint age, oplog headroom, reports
/// posted and failed, mismatches, skipped events by reason; silent utilities, their alerts and
/// notices, summaries posted, failed comparison and silence baseline queries.
const DASHBOARD_MUST_USE: [&str; 13] = [
    "power_revenue_stream_lag_seconds",
    "power_revenue_resume_token_age_seconds",
    "power_revenue_oplog_headroom_seconds",
    "power_revenue_reports_posted_total",
    "power_revenue_report_post_failures_total",
    "power_revenue_reconciliation_mismatches_total",
    "power_revenue_events_skipped_total",
    "power_revenue_silent_utilities",
    "power_revenue_silence_alerts_total",
    "power_revenue_silence_resumed_total",
    "power_revenue_summaries_posted_total",
    "power_revenue_comparison_query_failures_total",
    "power_revenue_history_import_failures_total",
];

fn deploy(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(dir)
}

/// Words of PromQL that are not metric names: aggregations, grouping and set operators.
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
];
/// Keywords followed by a list of label names, not an expression.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects: identifiers outside label matchers (`{…}`),
/// ranges (`[…]`) and label lists (`by (…)`), that are neither a function (followed by `(`)
/// nor a keyword.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut plain = String::new();
    let mut skip_until = None;
    for c in expr.chars() {
        match skip_until {
            Some(end) if c == end => {
                skip_until = None;
                plain.push(' ');
            }
            Some(_) => {}
            None if c == '{' => skip_until = Some('}'),
            None if c == '[' => skip_until = Some(']'),
            None => plain.push(c),
        }
    }
    let chars: Vec<char> = plain.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            // A number or a duration (0.99, 5m), read whole: never the start of a name.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        if !(chars[i].is_ascii_alphabetic() || chars[i] == '_' || chars[i] == ':') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && ident(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let mut next = i;
        while next < chars.len() && chars[next].is_whitespace() {
            next += 1;
        }
        let call = chars.get(next) == Some(&'(');
        if LABEL_LISTS.contains(&word.as_str()) && call {
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
        } else if !call && !KEYWORDS.contains(&word.as_str()) {
            names.insert(word);
        }
    }
    names
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{instance=~"$instance", le!="x"}[$__rate_interval])))"#
        ),
        ["a_seconds_bucket"]
    );
    assert_eq!(
        names("increase(a_total{kind=\"retryable\"}[30m]) > 0 unless on(instance) increase(b_total[30m]) > 0"),
        ["a_total", "b_total"]
    );
    assert_eq!(
        names("sum(increase(c_total[24h])) or vector(0)"),
        ["c_total"]
    );
    assert_eq!(names("up{job=\"x\"} offset 5m == 0"), ["up"]);
    assert_eq!(
        names("sum without (instance) (d) / ignoring(kind) group_left e"),
        ["d", "e"]
    );
}

/// The metric families a name belongs to: a histogram's `_bucket`, `_sum` and `_count` are
/// its own.
fn family<'a>(name: &'a str, histograms: &BTreeSet<String>) -> &'a str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s).filter(|b| histograms.contains(*b)))
        .unwrap_or(name)
}

/// Every `expr:` of a Prometheus rules file (each written on one line).
fn rule_exprs(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let dir = deploy("prometheus");
    eprintln!("{}", promtool::version());
    let check = promtool::run(&dir, &["check", "rules", "alerts.yml"], "");
    assert!(check.ok, "promtool check rules:\n{}", check.said);
    eprintln!("promtool check rules alerts.yml: {}", check.said.trim());
    let test = promtool::run(&dir, &["test", "rules", "alerts.test.yml"], "");
    assert!(test.ok, "promtool test rules:\n{}", test.said);
    eprintln!("promtool test rules alerts.test.yml: {}", test.said.trim());

    // Every alert has a unit test.
    let rules = std::fs::read_to_string(dir.join("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("alerts.test.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 10, "{alerts:?}");
    for alert in &alerts {
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "{alert} has no promtool unit test"
        );
    }

    // The scrape example, with its rule file, as Prometheus would load it (the token file it
    // names exists on the machine it is meant for; here a temporary one).
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let config = std::fs::read_to_string(dir.join("scrape-config.yml"))
        .unwrap()
        .replace(
            "/etc/prometheus/power-revenue-api-token",
            &token_file.display().to_string(),
        );
    assert!(config.contains(&token_file.display().to_string()));
    std::fs::write(tmp.path().join("scrape-config.yml"), config).unwrap();
    std::fs::copy(dir.join("alerts.yml"), tmp.path().join("alerts.yml")).unwrap();
    let config = promtool::run(tmp.path(), &["check", "config", "scrape-config.yml"], "");
    assert!(config.ok, "promtool check config:\n{}", config.said);
    eprintln!(
        "promtool check config scrape-config.yml: {}",
        config.said.trim().replace('\n', " | ")
    );
}

/// Every query of every panel, with the panel's title.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = vec![];
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            let expr = target["expr"].as_str().expect("every target has an expr");
            out.push((title, expr.to_owned()));
        }
    }
    out
}

/// The dashboard is an importable Grafana dashboard over one Prometheus data source, given
/// as an input, and every query parses as PromQL (`promtool check rules` on the queries as
/// recording rules, Grafana's variables replaced by values).
fn check_dashboard_shape_and_promql(dashboard: &Value) {
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(dashboard["__inputs"][0]["pluginId"], "prometheus");
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 39);
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "duplicate id");
        let grid = &panel["gridPos"];
        assert!(grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24);
        for target in panel["targets"].as_array().into_iter().flatten() {
            for ds in [&panel["datasource"], &target["datasource"]] {
                assert_eq!(ds["uid"], "${DS_PROMETHEUS}", "{}", panel["title"]);
            }
        }
    }
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in dashboard_queries(dashboard).iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*");
        let quoted = serde_json::to_string(&expr).unwrap(); // a YAML double-quoted string
        rules += &format!("      - record: dashboard:query_{i}\n        expr: {quoted}\n");
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("queries.yml"), rules).unwrap();
    let check = promtool::run(tmp.path(), &["check", "rules", "queries.yml"], "");
    assert!(check.ok, "the dashboard's PromQL:\n{}", check.said);
    eprintln!(
        "promtool check rules on the dashboard's {} queries: {}",
        dashboard_queries(dashboard).len(),
        check.said.trim()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_and_the_alerts_use_only_metrics_the_service_serves() {
    let text = std::fs::read_to_string(deploy("grafana").join("power-revenue.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    check_dashboard_shape_and_promql(&dashboard);
    let queries = dashboard_queries(&dashboard);
    let rules = std::fs::read_to_string(deploy("prometheus").join("alerts.yml")).unwrap();

    // The service, with every labelled series made to appear: a skipped sale (reason), a
    // failed Slack post (kind), a report posted; and the gauges known later (checkpoint age,
    // oplog headroom, read 20 s after start; the silent utilities, once the first baseline is
    // read: half the silence period after start). Label-free counters are served from the
    // start, at 0.
    let db = TestDb::new("monitoring").await;
    let slack = FakeSlack::start().await;
    slack.fail_next(500, "internal_error", None);
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[
            ("POWER_REVENUE_API_TOKEN", TOKEN),
            ("POWER_REVENUE_SILENCE", "4s"),
        ],
    );
    svc.wait_connected().await;
    let now = bson::DateTime::from_chrono(Utc::now());
    db.coll
        .insert_many([
            doc! { "createdAt": now, "utility": "IKEDC", "amount": "₦1,000.25", "status": "fulfilled" },
            doc! { "createdAt": now, "utility": "AEDC", "amount": "abc", "status": "fulfilled" },
        ])
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/metrics", svc.http());
    // Series (name and labels) that must be there, with a value of at least 1…
    let wanted = [
        "power_revenue_reports_posted_total",
        "power_revenue_report_post_failures_total{kind=\"retryable\"}",
        "power_revenue_events_skipped_total{reason=\"amount_unparseable\"}",
        "power_revenue_resume_token_age_seconds",
        "power_revenue_oplog_headroom_seconds",
    ];
    // …and with any value (no sale here is silent: 0).
    let present = ["power_revenue_silent_utilities"];
    let missing = |text: &str| -> Vec<&str> {
        let value = |series: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
                .and_then(|v| v.parse::<f64>().ok())
        };
        let wanted = wanted.iter().copied();
        let absent = present.iter().copied().filter(|p| value(p).is_none());
        wanted
            .filter(|w| value(w).is_none_or(|v| v < 1.0))
            .chain(absent)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let exposition = loop {
        let resp = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        let text = resp.text().await.unwrap();
        let not_yet = missing(&text);
        if not_yet.is_empty() {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "after 120 s, /metrics still lacks {not_yet:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (declared, served) = families(&exposition);
    let histograms: BTreeSet<String> = declared
        .iter()
        .filter(|(_, d)| d.kind.as_deref() == Some("histogram"))
        .map(|(n, _)| n.clone())
        .collect();

    let mut used = BTreeSet::new();
    for (title, expr) in &queries {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{title}: no metric in {expr}");
        for name in names {
            let family = family(&name, &histograms);
            assert!(
                served.contains(family),
                "panel {title:?} queries {name}, which /metrics does not serve:\n{exposition}"
            );
            used.insert(family.to_owned());
        }
    }
    for name in DASHBOARD_MUST_USE {
        assert!(used.contains(name), "the dashboard charts no {name}");
    }
    eprintln!(
        "dashboard: {} queries over {} metric families, all served by /metrics: {used:?}",
        queries.len(),
        used.len()
    );

    let mut exempt_used = BTreeSet::new();
    for expr in rule_exprs(&rules) {
        for name in metric_names(&expr) {
            if NOT_FROM_THIS_SERVICE.contains(&name.as_str()) {
                exempt_used.insert(name);
                continue;
            }
            let family = family(&name, &histograms);
            assert!(
                served.contains(family),
                "alerts.yml uses {name}, which /metrics does not serve"
            );
        }
    }
    // An exemption nobody needs any more is dropped, not kept.
    for name in NOT_FROM_THIS_SERVICE {
        assert!(exempt_used.contains(name), "{name} is exempt but unused");
    }
}
