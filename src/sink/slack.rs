//! The Slack incoming-webhook client. Webhooks have no idempotency key, so this client only
//! posts and classifies; exactly-once is the outbox's job ([`crate::deliver`]).

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("Slack rate limit (429); retry after {retry_after:?}")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Slack server error {status}: {body}")]
    Server { status: u16, body: String },
    #[error("cannot reach Slack: {0}")]
    Transport(String),
    /// 4xx other than 429: `invalid_payload`, `no_service`, `channel_is_archived`, …
    #[error("Slack refused the message ({status} {body}); fix the webhook or payload")]
    Rejected { status: u16, body: String },
}

impl SlackError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Rejected { .. })
    }

    /// Slack refused the message's form (`400 invalid_blocks`, `invalid_blocks_format`,
    /// `invalid_payload`), not the webhook: the same words may still go as plain text.
    pub fn is_blocks_refusal(&self) -> bool {
        match self {
            Self::Rejected { status: 400, body } => {
                let body = body.trim();
                body.starts_with("invalid_blocks") || body == "invalid_payload"
            }
            _ => false,
        }
    }
}

/// What to post after `error` refused `payload`: the same message as `text` only, when Slack
/// refused its blocks and it had any (so the fallback is tried once, never on itself).
pub(crate) fn text_only_fallback(payload: &Value, error: &SlackError) -> Option<Value> {
    if !error.is_blocks_refusal() || payload.get("blocks").is_none() {
        return None;
    }
    let text = payload.get("text")?.as_str()?;
    Some(serde_json::json!({ "text": text }))
}

#[derive(Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    url: SecretString,
}

impl SlackClient {
    pub fn new(url: SecretString) -> SlackClient {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10)) // reqwest has no default timeout
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("power-revenue/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("static HTTP client settings are valid");
        SlackClient { http, url }
    }

    /// One attempt. The error never contains the webhook URL.
    pub async fn post(&self, payload: &Value) -> Result<(), SlackError> {
        let response = self
            .http
            .post(self.url.expose_secret())
            .json(payload)
            .send()
            .await
            .map_err(|e| SlackError::Transport(error_chain(&e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        Err(match status.as_u16() {
            429 => SlackError::RateLimited { retry_after },
            s @ 500..=599 => SlackError::Server { status: s, body },
            s => SlackError::Rejected { status: s, body },
        })
    }

    /// The retry policy for Slack: about one message a second at first, at most 15 s apart.
    pub fn backoff(max_elapsed: Option<Duration>) -> backoff::ExponentialBackoff {
        backoff::ExponentialBackoff {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(15),
            max_elapsed_time: max_elapsed,
            ..Default::default()
        }
    }

    /// Retries 429 (honouring `Retry-After`), 5xx and transport errors until `max_elapsed`.
    pub(crate) async fn post_with_retry(
        &self,
        payload: &Value,
        max_elapsed: Duration,
    ) -> Result<(), SlackError> {
        backoff::future::retry_notify(
            Self::backoff(Some(max_elapsed)),
            || async {
                self.post(payload).await.map_err(|e| match e {
                    SlackError::RateLimited { retry_after: Some(d) } => backoff::Error::retry_after(e, d),
                    e if e.is_retryable() => backoff::Error::transient(e),
                    e => backoff::Error::permanent(e),
                })
            },
            |error: SlackError, wait: Duration| {
                tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "Slack post failed; retrying.");
            },
        )
        .await
    }
}

/// "error sending request: tcp connect error: Connection refused": the causes, not just the
/// outermost message.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rejected(status: u16, body: &str) -> SlackError {
        SlackError::Rejected {
            status,
            body: body.into(),
        }
    }

    #[test]
    fn a_blocks_refusal_falls_back_to_the_text_once() {
        let payload = json!({ "text": "the report", "blocks": [{ "type": "divider" }] });
        for body in [
            "invalid_blocks",
            "invalid_blocks_format",
            "invalid_payload",
            " invalid_blocks\n",
        ] {
            let fallback = text_only_fallback(&payload, &rejected(400, body));
            assert_eq!(fallback, Some(json!({ "text": "the report" })), "{body}");
            // The fallback has no blocks: refused again, it is not retried.
            let again = text_only_fallback(&fallback.unwrap(), &rejected(400, body));
            assert_eq!(again, None);
        }
    }

    #[test]
    fn other_refusals_and_failures_do_not_fall_back() {
        let payload = json!({ "text": "the report", "blocks": [] });
        for error in [
            rejected(404, "no_service"),
            rejected(403, "invalid_token"),
            rejected(400, "msg_too_long"),
            rejected(400, "no_text"),
            rejected(410, "channel_is_archived"),
            SlackError::Server {
                status: 500,
                body: "invalid_blocks".into(),
            },
            SlackError::RateLimited { retry_after: None },
            SlackError::Transport("refused".into()),
        ] {
            assert!(!error.is_blocks_refusal(), "{error}");
            assert_eq!(text_only_fallback(&payload, &error), None, "{error}");
        }
    }
}
