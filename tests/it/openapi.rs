//! `GET /api/v1/openapi.json` against the real binary: the document is valid OpenAPI 3.1
//! (`openapi-spec-validator`), and every answer of every `/api/v1` route (200s with a report
//! sent, one undeliverable and a skipped sale behind them; the history by time range, paged
//! through its `Link` headers, as JSON and as CSV; 400 for each kind of bad parameter; 401
//! without the token or with it in the URL) matches the schema the document gives for that
//! route, status and media type, headers included (`jsonschema`, Draft 2020-12, formats
//! checked). A second service, with a week of back-dated sales of a utility that now sells
//! nothing and summaries every 6 s, answers with a silent utility and a last summary. The
//! schemas are strict (no unknown field, every field required), so a view that changes without
//! the document fails here.

use crate::common::openapi;
use crate::common::service::Service;
use crate::common::slack::FakeSlack;
use crate::common::{wait_for, TestDb};
use bson::{doc, Document};
use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "openapi-token-for-tests";
const DOC_PATH: &str = "/api/v1/openapi.json";

/// The utility of the second service: a week of sales at this time of day, none now.
const QUIET: &str = "QUIETCO";
/// Every way `GET /api/v1/windows` refuses a request, with what it says.
const BAD_WINDOWS_QUERIES: [(&str, &str); 11] = [
    ("last=0", "last must be a number from 1 to 1000\n"),
    ("last=1001", "last must be a number from 1 to 1000\n"),
    ("last=abc", "last must be a number from 1 to 1000\n"),
    ("last=", "last must be a number from 1 to 1000\n"),
    ("last=-1", "last must be a number from 1 to 1000\n"),
    (
        "from=yesterday",
        "from must be an RFC 3339 time, e.g. 2025-05-29T00:00:00Z\n",
    ),
    (
        "to=2025-05-29",
        "to must be an RFC 3339 time, e.g. 2025-05-29T00:00:00Z\n",
    ),
    (
        "from=2025-05-29T00:00:00Z&to=2025-05-29T01:00:00%2B01:00",
        "to must be later than from\n",
    ),
    ("limit=0", "limit must be a number from 1 to 1000\n"),
    ("limit=1001", "limit must be a number from 1 to 1000\n"),
    (
        "last=5&from=2025-05-29T00:00:00Z",
        "last cannot be combined with from, to or limit\n",
    ),
];

/// One request and its answer, as the checker reads it.
async fn exchange(base: &str, path_and_query: &str, bearer: Option<&str>) -> Value {
    exchange_accepting(base, path_and_query, bearer, None).await
}

/// [`exchange`] with an `Accept` header.
async fn exchange_accepting(
    base: &str,
    path_and_query: &str,
    bearer: Option<&str>,
    accept: Option<&str>,
) -> Value {
    let mut req = reqwest::Client::new().get(format!("{base}{path_and_query}"));
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    let resp = req.send().await.expect("the service answers");
    let status = resp.status().as_u16();
    let headers: serde_json::Map<String, Value> = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or_default())))
        .collect();
    let content_type = headers
        .get("content-type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let body = resp.text().await.unwrap();
    let path = path_and_query.split('?').next().unwrap();
    json!({ "path": path, "status": status, "content_type": content_type,
            "headers": headers, "body": body })
}

fn check(dir: &Path, doc: &str, exchanges: &[Value]) -> openapi::Verdict {
    let doc_file = dir.join("openapi.json");
    let exchanges_file = dir.join("exchanges.json");
    std::fs::write(&doc_file, doc).unwrap();
    std::fs::write(&exchanges_file, serde_json::to_vec(exchanges).unwrap()).unwrap();
    openapi::check(&doc_file, &exchanges_file)
}

fn sale_at(at: DateTime<Utc>, utility: &str, amount: &str) -> Document {
    doc! { "createdAt": bson::DateTime::from_chrono(at), "utility": utility,
    "amount": amount, "status": "fulfilled" }
}

/// The second service: [`QUIET`] sold once a second around this time of day on each of the
/// last 7 days (5 sales per 5 s silence period) and sells nothing now, so it is silent once
/// the first baseline is read and 5 s have passed; 2 s windows summed up every 6 s.
async fn start_quiet(db: &TestDb, slack: &FakeSlack) -> Service {
    let now = Utc::now();
    let mut docs = Vec::new();
    for day in 1..=7 {
        let same_time = now - TimeDelta::days(day);
        for s in -30..300 {
            docs.push(sale_at(same_time + TimeDelta::seconds(s), QUIET, "100"));
        }
    }
    db.coll.insert_many(docs).await.unwrap();
    Service::start(
        &db.name,
        Some(&slack.url),
        &[
            ("POWER_REVENUE_API_TOKEN", TOKEN),
            ("POWER_REVENUE_WINDOW", "2s"),
            ("POWER_REVENUE_SUMMARY", "6s"),
            ("POWER_REVENUE_SILENCE", "5s"),
        ],
    )
}

/// The history's CSV as a client reads it: the documented header, then rows whose every field
/// parses (times, revenue with two places, count). Returns the number of rows.
fn csv_rows(body: &str) -> usize {
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["start", "end", "utility", "revenue", "count"]
    );
    let mut rows = 0;
    for record in reader.records() {
        let r = record.unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(r.len(), 5, "{body}");
        let start: DateTime<Utc> = r[0].parse().unwrap();
        let end: DateTime<Utc> = r[1].parse().unwrap();
        assert!(start < end, "{body}");
        assert!(!r[2].is_empty(), "{body}");
        let revenue: Decimal = r[3].parse().unwrap();
        assert_eq!(revenue.scale(), 2, "{body}");
        r[4].parse::<u64>().unwrap();
        rows += 1;
    }
    rows
}

/// The URL of a `Link: <…>; rel="next"` header, if the answer has one.
fn next_page(x: &Value) -> Option<String> {
    let link = x["headers"]["link"].as_str()?;
    let url = link.strip_prefix('<')?.strip_suffix(">; rel=\"next\"");
    Some(
        url.unwrap_or_else(|| panic!("not a next link: {link}"))
            .to_owned(),
    )
}

/// The window starts of a JSON answer of `GET /api/v1/windows`.
fn starts(x: &Value) -> Vec<DateTime<Utc>> {
    let items: Value = serde_json::from_str(x["body"].as_str().unwrap()).unwrap();
    let items = items.as_array().unwrap().iter();
    items
        .map(|w| w["start"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_valid_and_every_answer_matches_it() {
    // The second service first: its silence and summary come while the first one works.
    let quiet_db = TestDb::new("openapi_quiet").await;
    let quiet_slack = FakeSlack::start().await;
    let quiet = start_quiet(&quiet_db, &quiet_slack).await;
    let db = TestDb::new("openapi").await;
    let slack = FakeSlack::start().await;
    // The first report: a retryable failure, then refused for good (undeliverable).
    slack.fail_next(500, "internal_error", None);
    slack.fail_next(404, "no_service", None);
    let svc = Service::start(
        &db.name,
        Some(&slack.url),
        &[("POWER_REVENUE_API_TOKEN", TOKEN)],
    );
    svc.wait_connected().await;
    let sale = |utility: &str, amount: &str| {
        doc! { "createdAt": bson::DateTime::from_chrono(Utc::now()), "utility": utility,
        "amount": amount, "status": "fulfilled" }
    };
    db.coll
        .insert_many([sale("IKEDC", "₦1,000.25"), sale("AEDC", "abc")])
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(60),
        "an undeliverable report",
        async || {
            let s = svc.status().await?;
            (!s["undeliverable_reports"].as_array()?.is_empty()).then_some(())
        },
    )
    .await;
    db.coll.insert_one(sale("EKEDC", "2,500")).await.unwrap();
    let base = svc.http();
    wait_for(
        Duration::from_secs(60),
        "a report sent, with its comparisons",
        async || {
            let s = svc.status().await?;
            s["last_reported"].as_object()?;
            let closed = svc.get_json("/api/v1/windows").await?;
            closed
                .as_array()?
                .iter()
                .any(|w| w["delivery"] == "sent" && w["compared"].is_object())
                .then_some(())
        },
    )
    .await;

    let mut exchanges = vec![];
    for path in [
        "/api/v1/status",
        "/api/v1/windows/current",
        "/api/v1/windows",
        "/api/v1/windows?last=1",
        "/api/v1/windows?last=1000",
    ] {
        exchanges.push(exchange(&base, path, Some(TOKEN)).await);
    }
    for (bad, says) in BAD_WINDOWS_QUERIES {
        let x = exchange(&base, &format!("/api/v1/windows?{bad}"), Some(TOKEN)).await;
        assert_eq!(
            (&x["status"], &x["body"]),
            (&json!(400), &json!(says)),
            "{bad}"
        );
        exchanges.push(x);
    }

    // The history: everything in one page, then one window a page through the `Link`s.
    let since = "2000-01-01T00:00:00Z";
    let until = (Utc::now() + TimeDelta::days(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let range = format!("/api/v1/windows?from={since}&to={until}");
    let whole = exchange(&base, &range, Some(TOKEN)).await;
    let before = starts(&whole);
    assert!(before.len() >= 2, "{whole}");
    exchanges.push(whole);
    for path in [
        format!("/api/v1/windows?from={since}"),
        format!("/api/v1/windows?to={until}&limit=1000"),
        "/api/v1/windows?limit=1".to_owned(),
    ] {
        exchanges.push(exchange(&base, &path, Some(TOKEN)).await);
    }
    let (mut next, mut paged, mut pages) = (Some(format!("{range}&limit=1")), vec![], 0);
    while let Some(url) = next.take() {
        let x = exchange(&base, &url, Some(TOKEN)).await;
        assert_eq!(x["status"], 200, "{x}");
        paged.extend(starts(&x));
        next = next_page(&x);
        exchanges.push(x);
        pages += 1;
        assert!(pages <= 100, "the links never end");
    }
    assert!(pages >= 2, "one page only");
    assert!(paged.windows(2).all(|p| p[0] < p[1]), "{paged:?}");
    let paged_set: BTreeSet<_> = paged.iter().collect();
    assert!(
        before.iter().all(|s| paged_set.contains(s)),
        "{before:?} {paged:?}"
    );
    // The same as CSV (and JSON when the client prefers it).
    for path in ["/api/v1/windows".to_owned(), format!("{range}&limit=2")] {
        let x = exchange_accepting(&base, &path, Some(TOKEN), Some("text/csv")).await;
        assert_eq!(x["content_type"], "text/csv; charset=utf-8", "{x}");
        assert!(csv_rows(x["body"].as_str().unwrap()) >= 1, "{x}");
        exchanges.push(x);
    }
    let prefers_json = Some("text/csv;q=0.5, application/json");
    let x = exchange_accepting(&base, "/api/v1/windows", Some(TOKEN), prefers_json).await;
    assert_eq!(x["content_type"], "application/json");
    exchanges.push(x);

    // The second service: a silent utility, and a last summary.
    quiet_db
        .coll
        .insert_one(sale_at(Utc::now(), "IKEDC", "300"))
        .await
        .unwrap();
    let quiet_base = quiet.http();
    for path in ["/api/v1/status", "/api/v1/windows/current"] {
        let x = wait_for(
            Duration::from_secs(60),
            "a silent utility and a summary",
            async || {
                let x = exchange(&quiet_base, path, Some(TOKEN)).await;
                let body: Value = serde_json::from_str(x["body"].as_str()?).ok()?;
                let silent = body["silent"].as_array()?;
                (silent.first()?["utility"] == QUIET).then_some(())?;
                if path == "/api/v1/status" {
                    body["last_summary"].as_object()?;
                }
                Some(x)
            },
        )
        .await;
        exchanges.push(x);
    }
    for path in [
        "/api/v1/status",
        "/api/v1/windows/current",
        "/api/v1/windows",
    ] {
        exchanges.push(exchange(&base, path, None).await);
        exchanges.push(exchange(&base, path, Some("wrong")).await);
        let with_token = format!("{path}?token={TOKEN}");
        exchanges.push(exchange(&base, &with_token, Some(TOKEN)).await);
    }
    // The document itself is public, and served as the file is.
    let served = exchange(&base, DOC_PATH, None).await;
    assert_eq!(served["status"], 200);
    assert_eq!(served["content_type"], "application/json");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/openapi.json");
    let doc = served["body"].as_str().unwrap().to_owned();
    assert_eq!(doc, std::fs::read_to_string(file).unwrap());
    exchanges.push(served);
    // What the document does not describe: unknown paths.
    assert_eq!(
        exchange(&base, "/api/v1/nope", Some(TOKEN)).await["status"],
        404
    );

    let tmp = tempfile::tempdir().unwrap();
    let verdict = check(tmp.path(), &doc, &exchanges);
    eprintln!("{}", verdict.said);
    assert!(verdict.ok, "the answers do not match the document");

    // The schemas are strict enough to catch drift: an added field, an unknown delivery
    // stage or figures' origin, a float amount, a CSV column renamed.
    let mut drifted = vec![];
    for x in &exchanges {
        let mut x = x.clone();
        if x["status"] != 200 || x["path"] == DOC_PATH {
            continue;
        }
        if x["content_type"] != "application/json" {
            let csv = x["body"].as_str().unwrap().replacen("revenue", "amount", 1);
            x["body"] = json!(csv);
            drifted.push(x);
            continue;
        }
        let mut body: Value = serde_json::from_str(x["body"].as_str().unwrap()).unwrap();
        match x["path"].as_str().unwrap() {
            "/api/v1/status" => body["surprise"] = json!(1),
            "/api/v1/windows" if body[0].is_object() => {
                body[0]["delivery"] = json!("lost");
                body[0]["totals_from"] = json!("guessed");
            }
            "/api/v1/windows/current" => body["windows"] = json!([{ "start": "x" }]),
            _ => continue,
        }
        x["body"] = json!(body.to_string());
        drifted.push(x);
    }
    let verdict = check(tmp.path(), &doc, &drifted);
    assert!(!verdict.ok);
    for expected in [
        "'surprise' was unexpected",
        "'lost' is not one of",
        "'guessed' is not one of",
        "does not match '^start,end,utility,revenue,count",
        "/windows/0: 'end' is a required property",
    ] {
        assert!(
            verdict.said.contains(expected),
            "the checker missed drift ({expected}):\n{}",
            verdict.said
        );
    }
}
