//! Who may read: with `POWER_REVENUE_API_TOKEN` set, every route but `/healthz` needs the
//! token as `Authorization: Bearer <token>` or the dashboard's session cookie. The token in a
//! URL is accepted once, by the dashboard page (`/?token=…`), which answers with the cookie and
//! a redirect to itself without the token: a URL ends up in browser history, proxy and access
//! logs, so anywhere else `?token=` is refused.
//!
//! The cookie holds a value derived from the token (HMAC-SHA256 keyed by it), not the token:
//! browsers send a host's cookies to all of its ports, so a cookie for `127.0.0.1:9464` also
//! reaches any other service on `127.0.0.1`, which then learns no secret it could use
//! elsewhere. The cookie also expires: it carries its end (`Max-Age`, and the same time inside
//! the HMAC), so one that leaked elsewhere is good for [`SESSION_SECS`] at most. Changing the
//! token invalidates every cookie. Comparisons are constant-time.

use super::HttpState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The dashboard's session cookie.
pub(crate) const COOKIE: &str = "power_revenue_session";
/// The query parameter the dashboard page takes the token from.
const TOKEN_PARAM: &str = "token";
/// What the cookie value is derived for (a new label invalidates old cookies).
const COOKIE_LABEL: &[u8] = b"power-revenue dashboard session v2";
/// How long a dashboard session lasts; then the page asks for `/?token=` again.
pub(crate) const SESSION_SECS: i64 = 12 * 3600;

const DASHBOARD: &str = include_str!("dashboard.html");

/// The cookie value for `token`, good until `expires` (Unix seconds): `<expires>.<hex of
/// HMAC-SHA256(key = token, COOKIE_LABEL and expires)>`.
fn cookie_value(token: &SecretString, expires: i64) -> String {
    format!("{expires}.{}", signature(token, expires))
}

fn signature(token: &SecretString, expires: i64) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(token.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(COOKIE_LABEL);
    mac.update(&expires.to_be_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `value` is a cookie this token signed that has not expired at `now`.
fn valid_cookie(value: &str, token: &SecretString, now: i64) -> bool {
    let Some((expires, given)) = value.split_once('.') else {
        return false;
    };
    let Ok(expires) = expires.parse::<i64>() else {
        return false;
    };
    // Not expired, and not from further ahead than any cookie this service sets.
    let live = now < expires && expires <= now.saturating_add(SESSION_SECS);
    live && equal(given, &signature(token, expires))
}

fn equal(given: &str, expected: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// Whether the `Authorization: Bearer` header or the cookie (never the URL) carries `token`.
fn authorized(headers: &HeaderMap, token: &SecretString, now: i64) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|b| equal(b, token.expose_secret())) {
        return true;
    }
    // Every cookie of that name counts: another service on the same host (any port) may have
    // set one of its own.
    let mut cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE);
    cookies.any(|(_, value)| valid_cookie(value.trim_matches('"'), token, now))
}

/// The value of `?token=`, and the query without it (other parameters kept as they were).
fn split_token(query: Option<&str>) -> (Option<String>, Vec<&str>) {
    let mut token = None;
    let mut rest = vec![];
    for piece in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match url::form_urlencoded::parse(piece.as_bytes()).next() {
            Some((key, value)) if key == TOKEN_PARAM => token = Some(value.into_owned()),
            _ => rest.push(piece),
        }
    }
    (token, rest)
}

fn unauthorized(hint: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        hint,
    )
        .into_response()
}

/// Every protected route but the dashboard: the header or the cookie; `?token=` is refused.
pub(crate) async fn require_token(
    State(s): State<HttpState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &s.config.api_token else {
        return next.run(request).await;
    };
    if split_token(request.uri().query()).0.is_some() {
        return unauthorized(
            "the API token goes in the Authorization header (or the dashboard's cookie), never in the URL\n",
        );
    }
    if authorized(&headers, token, chrono::Utc::now().timestamp()) {
        next.run(request).await
    } else {
        unauthorized("missing or wrong API token\n")
    }
}

/// `GET /`: the page, for the header or the cookie. `?token=<the token>` instead answers 303
/// with the cookie, to the same URL without the token.
pub(crate) async fn dashboard(State(s): State<HttpState>, request: Request) -> Response {
    let Some(token) = &s.config.api_token else {
        return Html(DASHBOARD).into_response();
    };
    let headers = request.headers();
    let (given, rest) = split_token(request.uri().query());
    if let Some(given) = given {
        if !equal(&given, token.expose_secret()) {
            return unauthorized("wrong API token\n");
        }
        let location = match rest.as_slice() {
            [] => request.uri().path().to_owned(),
            rest => format!("{}?{}", request.uri().path(), rest.join("&")),
        };
        // `Secure` only where the browser spoke https (to a proxy in front): a browser drops a
        // `Secure` cookie set over plain http, and the listener itself speaks only http.
        let secure = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        let expires = chrono::Utc::now().timestamp().saturating_add(SESSION_SECS);
        let cookie = format!(
            "{COOKIE}={}; Max-Age={SESSION_SECS}; HttpOnly; SameSite=Strict; Path=/{}",
            cookie_value(token, expires),
            if secure { "; Secure" } else { "" }
        );
        let Ok(location) = HeaderValue::from_str(&location) else {
            return (StatusCode::BAD_REQUEST, "malformed URL\n").into_response();
        };
        return (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, location),
                (
                    header::SET_COOKIE,
                    HeaderValue::from_str(&cookie).expect("hex and ASCII"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response();
    }
    if authorized(headers, token, chrono::Utc::now().timestamp()) {
        Html(DASHBOARD).into_response()
    } else {
        unauthorized("missing or wrong API token: open /?token=<token> once, or send the Authorization header\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_taken_out_of_the_query_and_the_rest_kept_as_it_was() {
        assert_eq!(split_token(None), (None, vec![]));
        assert_eq!(
            split_token(Some("token=a%20b&x=1&y=%2F")),
            (Some("a b".to_owned()), vec!["x=1", "y=%2F"])
        );
        assert_eq!(split_token(Some("tok=1&&z")), (None, vec!["tok=1", "z"]));
        assert_eq!(
            split_token(Some("to%6Ben=s")),
            (Some("s".to_owned()), vec![])
        );
    }

    #[test]
    fn the_cookie_is_derived_from_the_token_and_never_is_it() {
        let token = SecretString::from("s3cret");
        let now = 1_800_000_000;
        let value = cookie_value(&token, now + SESSION_SECS);
        assert!(!value.contains("s3cret"));
        assert_eq!(
            value,
            cookie_value(&SecretString::from("s3cret"), now + SESSION_SECS)
        );
        assert_ne!(
            value,
            cookie_value(&SecretString::from("s3cret2"), now + SESSION_SECS)
        );

        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=b; power_revenue_session=wrong"),
        );
        assert!(!authorized(&headers, &token, now));
        let good = format!("x=1; {COOKIE}={value}");
        headers.append(header::COOKIE, HeaderValue::from_str(&good).unwrap());
        assert!(authorized(&headers, &token, now));
        headers.clear();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(authorized(&headers, &token, now));
    }

    #[test]
    fn a_cookie_expires_and_its_end_cannot_be_moved() {
        let token = SecretString::from("s3cret");
        let now = 1_800_000_000;
        let expires = now + SESSION_SECS;
        let value = cookie_value(&token, expires);
        assert!(valid_cookie(&value, &token, now));
        assert!(valid_cookie(&value, &token, expires - 1));
        assert!(!valid_cookie(&value, &token, expires));
        // A later end with the old signature, or one further ahead than a session lasts.
        let (_, signature) = value.split_once('.').unwrap();
        assert!(!valid_cookie(
            &format!("{}.{signature}", expires + 3600),
            &token,
            now
        ));
        let far = cookie_value(&token, now + 2 * SESSION_SECS);
        assert!(!valid_cookie(&far, &token, now));
        assert!(!valid_cookie("not-a-cookie", &token, now));
        assert!(!valid_cookie("12.", &token, now));
    }
}
