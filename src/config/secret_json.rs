//! Secrets Manager's JSON form of a secret file. The Lambda kept its secrets in AWS Secrets
//! Manager as JSON objects (`{"connection_string": "mongodb+srv://…"}`,
//! `{"webhook_url": "https://hooks.slack.com/…"}`), and a Secrets Manager CSI mount or an
//! External Secrets sync writes them to a file as they are. Such a file is accepted unchanged:
//! the one expected key's string is the secret, and every rule for a secret then applies to it.
//! Any other JSON in a secret file (another key, more keys, a value that is not a string, a
//! broken object) is an error that says what is wrong without quoting any of it: keys and
//! values alike may be secrets pasted in the wrong place.

use super::secret::SecretVar;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::fmt;
use std::path::PathBuf;

/// What is wrong with a JSON secret file. Shown with the variable and path, never the content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonProblem {
    /// The file starts with `{` but does not parse; where, and of what kind (serde_json's).
    #[error("starts with {{ but is not valid JSON ({kind} at line {line}, column {column})")]
    Malformed {
        kind: &'static str,
        line: usize,
        column: usize,
    },
    /// A JSON object, for a setting that has no JSON form.
    #[error("holds a JSON object, but this setting has no JSON form")]
    NoJsonForm,
    /// An object without the expected key (`other_keys` others, not named).
    #[error(
        "holds a JSON object without the key \"{key}\" ({other_keys} other key(s), not shown)"
    )]
    MissingKey {
        key: &'static str,
        other_keys: usize,
    },
    /// The expected key, next to `extra_keys` others (not named).
    #[error(
        "holds \"{key}\" and {extra_keys} other key(s) (not shown); only \"{key}\" may be there"
    )]
    ExtraKeys {
        key: &'static str,
        extra_keys: usize,
    },
    /// The expected key more than once: which one is meant cannot be told.
    #[error("holds \"{key}\" more than once")]
    RepeatedKey { key: &'static str },
    /// The expected key's string is empty or whitespace.
    #[error("holds \"{key}\" with nothing but whitespace")]
    Empty { key: &'static str },
    /// The expected key's value is not a string.
    #[error("holds \"{key}\" as {found}, not a string")]
    NotAString {
        key: &'static str,
        found: &'static str,
    },
}

/// A JSON secret file that is not the expected object.
#[derive(Debug, thiserror::Error)]
#[error("{} ({}) {problem}; {}", var.file_env(), path.display(), what_to_do(*var))]
pub struct SecretJsonError {
    /// The setting whose `_FILE` it is.
    pub var: SecretVar,
    /// The file, as configured.
    pub path: PathBuf,
    /// What is wrong, without the content.
    pub problem: JsonProblem,
}

fn what_to_do(var: SecretVar) -> String {
    match json_key(var) {
        Some(key) => format!(
            "it must hold only the secret, or a JSON object {{\"{key}\": \"…\"}} as in AWS Secrets Manager"
        ),
        None => "it must hold only the secret".to_owned(),
    }
}

/// The key that holds the secret in the Lambda's Secrets Manager JSON; `None`: no JSON form.
pub(crate) fn json_key(var: SecretVar) -> Option<&'static str> {
    match var {
        SecretVar::MongoUri => Some("connection_string"),
        SecretVar::SlackWebhook => Some("webhook_url"),
        // The Lambda had no API token, so no JSON of it exists to be mounted unchanged.
        SecretVar::ApiToken => None,
    }
}

/// What a secret file holds: the secret as written, or its JSON object's one expected string.
/// A file is read as JSON only when its first non-blank character is `{`: no connection
/// string, webhook URL or token starts with one.
pub(crate) fn unwrap(var: SecretVar, text: &str) -> Result<Option<String>, JsonProblem> {
    if !text.trim_start().starts_with('{') {
        return Ok(None);
    }
    let Some(key) = json_key(var) else {
        return Err(JsonProblem::NoJsonForm);
    };
    let Entries(entries) = serde_json::from_str(text).map_err(|e| JsonProblem::Malformed {
        kind: match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "not an object",
            serde_json::error::Category::Eof => "ends too early",
        },
        line: e.line(),
        column: e.column(),
    })?;
    let (mine, others): (Vec<_>, Vec<_>) = entries.iter().partition(|(k, _)| k == key);
    let others = others.len();
    let value = match mine.as_slice() {
        [] => {
            return Err(JsonProblem::MissingKey {
                key,
                other_keys: others,
            })
        }
        [(_, value)] => value,
        _ => return Err(JsonProblem::RepeatedKey { key }),
    };
    if others > 0 {
        return Err(JsonProblem::ExtraKeys {
            key,
            extra_keys: others,
        });
    }
    match value {
        Value::String(s) if s.trim().is_empty() => Err(JsonProblem::Empty { key }),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(JsonProblem::NotAString {
            key,
            found: match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
                Value::String(_) => "a string",
            },
        }),
    }
}

/// A JSON object's entries in order, repeated keys kept (a `serde_json::Map` keeps only the
/// last of them, which would pick one of two secrets silently).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(Each)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "mongodb+srv://ops:hunter2@cluster0.example.net/power";

    #[test]
    fn plain_secrets_are_not_json() {
        assert_eq!(unwrap(SecretVar::MongoUri, URI), Ok(None));
        assert_eq!(unwrap(SecretVar::ApiToken, "abc{def}"), Ok(None));
    }

    #[test]
    fn the_lambdas_objects_give_their_string() {
        let mongo = format!("{{\"connection_string\": \"{URI}\"}}");
        assert_eq!(unwrap(SecretVar::MongoUri, &mongo), Ok(Some(URI.into())));
        // As Secrets Manager's console shows it: pretty-printed, with a trailing newline.
        let webhook = "{\n  \"webhook_url\": \"https://hooks.slack.com/services/T/B/x\"\n}\n";
        assert_eq!(
            unwrap(SecretVar::SlackWebhook, webhook),
            Ok(Some("https://hooks.slack.com/services/T/B/x".into()))
        );
        // Escapes are JSON's: the string is the decoded one.
        assert_eq!(
            unwrap(
                SecretVar::SlackWebhook,
                r#" {"webhook_url":"https:\/\/h\u002eio/x"}"#
            ),
            Ok(Some("https://h.io/x".into()))
        );
    }

    #[test]
    fn anything_else_is_named_without_its_content() {
        let cases: &[(SecretVar, &str, JsonProblem)] = &[
            (
                SecretVar::MongoUri,
                r#"{"webhook_url": "hunter2"}"#,
                JsonProblem::MissingKey {
                    key: "connection_string",
                    other_keys: 1,
                },
            ),
            (
                SecretVar::MongoUri,
                r#"{"connection_string": "mongodb://h/db", "password": "hunter2"}"#,
                JsonProblem::ExtraKeys {
                    key: "connection_string",
                    extra_keys: 1,
                },
            ),
            (
                SecretVar::MongoUri,
                r#"{"connection_string": "mongodb://h/db", "connection_string": "mongodb://u:hunter2@h/db"}"#,
                JsonProblem::RepeatedKey {
                    key: "connection_string",
                },
            ),
            (
                SecretVar::SlackWebhook,
                r#"{"webhook_url": {"url": "hunter2"}}"#,
                JsonProblem::NotAString {
                    key: "webhook_url",
                    found: "an object",
                },
            ),
            (
                SecretVar::SlackWebhook,
                r#"{"webhook_url": ["hunter2"]}"#,
                JsonProblem::NotAString {
                    key: "webhook_url",
                    found: "an array",
                },
            ),
            (
                SecretVar::MongoUri,
                r#"{"connection_string": 12345}"#,
                JsonProblem::NotAString {
                    key: "connection_string",
                    found: "a number",
                },
            ),
            (
                SecretVar::MongoUri,
                r#"{"connection_string": null}"#,
                JsonProblem::NotAString {
                    key: "connection_string",
                    found: "null",
                },
            ),
            (
                SecretVar::MongoUri,
                r#"{"connection_string": " "}"#,
                JsonProblem::Empty {
                    key: "connection_string",
                },
            ),
            (
                SecretVar::ApiToken,
                r#"{"token": "hunter2"}"#,
                JsonProblem::NoJsonForm,
            ),
        ];
        for (var, text, expected) in cases {
            let problem = unwrap(*var, text).unwrap_err();
            assert_eq!(&problem, expected, "{text}");
            let shown = problem.to_string();
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn broken_json_says_where_not_what() {
        for text in [
            r#"{"connection_string": "hunter2"#,
            r#"{"connection_string": "hunter2",}"#,
            r#"{"connection_string": "hunter2"} trailing-hunter2"#,
            r#"{connection_string: hunter2}"#,
            "{\"connection_string\": \"hunter2\u{7}\"}",
        ] {
            let problem = unwrap(SecretVar::MongoUri, text).unwrap_err();
            assert!(
                matches!(problem, JsonProblem::Malformed { line: 1, .. }),
                "{text}: {problem:?}"
            );
            assert!(!problem.to_string().contains("hunter2"), "{problem}");
        }
    }

    /// Through the secret reader: the extracted string is the secret, under every rule of one.
    #[test]
    fn a_json_file_goes_through_the_secret_rules() {
        use secrecy::ExposeSecret;
        let dir = tempfile::tempdir().unwrap();
        let read = |var: SecretVar, text: &str| {
            let path = dir.path().join("secret");
            std::fs::write(&path, text).unwrap();
            super::super::secret::secret(var, None, Some(path))
        };
        let uri = read(
            SecretVar::MongoUri,
            &format!("{{\"connection_string\": \"  {URI} \"}}\n"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(uri.expose_secret(), URI);
        // A line break written as a JSON escape is still a second line.
        let e = read(
            SecretVar::MongoUri,
            r#"{"connection_string": "mongodb://h/db\nhunter2"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("more than one line"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = read(SecretVar::SlackWebhook, r#"{"webhook": "hunter2"}"#).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with("SLACK_WEBHOOK_URL_FILE (")
                && shown.contains("without the key \"webhook_url\"")
                && shown.contains("as in AWS Secrets Manager")
                && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
