//! The HTTP listener: the live totals API, the closed windows' history ([`history`], also as
//! CSV), Prometheus metrics, health probes and the dashboard page. Everything but `/healthz`
//! and the API's description (`/api/v1/openapi.json`, which holds no data) requires the API
//! token when one is configured ([`auth`]: the `Authorization` header, or the cookie the
//! dashboard sets).

mod api;
mod auth;
mod csv;
mod history;

use crate::config::Config;
use crate::silence::{Board, SilentView};
use crate::source::Live;
use crate::store::Store;
use crate::views::{CurrentView, StatusView};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use serde::Serialize;
use std::sync::Arc;

pub use api::{Readiness, MIN_OPLOG_HEADROOM_SECS};

/// The OpenAPI 3.1 description of every `/api/v1` route, served as is. Kept by hand next to
/// the views it describes; `tests/it/openapi.rs` validates it and checks live answers against
/// it, so a field added to a view without it fails there.
const OPENAPI: &str = include_str!("openapi.json");
/// Where [`OPENAPI`] is served.
const OPENAPI_PATH: &str = "/api/v1/openapi.json";

#[derive(Clone)]
pub struct HttpState {
    pub store: Store,
    pub live: Arc<Live>,
    pub config: Arc<Config>,
    /// The silent utilities, as the silence watcher last saw them.
    pub silence: Arc<Board>,
    /// Requests reading the store (the status, a page of windows) run one at a time: many
    /// clients polling them at once wait here, not for the CPU the tailer, the outbox and
    /// `/healthz` need (on 2 cores, eight pollers held `/healthz` p99 at 12 ms).
    pub reads: Arc<tokio::sync::Semaphore>,
}

impl HttpState {
    pub fn new(store: Store, live: Arc<Live>, config: Arc<Config>, silence: Arc<Board>) -> Self {
        HttpState {
            store,
            live,
            config,
            silence,
            reads: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// Waits for the turn of a request that reads the store.
    pub(crate) async fn read_turn(
        &self,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, (StatusCode, String)> {
        self.reads.clone().acquire_owned().await.map_err(internal)
    }
}

pub fn router(state: HttpState) -> Router {
    let protected = Router::new()
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/windows/current", get(current))
        .route("/api/v1/windows", get(history::closed))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/", get(auth::dashboard))
        .route(OPENAPI_PATH, get(openapi))
        .merge(protected)
        .with_state(state)
}

/// A JSON body as `axum::Json` writes it, but with every character that could act on a
/// terminal escaped ([`crate::display::json_escape_hidden`]): names are data, and `curl` prints
/// them. The value a client parses is the same.
pub(crate) struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match Rendered::json(&self.0) {
            Ok(body) => body.into_response(),
            Err(e) => internal(e).into_response(),
        }
    }
}

/// A JSON body already written: large ones (a page of windows, the status) are written in
/// the blocking task that read them, off the async workers.
pub(crate) struct Rendered(String);

impl Rendered {
    /// `v` as [`Json`] writes it.
    pub(crate) fn json<T: Serialize>(v: &T) -> Result<Rendered, serde_json::Error> {
        let body = serde_json::to_string(v)?;
        Ok(Rendered(
            crate::display::json_escape_hidden(&body).into_owned(),
        ))
    }
}

impl IntoResponse for Rendered {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

fn internal(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn status(State(s): State<HttpState>) -> Result<Rendered, (StatusCode, String)> {
    let now = Utc::now();
    // The store's reads and the body's writing off the async workers: a request never holds
    // up the tailer, the outbox or `/healthz`.
    let turn = s.read_turn().await?;
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let view = StatusView::build(&s.store, Some(&s.live), s.config.restate_horizon, now)
            .map_err(internal)?;
        Rendered::json(&StatusView {
            source: s.config.mongo().ok().map(|m| m.describe()),
            silent: SilentView::list(&s.silence, now),
            ..view
        })
        .map_err(internal)
    })
    .await
    .map_err(internal)?
}

async fn current(State(s): State<HttpState>) -> Json<CurrentView> {
    let now = Utc::now();
    Json(CurrentView {
        silent: SilentView::list(&s.silence, now),
        ..CurrentView::build(&s.live, &s.config, now)
    })
}

async fn readyz(State(s): State<HttpState>) -> (StatusCode, Json<Readiness>) {
    let ready = Readiness::check(&s.live, Utc::now());
    let code = if ready.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(ready))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    api::export_gauges(&s.live, Utc::now());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::prometheus().render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document parses, says which build it describes, and names each `/api/v1` route
    /// this router serves (the live answers are checked against it in `tests/it/openapi.rs`).
    #[test]
    fn the_openapi_document_describes_this_build_and_its_routes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        let mut paths: Vec<&str> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(String::as_str)
            .collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                OPENAPI_PATH,
                "/api/v1/status",
                "/api/v1/windows",
                "/api/v1/windows/current"
            ]
        );
    }

    /// The fields a component names, and those it requires.
    fn fields(doc: &serde_json::Value, component: &str) -> (Vec<String>, Vec<String>) {
        let schema = &doc["components"]["schemas"][component];
        assert_eq!(
            schema["additionalProperties"], false,
            "{component} is strict"
        );
        let mut named: Vec<String> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        let mut required: Vec<String> =
            serde_json::from_value(schema["required"].clone()).expect("required names");
        named.sort_unstable();
        required.sort_unstable();
        (named, required)
    }

    /// The silent utilities and the last summary, as serialized, have exactly the fields their
    /// components name and require (the live answers are checked in `tests/it/openapi.rs`).
    #[test]
    fn silent_utilities_and_the_last_summary_match_their_components() {
        use crate::store::DeliveryStatus;
        use crate::views::SummaryStatus;
        use crate::window::{Tally, Window};
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        let at = chrono::DateTime::parse_from_rfc3339("2025-05-29T12:00:00Z")
            .expect("a time")
            .with_timezone(&Utc);
        let silent = SilentView {
            utility: "IKEDC".into(),
            display: "IKEDC".into(),
            silent_since: at,
            silent_for_secs: 600,
            usual_sales: 5,
        };
        let summary = SummaryStatus {
            period: Window { start: at, end: at },
            delivery: DeliveryStatus::Sent { at },
            total: Some(Tally::default()),
            attempts: 1,
            last_error: None,
        };
        for (component, value) in [
            ("SilentUtility", serde_json::to_value(&silent)),
            ("SummaryStatus", serde_json::to_value(&summary)),
        ] {
            let value = value.expect("serializes");
            let mut keys: Vec<String> = value
                .as_object()
                .expect("an object")
                .keys()
                .cloned()
                .collect();
            keys.sort_unstable();
            let (named, required) = fields(&doc, component);
            assert_eq!(keys, named, "{component}: {value}");
            assert_eq!(keys, required, "{component}: {value}");
        }
        // Both views carry them, required.
        for (view, field) in [
            ("CurrentView", "silent"),
            ("StatusView", "silent"),
            ("StatusView", "last_summary"),
        ] {
            let (named, required) = fields(&doc, view);
            let field = field.to_owned();
            assert!(named.contains(&field), "{view} names no {field}");
            assert!(required.contains(&field), "{view} does not require {field}");
        }
    }
}
