//! A Slack incoming webhook on loopback: validates payloads as Slack does (JSON, non-empty
//! `text` of at most 40,000 characters, Block Kit limits), answers what Slack answers
//! (`400 invalid_payload`, `no_text`, `msg_too_long`, `invalid_blocks`), records accepted
//! messages and what it refused, and can be told to fail first or to refuse messages whose text
//! says something.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Inner {
    accepted: Vec<Value>,
    /// Payloads it refused by its own checks, with the answer given.
    refused: Vec<(&'static str, Value)>,
    /// Responses to give before accepting: (status, body, Retry-After).
    failures: VecDeque<(u16, &'static str, Option<u64>)>,
    /// Messages whose text contains the first are refused with `400` and the second.
    refuse_containing: Vec<(&'static str, &'static str)>,
    attempts: u32,
}

#[derive(Clone, Default)]
pub struct FakeSlack {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

/// The webhook URL a fake Slack on `port` will answer.
pub fn url_on(port: u16) -> String {
    format!("http://127.0.0.1:{port}/services/T000/B000/SECRETWEBHOOKTOKEN")
}

/// See [`FakeSlack::reserve`].
pub struct Reserved {
    socket: tokio::net::TcpSocket,
    pub url: String,
}

impl Reserved {
    /// Slack comes up on the reserved port.
    pub fn open(self) -> FakeSlack {
        FakeSlack::serve(self.socket.listen(64).unwrap())
    }
}

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        Self::serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    /// A port bound for Slack but not yet listening (connections are refused), so its webhook
    /// URL can be handed out before Slack is "up"; [`Reserved::open`] starts answering there.
    pub fn reserve() -> Reserved {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let url = url_on(socket.local_addr().unwrap().port());
        Reserved { socket, url }
    }

    fn serve(listener: tokio::net::TcpListener) -> FakeSlack {
        let slack = FakeSlack {
            url: url_on(listener.local_addr().unwrap().port()),
            ..FakeSlack::default()
        };
        let app = Router::new()
            .route("/services/T000/B000/SECRETWEBHOOKTOKEN", post(hook))
            .with_state(slack.inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        slack
    }

    pub fn fail_next(&self, status: u16, body: &'static str, retry_after: Option<u64>) {
        self.inner
            .lock()
            .unwrap()
            .failures
            .push_back((status, body, retry_after));
    }

    /// Refuses, with `400 body` (recorded in [`Self::refusals`]), every message whose text
    /// contains `needle`, as Slack refuses a message for its content.
    pub fn refuse_containing(&self, needle: &'static str, body: &'static str) {
        self.inner
            .lock()
            .unwrap()
            .refuse_containing
            .push((needle, body));
    }

    pub fn messages(&self) -> Vec<Value> {
        self.inner.lock().unwrap().accepted.clone()
    }

    pub fn attempts(&self) -> u32 {
        self.inner.lock().unwrap().attempts
    }

    /// What its own checks refused (`invalid_blocks`, …), oldest first; not `fail_next`'s.
    pub fn refusals(&self) -> Vec<(&'static str, Value)> {
        self.inner.lock().unwrap().refused.clone()
    }

    /// The follow-up messages of a report split into parts ("(continued) Window <id>, part k
    /// of n"), in the order accepted. `id` as in the report's context: `2025-05-29T12:00:00Z`.
    pub fn continuations_of(&self, id: &str) -> Vec<String> {
        self.messages_about(&format!("(continued) Window {id}, part "))
    }

    /// Accepted messages whose text mentions `needle` (e.g. a window id).
    pub fn messages_about(&self, needle: &str) -> Vec<String> {
        self.messages()
            .iter()
            .filter_map(|m| m["text"].as_str().map(str::to_owned))
            .filter(|t| t.contains(needle))
            .collect()
    }
}

async fn hook(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut inner = inner.lock().unwrap();
    inner.attempts += 1;
    if let Some((status, text, retry_after)) = inner.failures.pop_front() {
        let mut resp = (StatusCode::from_u16(status).unwrap(), text).into_response();
        if let Some(s) = retry_after {
            resp.headers_mut()
                .insert("retry-after", s.to_string().parse().unwrap());
        }
        return resp;
    }
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let payload: Value = match serde_json::from_str(&body) {
        Ok(v) if json => v,
        _ => return (StatusCode::BAD_REQUEST, "invalid_payload").into_response(),
    };
    let text = payload["text"].as_str().unwrap_or_default();
    let told = inner
        .refuse_containing
        .iter()
        .find(|(needle, _)| text.contains(needle))
        .map(|(_, body)| *body);
    if let Some(why) = told.or_else(|| check_payload(&payload).err()) {
        inner.refused.push((why, payload));
        return (StatusCode::BAD_REQUEST, why).into_response();
    }
    inner.accepted.push(payload);
    (StatusCode::OK, "ok").into_response()
}

/// Slack's documented limits for webhook messages. Lengths are in characters, as Slack
/// documents them.
pub fn check_payload(p: &Value) -> Result<(), &'static str> {
    if !p.is_object() {
        return Err("invalid_payload");
    }
    let text = match p.get("text") {
        None => "",
        Some(Value::String(t)) => t,
        Some(_) => return Err("invalid_payload"),
    };
    if text.trim().is_empty() {
        return Err("no_text");
    }
    if text.chars().count() > 40_000 {
        return Err("msg_too_long");
    }
    let blocks = match p.get("blocks") {
        None => return Ok(()),
        Some(Value::Array(b)) => b,
        Some(_) => return Err("invalid_blocks"),
    };
    if blocks.len() > 50 {
        return Err("invalid_blocks");
    }
    let nonempty = |v: &Value, max: usize| {
        v.as_str()
            .is_some_and(|s| !s.trim().is_empty() && s.chars().count() <= max)
    };
    let text_object = |t: &Value, max: usize| {
        matches!(t["type"].as_str(), Some("mrkdwn" | "plain_text")) && nonempty(&t["text"], max)
    };
    for b in blocks {
        let ok = match b["type"].as_str() {
            Some("header") => {
                b["text"]["type"] == "plain_text" && nonempty(&b["text"]["text"], 150)
            }
            Some("divider") => true,
            Some("section") => {
                let text_ok = b.get("text").is_none_or(|t| text_object(t, 3000));
                let fields_ok = b.get("fields").is_none_or(|f| {
                    f.as_array().is_some_and(|f| {
                        !f.is_empty() && f.len() <= 10 && f.iter().all(|x| text_object(x, 2000))
                    })
                });
                text_ok && fields_ok && (b.get("text").is_some() || b.get("fields").is_some())
            }
            Some("context") => b["elements"].as_array().is_some_and(|e| {
                !e.is_empty() && e.len() <= 10 && e.iter().all(|x| text_object(x, 3000))
            }),
            _ => false,
        };
        if !ok {
            return Err("invalid_blocks");
        }
    }
    Ok(())
}
