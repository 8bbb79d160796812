//! Test harness: a real MongoDB-compatible server (SecantusDB, or `MONGODB_URI`), a fake Slack
//! that checks what Slack checks, and the real `power-revenue` binary.
#![allow(dead_code)]

pub mod apt;
pub mod browser;
pub mod deploy_tools;
pub mod openapi;
pub mod promtool;
pub mod service;
pub mod slack;

use bson::{doc, Document};
use chrono::{TimeDelta, Utc};
use chrono_tz::Tz;
use mongodb::{Client, Collection};
use power_revenue::devserver::DevServer;
use power_revenue::report::time_line;
use power_revenue::window::{Window, WindowSpec};
use slack::FakeSlack;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The server for this test binary: `MONGODB_URI` if set, else one SecantusDB started once.
pub fn server_uri() -> String {
    static SERVER: OnceLock<(String, Option<DevServer>)> = OnceLock::new();
    SERVER
        .get_or_init(|| match std::env::var("MONGODB_URI") {
            Ok(uri) if !uri.is_empty() => (uri, None),
            _ => {
                let server = DevServer::start(None, &[])
                    .expect("SecantusDB starts (python3 and PyPI needed on first run)");
                (server.uri(), Some(server))
            }
        })
        .0
        .clone()
}

/// A database of its own for one test.
pub struct TestDb {
    pub name: String,
    pub client: Client,
    pub coll: Collection<Document>,
}

impl TestDb {
    pub async fn new(tag: &str) -> TestDb {
        Self::on(&server_uri(), tag).await
    }

    pub async fn on(uri: &str, tag: &str) -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t_{tag}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let client = Client::with_uri_str(uri).await.expect("test client");
        let coll = client.database(&name).collection("power_transaction_items");
        // Create the collection up front so a change stream can be opened on it.
        coll.insert_one(doc! { "seed": true })
            .await
            .expect("seed insert");
        TestDb { name, client, coll }
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Windows of `secs`, aligned in UTC.
pub fn spec(secs: u64) -> WindowSpec {
    WindowSpec::new(secs, Tz::UTC).expect("window spec")
}

/// The first window of `secs` (UTC) that starts at least `lead_secs` from now.
pub fn upcoming(secs: u64, lead_secs: i64) -> Window {
    let spec = spec(secs);
    let t = Utc::now() + TimeDelta::seconds(lead_secs);
    let w = spec.window_of(t);
    if w.start < t {
        spec.next(&w)
    } else {
        w
    }
}

/// Waits for the report of `w` and returns its text; panics if it is posted more than once.
/// `secs_after_end` counts from the window's end (or now, if that has passed): a window picked
/// by `upcoming` may end a whole window-length later, and a deadline counted from the call
/// made such waits flaky by exactly that phase.
pub async fn report_of(slack: &FakeSlack, w: &Window, secs_after_end: u64) -> String {
    let needle = time_line(w, Tz::UTC);
    let until_end = (w.end - Utc::now()).to_std().unwrap_or_default();
    let text = wait_for(
        until_end + Duration::from_secs(secs_after_end),
        &format!("the report for {needle}"),
        async || slack.messages_about(&needle).first().cloned(),
    )
    .await;
    let all = slack.messages_about(&needle);
    assert_eq!(all.len(), 1, "posted more than once: {all:?}");
    text
}
