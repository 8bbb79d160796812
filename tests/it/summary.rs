//! Period summaries through the real binary: 2 s windows summed up every 6 s. Sales in each
//! window of a period (and in the period before, for the comparison) give one summary, posted
//! once, after the period's last report, whose total is the sum of the windows' reports (the
//! database's figures) to the kobo; neither a restart nor a crash between the last report and
//! the summary posts it twice or loses it; a correction posted within the period is in the
//! summary's figures. Sales are inserted ahead of their windows (dated in the future), so none
//! arrives late however slow the machine.

use crate::common::service::Service;
use crate::common::slack::FakeSlack;
use crate::common::{report_of, spec, upcoming, wait_for, TestDb};
use bson::{doc, Document};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use power_revenue::report::time_line;
use power_revenue::window::Window;
use rust_decimal::Decimal;
use std::str::FromStr;
use std::time::Duration;

const WINDOW: &str = "2s";
const PERIOD: &str = "6s";

fn sale(at: DateTime<Utc>, utility: &str, amount: &str, status: &str) -> Document {
    doc! { "createdAt": bson::DateTime::from_chrono(at), "utility": utility, "amount": amount, "status": status }
}

/// `₦1,234.50` as a decimal.
fn naira(s: &str) -> Decimal {
    Decimal::from_str(&s.trim_start_matches('₦').replace(',', "")).unwrap()
}

/// The figure after "💰 Total Revenue Generated:" in a message's text.
fn total_of(text: &str) -> Decimal {
    let line = text
        .split("💰 Total Revenue Generated:\n")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no total in {text}"));
    naira(line)
}

/// Waits for the summary of `period`; panics if it is posted more than once.
async fn summary_of(slack: &FakeSlack, period: &Window, secs_after_end: u64) -> String {
    summary_with_title(slack, period, "📆 Revenue Summary (6s)", secs_after_end).await
}

/// [`summary_of`] for a summary titled `title`.
async fn summary_with_title(
    slack: &FakeSlack,
    period: &Window,
    title: &str,
    secs_after_end: u64,
) -> String {
    let needle = format!("🕐 Time: {}", time_line(period, Tz::UTC));
    let until_end = (period.end - Utc::now()).to_std().unwrap_or_default();
    let text = wait_for(
        until_end + Duration::from_secs(secs_after_end),
        &format!("the summary for {needle}"),
        async || {
            slack
                .messages_about(&needle)
                .into_iter()
                .find(|t| t.starts_with(title))
        },
    )
    .await;
    let all = slack.messages_about(&needle);
    assert_eq!(all.len(), 1, "posted more than once: {all:?}");
    text
}

/// The service with 2 s windows and 6 s summaries, and `extra` settings.
fn summarising(db: &TestDb, slack: &FakeSlack, extra: &[(&str, &str)]) -> Service {
    let mut env = vec![
        ("POWER_REVENUE_WINDOW", WINDOW),
        ("POWER_REVENUE_SUMMARY", PERIOD),
    ];
    env.extend_from_slice(extra);
    Service::start(&db.name, Some(&slack.url), &env)
}

/// How far ahead the first window with sales starts: its sales are inserted before it closes
/// with this much to spare (a busy machine's insert can take seconds).
const SAFE_LEAD_SECS: i64 = 4;

/// Sales in each 2 s window from `first` on (`windows` of them), dated 300 ms into the window
/// and inserted at once, before `first` closes: returns each sale's time and amount (counted).
async fn sell_ahead(db: &TestDb, first: &Window, windows: usize) -> Vec<(DateTime<Utc>, Decimal)> {
    let amounts = [["1500.50", "2500"], ["700.25", "0.25"], ["10000", "333.33"]];
    let mut docs = vec![];
    let mut sold = vec![];
    let mut w = *first;
    for pair in amounts.iter().cycle().take(windows) {
        let at = w.start + TimeDelta::milliseconds(300);
        docs.extend([
            sale(at, "IKEDC", pair[0], "fulfilled"),
            sale(at, "EKEDC", pair[1], "fulfilled"),
            // Not fulfilled: in no figure.
            sale(at, "IKEDC", "99999", "pending"),
        ]);
        sold.extend([(at, naira(pair[0])), (at, naira(pair[1]))]);
        w = spec(2).next(&w);
    }
    db.coll.insert_many(docs).await.unwrap();
    // Before the first window closed (its end, plus a second's grace): no sale was late.
    assert!(
        Utc::now() < first.end,
        "inserting took too long: the sales may be late"
    );
    sold
}

/// What was sold in `period`.
fn sold_in(sold: &[(DateTime<Utc>, Decimal)], period: &Window) -> Decimal {
    sold.iter()
        .filter(|(at, _)| period.start <= *at && *at < period.end)
        .map(|(_, amount)| amount)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_summary_is_posted_once_with_the_databases_total_and_survives_a_restart() {
    let db = TestDb::new("summary").await;
    let slack = FakeSlack::start().await;
    let mut svc = summarising(&db, &slack, &[]);
    svc.wait_connected().await;
    let period = upcoming(6, SAFE_LEAD_SECS);
    // The period before, in its last window (still open): the comparison's figure.
    db.coll
        .insert_one(sale(
            period.start - TimeDelta::seconds(1),
            "IKEDC",
            "4000",
            "fulfilled",
        ))
        .await
        .unwrap();
    let sold = sold_in(
        &sell_ahead(&db, &spec(2).window_of(period.start), 3).await,
        &period,
    );

    let text = summary_of(&slack, &period, 40).await;
    assert_eq!(total_of(&text), sold, "{text}");
    assert!(text.contains("📊 Total Transactions: 6\n"), "{text}");
    // The sum of the period's three reports, each the database's figures for its window.
    let windows: Vec<Window> = (0..3)
        .map(|i| spec(2).window_of(period.start + TimeDelta::seconds(2 * i)))
        .collect();
    let mut reports_sum = Decimal::ZERO;
    for w in &windows {
        let report = report_of(&slack, w, 20).await;
        reports_sum += total_of(&report);
        // Its window line in the summary says the same.
        let range = time_line(w, Tz::UTC);
        let range = range.split(" UTC").next().unwrap();
        let line = format!("• {range}: ₦");
        let shown = text
            .lines()
            .find(|l| l.starts_with(&line))
            .unwrap_or_else(|| panic!("no line {line} in {text}"));
        assert_eq!(
            naira(shown[line.len() - "₦".len()..].split(' ').next().unwrap()),
            total_of(&report),
            "{shown}"
        );
    }
    assert_eq!(reports_sum, sold);
    // Compared with the period before (₦4,000.00): the change in revenue.
    assert!(
        text.contains("• Previous period: ₦4,000.00, 1 transaction (+275.9%)"),
        "{text}"
    );
    // After the period's last report.
    let order: Vec<String> = slack
        .messages()
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect();
    let last_report = order
        .iter()
        .position(|t| t.contains(&time_line(&windows[2], Tz::UTC)))
        .unwrap();
    let summary_at = order.iter().position(|t| *t == text).unwrap();
    assert!(last_report < summary_at, "{order:?}");

    // Restart: the summary is not posted again, and `status` says it was sent.
    svc.terminate();
    svc.restart();
    svc.wait_connected().await;
    let later = upcoming(2, 3);
    let later = spec(2).next(&later);
    report_of(&slack, &later, 20).await;
    summary_of(&slack, &period, 0).await;
    let status = svc.status().await.unwrap();
    let last = &status["last_summary"];
    assert_eq!(last["delivery"]["state"], "sent", "{status}");
    assert!(
        DateTime::parse_from_rfc3339(last["period"]["start"].as_str().unwrap()).unwrap()
            >= period.start,
        "{status}"
    );
    // And as text, from the state directory once stopped.
    assert!(svc.terminate().success());
    let env: Vec<(&str, &str)> = svc
        .env()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (code, text, err) = crate::common::service::run_cli(&["status"], &env);
    assert_eq!(code, 0, "{err}");
    let line = text
        .lines()
        .find(|l| l.starts_with("Last summary: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(": sent "), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_the_last_report_and_its_summary_neither_loses_nor_repeats_it() {
    let db = TestDb::new("summary_crash").await;
    let slack = FakeSlack::start().await;
    let mut svc = summarising(
        &db,
        &slack,
        &[
            // Aborts when the first summary is queued (with its period's last report, in one
            // write) and not yet posted.
            ("POWER_REVENUE_FAILPOINT", "before_summary"),
        ],
    );
    svc.wait_connected().await;
    // Sales through the next 20 s, from a window a few seconds ahead on: whichever period's
    // summary is queued first (that depends on how fast the service started) has them from
    // there on, or none at all (checked below).
    let first = spec(2).window_of(Utc::now() + TimeDelta::seconds(SAFE_LEAD_SECS));
    let sold = sell_ahead(&db, &first, 10).await;
    let status = svc.wait_exit(Duration::from_secs(60)).await;
    assert!(!status.success(), "the failpoint aborts the process");
    let log = svc.current_log();
    assert!(log.contains("failpoint before_summary: aborting"), "{log}");
    // The period's last report went out in the write that queued the summary.
    assert!(log.contains("Report posted."), "{log}");
    assert!(!log.contains("Summary posted."), "{log}");
    // The summary that was queued, from the state directory while the process is down.
    let period = queued_summary(&svc);
    svc.restart_with(&[("POWER_REVENUE_FAILPOINT", "")]);
    svc.wait_connected().await;
    let text = summary_of(&slack, &period, 40).await;
    let expected = sold_in(&sold, &period);
    if expected.is_zero() {
        // Queued before the first sale's window (started in a period's last second).
        assert!(text.contains("📝 No transactions in this period"), "{text}");
    } else {
        assert_eq!(total_of(&text), expected, "{text}");
    }
    let last = spec(2).window_of(period.end - TimeDelta::seconds(1));
    report_of(&slack, &last, 20).await;
    // A later report goes out too; the summary stays posted once.
    let after = spec(2).next(&spec(2).window_of(Utc::now() + TimeDelta::seconds(2)));
    report_of(&slack, &after, 20).await;
    summary_of(&slack, &period, 0).await;
}

/// The period of the last summary `status --json` shows, read from the state directory of the
/// stopped service; it must still be queued.
fn queued_summary(svc: &Service) -> Window {
    let env: Vec<(&str, &str)> = svc
        .env()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (code, out, err) = crate::common::service::run_cli(&["status", "--json"], &env);
    assert_eq!(code, 0, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    let last = &status["last_summary"];
    assert_eq!(last["delivery"]["state"], "closed", "{status}");
    serde_json::from_value(last["period"].clone()).unwrap()
}

/// A refund in the period's first window after its report: a later report of the period
/// corrects it, and the summary's line for that window is its report plus that correction,
/// its total their sum, all from what was posted (the summary reads no sale).
#[tokio::test(flavor = "multi_thread")]
async fn a_summary_is_the_sum_of_its_reports_and_their_corrections() {
    let db = TestDb::new("summary_corrected").await;
    let slack = FakeSlack::start().await;
    // Six windows a period: the refund's correction is posted well before the period ends.
    let svc = summarising(&db, &slack, &[("POWER_REVENUE_SUMMARY", "12s")]);
    svc.wait_connected().await;
    let period = upcoming(12, SAFE_LEAD_SECS);
    let first = spec(2).window_of(period.start);
    let sold = sold_in(&sell_ahead(&db, &first, 6).await, &period);
    report_of(&slack, &first, 20).await;
    let refunded = db
        .coll
        .find_one_and_update(
            doc! { "utility": "IKEDC", "status": "fulfilled", "createdAt": {
            "$gte": bson::DateTime::from_chrono(first.start),
            "$lt": bson::DateTime::from_chrono(first.end) } },
            doc! { "$set": { "status": "refunded" } },
        )
        .await
        .unwrap()
        .expect("a sale to refund");
    let amount = naira(refunded.get_str("amount").unwrap());
    let label = power_revenue::report::window_label(&first, Tz::UTC);
    let correction = format!("Correction for {label}: -₦");
    let text = summary_with_title(&slack, &period, "📆 Revenue Summary (12s)", 40).await;
    let order: Vec<String> = slack
        .messages()
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect();
    let summary_at = order.iter().position(|t| *t == text).unwrap();
    assert!(
        order[..summary_at].iter().any(|t| t.contains(&correction)),
        "the correction was posted before the summary: {order:?}"
    );
    assert_eq!(total_of(&text), sold - amount, "{text}");
    let range = time_line(&first, Tz::UTC);
    let line = format!("• {}: ₦", range.split(" UTC").next().unwrap());
    let shown = text
        .lines()
        .find(|l| l.starts_with(&line))
        .unwrap_or_else(|| panic!("no line {line} in {text}"));
    let report = total_of(&report_of(&slack, &first, 0).await);
    assert_eq!(
        naira(shown[line.len() - "₦".len()..].split(' ').next().unwrap()),
        report - amount,
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_summary_slack_refuses_is_alerted_once_and_reports_go_on() {
    let db = TestDb::new("summary_refused").await;
    let slack = FakeSlack::start().await;
    // Every summary, blocks and plain text alike, as Slack refuses a message too long.
    slack.refuse_containing("📆 Revenue Summary", "msg_too_long");
    let svc = summarising(&db, &slack, &[]);
    svc.wait_connected().await;
    // The first summary queued (whichever period that is) is refused: one alert says so.
    let says = "🚨 power-revenue: Slack refused the summary for period ";
    let alert = wait_for(Duration::from_secs(40), "the alert", async || {
        slack.messages_about(says).into_iter().next()
    })
    .await;
    assert!(alert.contains("msg_too_long"), "{alert}");
    // Reports go on; the next periods' summaries are refused too, but alerted no more (one
    // alert of a kind per 30 minutes).
    let later = spec(6).next(&spec(6).window_of(Utc::now()));
    report_of(&slack, &spec(2).window_of(later.end), 30).await;
    let alerts = slack.messages_about(says);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let status = svc.status().await.unwrap();
    assert_eq!(
        status["last_summary"]["delivery"]["state"], "undeliverable",
        "{status}"
    );
}

#[test]
fn a_period_that_is_no_multiple_of_the_window_exits_2_with_one_line() {
    for (window, summary, says) in [
        ("6h", "9h", "not a multiple of the window (6h)"),
        ("2s", "14s", "does not divide 24 h"),
        ("6h", "2d", "at most 1d"),
    ] {
        let (code, out, err) = crate::common::service::run_cli(
            &["serve"],
            &[
                ("MONGODB_URI", "mongodb://127.0.0.1:9/power"),
                ("POWER_REVENUE_WINDOW", window),
                ("POWER_REVENUE_SUMMARY", summary),
            ],
        );
        assert_eq!(code, 2, "{out}{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("POWER_REVENUE_SUMMARY") && err.contains(says),
            "{err}"
        );
    }
    // The flag, as the variable.
    let (code, out, err) = crate::common::service::run_cli(
        &["serve", "--summary", "bogus"],
        &[("MONGODB_URI", "mongodb://127.0.0.1:9/power")],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("POWER_REVENUE_SUMMARY = \"bogus\" is not a duration"),
        "{err}"
    );
}
