//! The HTTP listener: the live totals API, Prometheus metrics, health probes and the dashboard
//! page. Everything but `/healthz` requires `Authorization: Bearer <POWER_REVENUE_API_TOKEN>`
//! when a token is configured (the dashboard passes `?token=` on to its API calls).

mod api;

use crate::config::Config;
use crate::source::Live;
use crate::status::StatusView;
use crate::store::Store;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub use api::{ClosedWindowView, CurrentView, Readiness, MIN_OPLOG_HEADROOM_SECS};

#[derive(Clone)]
pub struct HttpState {
    pub store: Store,
    pub live: Arc<Live>,
    pub config: Arc<Config>,
}

const DASHBOARD: &str = include_str!("dashboard.html");

pub fn router(state: HttpState) -> Router {
    let protected = Router::new()
        .route("/", get(|| async { Html(DASHBOARD) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/windows/current", get(current))
        .route("/api/v1/windows", get(closed))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(protected)
        .with_state(state)
}

/// Bearer token in the header, or `?token=` (for the dashboard page itself), compared in
/// constant time. No token configured: open, as on the default loopback address.
async fn require_token(
    State(s): State<HttpState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &s.config.api_token else {
        return next.run(request).await;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or(q.get("token").map(String::as_str))
        .unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong API token\n",
        )
            .into_response()
    }
}

type ApiResult<T> = Result<Json<T>, (StatusCode, String)>;

fn internal(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn status(State(s): State<HttpState>) -> ApiResult<StatusView> {
    let view = StatusView::build(
        &s.store,
        Some(&s.live),
        s.config.restate_horizon,
        Utc::now(),
    )
    .map_err(internal)?;
    Ok(Json(StatusView {
        source: s.config.mongo().ok().map(|m| m.describe()),
        ..view
    }))
}

async fn current(State(s): State<HttpState>) -> Json<CurrentView> {
    Json(CurrentView::build(&s.live, &s.config, Utc::now()))
}

async fn closed(
    State(s): State<HttpState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Vec<ClosedWindowView>> {
    let last = match q.get("last").map(|v| v.parse::<usize>()) {
        None => 10,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => {
            return Err((
                StatusCode::BAD_REQUEST,
                "last must be a number from 1 to 1000\n".into(),
            ))
        }
    };
    let reports = s.store.reports().map_err(internal)?;
    Ok(Json(
        reports
            .iter()
            .rev()
            .take(last)
            .map(ClosedWindowView::from_record)
            .collect(),
    ))
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
