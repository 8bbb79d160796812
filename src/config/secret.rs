//! Secrets: reading them (inline or from a `_FILE`), refusing empty or malformed ones, and
//! keeping them out of every message. A connection string's userinfo is found by the *last*
//! `@` in it, so a password is cut out whole whatever characters it holds.

use super::secret_json::{self, SecretJsonError};
use super::ConfigError;
use secrecy::SecretString;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The settings that hold a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretVar {
    MongoUri,
    SlackWebhook,
    ApiToken,
}

impl SecretVar {
    pub fn env(self) -> &'static str {
        match self {
            Self::MongoUri => "MONGODB_URI",
            Self::SlackWebhook => "SLACK_WEBHOOK_URL",
            Self::ApiToken => "POWER_REVENUE_API_TOKEN",
        }
    }

    pub(crate) fn file_env(self) -> &'static str {
        match self {
            Self::MongoUri => "MONGODB_URI_FILE",
            Self::SlackWebhook => "SLACK_WEBHOOK_URL_FILE",
            Self::ApiToken => "POWER_REVENUE_API_TOKEN_FILE",
        }
    }

    /// What to do about an empty value. (An empty token used to open every HTTP route.)
    pub(crate) fn if_empty(self) -> &'static str {
        match self {
            Self::MongoUri => "set it to the cluster's connection string",
            Self::SlackWebhook => {
                "set it to the incoming-webhook URL, or unset it to print reports to stdout"
            }
            Self::ApiToken => {
                "set it to a token (e.g. from `openssl rand -hex 32`), or unset it to leave the HTTP routes open"
            }
        }
    }
}

/// A secret file holds one line; anything bigger is the wrong file (or `/dev/zero`).
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Reads at most `max` bytes of `path` as UTF-8; `Ok(None)` if the file is larger.
pub(super) fn read_bounded(path: &Path, max: u64) -> std::io::Result<Option<String>> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max.saturating_add(1))
        .read_to_string(&mut text)?;
    Ok((text.len() as u64 <= max).then_some(text))
}

/// A secret given inline or as a file (Docker/Kubernetes secrets), never both, never empty.
pub(super) fn secret(
    var: SecretVar,
    inline: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<SecretString>, ConfigError> {
    let (value, from) = match (inline, file) {
        (Some(_), Some(_)) => return Err(ConfigError::Ambiguous { var: var.env() }),
        (None, None) => return Ok(None),
        (Some(v), None) => {
            if v.trim().is_empty() {
                return Err(ConfigError::EmptySecret { var });
            }
            (v, var.env().to_owned())
        }
        (None, Some(path)) => {
            let unreadable = |reason: String| ConfigError::SecretFile {
                var: var.file_env(),
                path: path.clone(),
                reason,
            };
            let text = read_bounded(&path, MAX_SECRET_FILE_BYTES)
                .map_err(|e| unreadable(e.kind().to_string()))?
                .ok_or_else(|| {
                    unreadable(format!(
                        "larger than {} KiB, so not a secret file",
                        MAX_SECRET_FILE_BYTES / 1024
                    ))
                })?;
            if text.trim().is_empty() {
                return Err(ConfigError::EmptySecretFile { var, path });
            }
            let from = format!("{} ({})", var.file_env(), path.display());
            match secret_json::unwrap(var, &text) {
                Ok(None) => (text, from),
                Ok(Some(value)) => {
                    let key = secret_json::json_key(var).unwrap_or_default();
                    (value, format!("{from}, key \"{key}\","))
                }
                Err(problem) => return Err(SecretJsonError { var, path, problem }.into()),
            }
        }
    };
    let value = value.trim();
    // A second line or a control character cannot be meant (a header cannot carry it, and a
    // URI would be misread); say so without quoting any of it.
    if value.chars().any(char::is_control) {
        return Err(ConfigError::SecretNotOneLine { from });
    }
    Ok(Some(SecretString::from(value.to_owned())))
}

/// The parts of a URI around its userinfo: `(scheme, userinfo, rest after the '@')`. The
/// userinfo ends at the last `@`, since a host list can hold none (a password may hold any).
fn split_userinfo(uri: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = uri.split_once("://")?;
    let (userinfo, hosts) = rest.rsplit_once('@')?;
    Some((scheme, userinfo, hosts))
}

/// Characters RFC 3986 reserves in a userinfo, which the driver refuses unencoded.
const USERINFO_RESERVED: &[char] = &[':', '/', '?', '#', '[', ']', '@'];

/// Whether `s` holds a reserved character, or a `%` that does not start an escape (`%3F`).
fn needs_encoding(s: &str) -> bool {
    s.contains(USERINFO_RESERVED)
        || s.split('%').skip(1).any(|after| {
            after.len() < 2 || !after.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit)
        })
}

/// Refuses a userinfo the driver would misread: with an unencoded `?` the driver takes the
/// password's tail for options and quotes its start as a port in its error.
pub(super) fn check_userinfo(uri: &str) -> Result<(), ConfigError> {
    let Some((_, userinfo, _)) = split_userinfo(uri) else {
        return Ok(());
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    if needs_encoding(user) || needs_encoding(password) {
        return Err(ConfigError::UnencodedUserinfo);
    }
    Ok(())
}

/// `mongodb://user:****@host1,host2/db?…`: the password never leaves this process.
pub fn redact_uri(uri: &str) -> String {
    if !uri.contains("://") {
        return "<unparseable URI>".into();
    }
    let shown = match split_userinfo(uri) {
        Some((scheme, userinfo, hosts)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:****@{hosts}")
        }
        None => uri.to_owned(),
    };
    // Options may hold secrets too (`tlsCertificateKeyFilePassword`, an AWS session token in
    // `authMechanismProperties`): those values are not shown.
    match shown.split_once('?') {
        Some((base, options)) => {
            let options: Vec<String> = options
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if is_secret_option(k) => format!("{k}=****"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{base}?{}", options.join("&"))
        }
        None => shown,
    }
}

/// Connection-string options whose values may be secrets.
fn is_secret_option(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "secret", "token", "key", "properties"]
        .iter()
        .any(|part| key.contains(part))
}

/// Driver messages can quote the URI; cut the password out of them in every form it may
/// take there (as written, percent-decoded, lower-cased as host names are).
pub(crate) fn scrub(message: &str, uri: &str) -> String {
    let Some((_, userinfo, _)) = split_userinfo(uri) else {
        return message.to_owned();
    };
    let Some((_, password)) = userinfo.split_once(':') else {
        return message.to_owned();
    };
    if password.is_empty() {
        return message.to_owned();
    }
    let decoded = percent_encoding::percent_decode_str(password)
        .decode_utf8_lossy()
        .into_owned();
    let mut out = message.to_owned();
    for form in [
        password.to_owned(),
        decoded.clone(),
        password.to_lowercase(),
        decoded.to_lowercase(),
    ] {
        if !form.is_empty() {
            out = out.replace(&form, "****");
        }
    }
    out
}
