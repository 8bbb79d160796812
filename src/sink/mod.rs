//! The sink port: where reports and alerts go, Slack's incoming webhook ([`slack`]), or stdout
//! when none is configured.

pub mod slack;

use crate::config::Config;
use slack::{SlackClient, SlackError};
use std::time::Duration;

/// Where reports go.
#[derive(Clone)]
pub enum Sink {
    Slack(SlackClient),
    /// No webhook configured: print the text on stdout.
    Stdout,
}

impl Sink {
    pub fn from_config(config: &Config) -> Sink {
        match &config.slack_webhook {
            Some(url) => Sink::Slack(SlackClient::new(url.clone())),
            None => Sink::Stdout,
        }
    }

    /// One attempt.
    pub(crate) async fn send_once(&self, payload: &serde_json::Value) -> Result<(), SlackError> {
        match self {
            Sink::Slack(client) => client.post(payload).await,
            Sink::Stdout => {
                println!("{}\n", payload["text"].as_str().unwrap_or_default());
                Ok(())
            }
        }
    }

    /// Retries retryable failures for up to `patience`.
    pub async fn send(
        &self,
        payload: &serde_json::Value,
        patience: Duration,
    ) -> Result<(), SlackError> {
        match self {
            Sink::Slack(client) => client.post_with_retry(payload, patience).await,
            Sink::Stdout => self.send_once(payload).await,
        }
    }
}
