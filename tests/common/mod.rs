//! Test harness: a real MongoDB-compatible server (SecantusDB, or `MONGODB_URI`), a fake Slack
//! that checks what Slack checks, and the real `power-revenue` binary.
#![allow(dead_code)]

pub mod browser;
pub mod service;
pub mod slack;

use bson::{doc, Document};
use mongodb::{Client, Collection};
use power_revenue::devserver::DevServer;
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
