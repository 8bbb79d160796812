//! The HTTP listener: the live totals API, the closed windows' history ([`history`], also as
//! CSV), Prometheus metrics, health probes and the dashboard page. Everything but `/healthz`
//! requires the API token when one is configured ([`auth`]: the `Authorization` header, or the
//! cookie the dashboard sets).

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

#[derive(Clone)]
pub struct HttpState {
    pub store: Store,
    pub live: Arc<Live>,
    pub config: Arc<Config>,
    /// The silent utilities, as the silence watcher last saw them.
    pub silence: Arc<Board>,
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
        .merge(protected)
        .with_state(state)
}

/// A JSON body as `axum::Json` writes it, but with every character that could act on a
/// terminal escaped ([`crate::display::json_escape_hidden`]): names are data, and `curl` prints
/// them. The value a client parses is the same.
pub(crate) struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_string(&self.0) {
            Ok(body) => (
                [(header::CONTENT_TYPE, "application/json")],
                crate::display::json_escape_hidden(&body).into_owned(),
            )
                .into_response(),
            Err(e) => internal(e).into_response(),
        }
    }
}

type ApiResult<T> = Result<Json<T>, (StatusCode, String)>;

fn internal(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn status(State(s): State<HttpState>) -> ApiResult<StatusView> {
    let now = Utc::now();
    let view = StatusView::build(&s.store, Some(&s.live), s.config.restate_horizon, now)
        .map_err(internal)?;
    Ok(Json(StatusView {
        source: s.config.mongo().ok().map(|m| m.describe()),
        silent: SilentView::list(&s.silence, now),
        ..view
    }))
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

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    api::export_gauges(&s.live, Utc::now());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::prometheus().render(),
    )
}
