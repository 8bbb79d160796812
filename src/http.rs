//! The HTTP listener: `/healthz` (process up) and `/api/v1/status` (the status view as JSON,
//! also what `power-revenue status` reads while the service holds the state directory).

use crate::source::Live;
use crate::status::StatusView;
use crate::store::Store;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use std::sync::Arc;

#[derive(Clone)]
pub struct HttpState {
    pub store: Store,
    pub live: Arc<Live>,
    /// [`crate::config::MongoConfig::describe`]: no secret.
    pub source: String,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/v1/status", get(status))
        .with_state(state)
}

async fn status(State(s): State<HttpState>) -> Result<Json<StatusView>, (StatusCode, String)> {
    StatusView::build(&s.store, Some(&s.live), Utc::now())
        .map(|view| StatusView {
            source: Some(s.source.clone()),
            ..view
        })
        .map(Json)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}
