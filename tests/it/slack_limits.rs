//! Slack's limits end to end, without a database: the renderer's payloads against the loopback
//! Slack (which refuses what Slack refuses), and the outbox worker posting a report in parts,
//! resuming mid-way, and falling back to text when Slack refuses the blocks. Records are put in
//! the outbox ready to post, so the worker never queries.

use crate::common::slack::FakeSlack;
use crate::common::wait_for;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use power_revenue::activity::Activity;
use power_revenue::alert::Alerter;
use power_revenue::change::Marks;
use power_revenue::config::{Config, Settings};
use power_revenue::deliver::{Deliverer, Sink};
use power_revenue::report::{render_parts, ReportView};
use power_revenue::sink::slack::SlackClient;
use power_revenue::store::Outboxed;
use power_revenue::store::{
    Checkpoint, Delivery, Messages, Reconciled, ReportRecord, Settlement, Stage, Store,
};
use power_revenue::window::{ClosedBy, OpenWindow, Totals, Window, WindowSpec};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const ID: &str = "2025-05-29T12:00:00Z";

fn window() -> Window {
    let t: DateTime<Utc> = ID.parse().unwrap();
    WindowSpec::new(6 * 3600, Tz::UTC).unwrap().window_of(t)
}

fn totals() -> Totals {
    let mut t = Totals::default();
    t.add("IKEDC", Decimal::from(1500)).unwrap();
    t
}

fn corrections(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("Late for Morning 2025-05-29 #{i}: +₦1,500.00, 1 transaction"))
        .collect()
}

fn parts(notes: Vec<String>) -> Vec<Value> {
    let totals = totals();
    render_parts(&ReportView {
        window: window(),
        tz: Tz::UTC,
        totals: &totals,
        notes,
        compared: None,
    })
}

/// An outbox in a temporary directory and a worker posting to `slack`.
struct Outbox {
    store: Store,
    _dir: tempfile::TempDir,
    slack_url: String,
}

impl Outbox {
    fn new(slack: &FakeSlack) -> Outbox {
        let dir = tempfile::tempdir().unwrap();
        Outbox {
            store: Store::open(dir.path()).unwrap(),
            _dir: dir,
            slack_url: slack.url.clone(),
        }
    }

    /// Puts a rendered report in the outbox, `sent` of its parts already accepted: closed
    /// with a checkpoint (the write that enters it in the outbox), then made ready.
    async fn put(&self, parts: Vec<Value>, sent: usize) {
        let w = window();
        let mut record = ReportRecord::closed(OpenWindow::new(w, w.start), ClosedBy::Stream, w.end);
        let cp = Checkpoint {
            token: None,
            open: vec![],
            next_close: w,
            saved_at: w.end,
        };
        self.store
            .save_checkpoint(
                &cp,
                std::slice::from_ref(&record),
                &Marks::default(),
                &Activity::default(),
            )
            .await
            .unwrap();
        let mut parts = parts.into_iter();
        let messages = Messages::new(parts.next().unwrap(), parts.collect());
        let (reconciled, settles) = (Reconciled::Database(totals()), Settlement::default());
        record.ready(reconciled, messages, settles, w.end).unwrap();
        for _ in 0..sent {
            record.part_accepted(w.end).unwrap();
        }
        self.store.put_report(&record).await.unwrap();
    }

    /// Runs the worker until the report is no longer pending; returns its record.
    async fn deliver(&self) -> ReportRecord {
        let config = Config::from_settings(Settings {
            slack_webhook_url: Some(self.slack_url.clone()),
            ..Default::default()
        })
        .unwrap();
        // Never connected to: a ready record is posted without a query.
        let client = mongodb::Client::with_uri_str("mongodb://127.0.0.1:9/?connectTimeoutMS=100")
            .await
            .unwrap();
        let worker = Deliverer {
            coll: client.database("unused").collection("unused"),
            sink: Sink::from_config(&config),
            config: Arc::new(config),
            store: self.store.clone(),
            alerts: Alerter::new(self.store.clone(), Arc::new(Notify::new())),
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(worker.run(Arc::new(Notify::new()), shutdown.clone()));
        let record = wait_for(
            Duration::from_secs(30),
            "the report delivered",
            async || {
                let r = self.store.report(window().id()).unwrap()?;
                (!r.is_pending()).then_some(r)
            },
        )
        .await;
        shutdown.cancel();
        task.await.unwrap().unwrap();
        record
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rendered_part_is_accepted_by_the_loopback_slack() {
    let slack = FakeSlack::start().await;
    let client = SlackClient::new(slack.url.clone().into());
    let mut names = Totals::default();
    for i in 0..25 {
        let name = format!("{}{i:02}", "&".repeat(98));
        names.add(&name, Decimal::from(i + 1)).unwrap();
    }
    let mut all = vec![];
    for n in [0, 12, 60, 2000] {
        all.extend(parts(corrections(n)));
    }
    all.extend(render_parts(&ReportView {
        window: window(),
        tz: Tz::UTC,
        totals: &names,
        notes: corrections(12),
        compared: None,
    }));
    for p in &all {
        client.post(p).await.unwrap();
    }
    assert_eq!(slack.messages().len(), all.len());
    assert!(slack.refusals().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_loopback_slack_refuses_what_slack_refuses() {
    let slack = FakeSlack::start().await;
    let client = SlackClient::new(slack.url.clone().into());
    let section = |n: usize| json!({ "type": "section", "text": { "type": "mrkdwn", "text": "s".repeat(n) } });
    let context = |n: usize| {
        let e: Vec<Value> = (0..n)
            .map(|_| json!({ "type": "mrkdwn", "text": "c" }))
            .collect();
        json!({ "type": "context", "elements": e })
    };
    let field = |n: usize| json!({ "type": "section", "fields": [{ "type": "mrkdwn", "text": "f".repeat(n) }] });
    let header = |n: usize| json!({ "type": "header", "text": { "type": "plain_text", "text": "h".repeat(n) } });
    let with = |blocks: Vec<Value>| json!({ "text": "t", "blocks": blocks });
    let cases = [
        (
            with(vec![json!({ "type": "divider" }); 51]),
            "invalid_blocks",
        ),
        (with(vec![context(11)]), "invalid_blocks"),
        (with(vec![section(3001)]), "invalid_blocks"),
        (with(vec![field(2001)]), "invalid_blocks"),
        (with(vec![header(151)]), "invalid_blocks"),
        (json!({ "text": "x".repeat(40_001) }), "msg_too_long"),
        (json!({ "text": " ", "blocks": [section(5)] }), "no_text"),
        (json!({ "blocks": [section(5)] }), "no_text"),
        (json!({ "text": 5 }), "invalid_payload"),
    ];
    for (payload, answer) in &cases {
        let error = client.post(payload).await.unwrap_err();
        assert!(
            error.to_string().contains(&format!("400 {answer}")),
            "{error}"
        );
        let form = matches!(*answer, "invalid_blocks" | "invalid_payload");
        assert_eq!(error.is_blocks_refusal(), form, "{error}");
    }
    // At the limits, all is accepted.
    let at_limits = json!({ "text": "x".repeat(40_000), "blocks": [
        header(150), context(10), section(3000), field(2000),
    ] });
    client.post(&at_limits).await.unwrap();
    client
        .post(&with(vec![json!({ "type": "divider" }); 50]))
        .await
        .unwrap();
    assert_eq!(slack.refusals().len(), cases.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_report_goes_in_parts_in_order_and_is_sent_after_the_last() {
    let slack = FakeSlack::start().await;
    let outbox = Outbox::new(&slack);
    let parts = parts(corrections(2000));
    let n = parts.len();
    assert!(n >= 3, "{n} parts");
    outbox.put(parts.clone(), 0).await;
    let record = outbox.deliver().await;
    assert_eq!(record.stage(), Stage::Sent, "{record:?}");
    assert_eq!((record.parts_accepted(), record.attempts), (n, n as u32));
    assert_eq!(slack.messages(), parts);
    assert_eq!(slack.continuations_of(ID).len(), n - 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_mid_way_posts_only_the_parts_not_yet_sent() {
    let slack = FakeSlack::start().await;
    let outbox = Outbox::new(&slack);
    let parts = parts(corrections(2000));
    // Part 1 was accepted before the restart; part 2's first attempt meets a 500.
    outbox.put(parts.clone(), 1).await;
    slack.fail_next(500, "rollup_error", None);
    let record = outbox.deliver().await;
    assert_eq!(record.stage(), Stage::Sent, "{record:?}");
    assert_eq!(record.parts_accepted(), parts.len());
    assert_eq!(slack.messages(), parts[1..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_is_kept_when_a_later_part_is_refused() {
    let slack = FakeSlack::start().await;
    let outbox = Outbox::new(&slack);
    let mut parts = parts(corrections(2000));
    // Part 3 is refused for a reason plain text cannot mend.
    parts[2] = json!({ "text": "x".repeat(40_001) });
    outbox.put(parts.clone(), 0).await;
    let record = outbox.deliver().await;
    assert!(
        matches!(record.delivery(), Delivery::Undeliverable(u) if u.reason.contains("msg_too_long")),
        "{record:?}"
    );
    assert_eq!(record.parts_accepted(), 2);
    assert_eq!(slack.messages(), parts[..2]);
}

/// Every log line of this test binary. Installed once as the *global* subscriber: a
/// thread-local one (`set_default`) goes blind whenever a sibling test on another thread
/// reaches a callsite first, since tracing caches each callsite's interest process-wide.
#[derive(Clone, Default)]
struct Log(Arc<std::sync::Mutex<Vec<u8>>>);

fn global_log() -> Log {
    static LOG: std::sync::OnceLock<Log> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = Log::default();
        let writer = log.clone();
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        )
        .expect("no other global subscriber in this test binary");
        log
    })
    .clone()
}

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn refused_blocks_are_posted_once_as_text_only() {
    let log = global_log();
    let slack = FakeSlack::start().await;
    let outbox = Outbox::new(&slack);
    // What an earlier build stored for twelve corrections: one context element per note.
    let mut elements: Vec<Value> = corrections(12)
        .into_iter()
        .map(|n| json!({ "type": "mrkdwn", "text": n }))
        .collect();
    elements.push(json!({ "type": "mrkdwn", "text": format!("Window {ID}") }));
    let text = format!("report\n\n{}", corrections(12).join("\n\n"));
    let stored = json!({ "text": text, "blocks": [{ "type": "context", "elements": elements }] });
    outbox.put(vec![stored.clone()], 0).await;
    let record = outbox.deliver().await;
    assert_eq!(record.stage(), Stage::Sent, "{record:?}");
    assert_eq!(record.attempts, 2);
    assert_eq!(slack.messages(), vec![json!({ "text": text })]);
    let refusals = slack.refusals();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0], ("invalid_blocks", stored));
    let log = log.text();
    let warning = log
        .lines()
        .find(|l| l.contains("posting it as text only") && l.contains(ID))
        .unwrap_or_else(|| panic!("no fallback warning in {log}"));
    assert!(warning.contains("WARN"), "{warning}");
}

#[tokio::test(flavor = "multi_thread")]
async fn text_refused_after_the_blocks_makes_the_report_undeliverable() {
    let slack = FakeSlack::start().await;
    let outbox = Outbox::new(&slack);
    outbox.put(parts(corrections(1)), 0).await;
    slack.fail_next(400, "invalid_blocks", None);
    slack.fail_next(400, "invalid_payload", None);
    let record = outbox.deliver().await;
    assert!(
        matches!(record.delivery(), Delivery::Undeliverable(u) if u.reason.contains("invalid_payload")),
        "{record:?}"
    );
    assert_eq!(record.attempts, 2, "blocks, then text once");
    assert!(slack.messages().is_empty());
}
