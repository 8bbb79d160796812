//! `GET /api/v1/openapi.json` against the real binary: the document is valid OpenAPI 3.1
//! (`openapi-spec-validator`), and every answer of every `/api/v1` route (200s with a report
//! sent, one undeliverable and a skipped sale behind them; 400 for bad parameters; 401 without
//! the token or with it in the URL) matches the schema the document gives for that route and
//! status (`jsonschema`, Draft 2020-12, formats checked). The schemas are strict (no unknown
//! field, every field required), so a view that changes without the document fails here.

use crate::common::openapi;
use crate::common::service::Service;
use crate::common::slack::FakeSlack;
use crate::common::{wait_for, TestDb};
use bson::doc;
use chrono::Utc;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "openapi-token-for-tests";
const DOC_PATH: &str = "/api/v1/openapi.json";

/// One request and its answer, as the checker reads it.
async fn exchange(base: &str, path_and_query: &str, bearer: Option<&str>) -> Value {
    let mut req = reqwest::Client::new().get(format!("{base}{path_and_query}"));
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
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

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_valid_and_every_answer_matches_it() {
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
    for bad in ["0", "1001", "abc", "", "-1"] {
        let path = format!("/api/v1/windows?last={bad}");
        exchanges.push(exchange(&base, &path, Some(TOKEN)).await);
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
    // stage, a float amount.
    let mut drifted = vec![];
    for x in &exchanges {
        let mut x = x.clone();
        if x["status"] != 200 || x["path"] == DOC_PATH {
            continue;
        }
        let mut body: Value = serde_json::from_str(x["body"].as_str().unwrap()).unwrap();
        match x["path"].as_str().unwrap() {
            "/api/v1/status" => body["surprise"] = json!(1),
            "/api/v1/windows" if body[0].is_object() => body[0]["delivery"] = json!("lost"),
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
        "/windows/0: 'end' is a required property",
    ] {
        assert!(
            verdict.said.contains(expected),
            "the checker missed drift ({expected}):\n{}",
            verdict.said
        );
    }
}
