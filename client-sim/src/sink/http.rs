//! The sink's HTTP surface: `GET /stats` (`SinkStatsV1`), `GET /metrics`, `POST /reset`,
//! `GET /health`. `/reset` wipes a run's figures, so it answers only when the sink was started
//! with `--allow-reset`; otherwise it is a 403 saying so.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::SinkState;

/// Every route of the sink.
pub fn router(state: Arc<SinkState>) -> Router {
    Router::new()
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .route("/reset", post(reset))
        .route("/health", get(health))
        .with_state(state)
}

async fn stats(State(state): State<Arc<SinkState>>) -> Response {
    axum::Json(state.stats.snapshot()).into_response()
}

async fn metrics(State(state): State<Arc<SinkState>>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        state.stats.encode_metrics(),
    )
        .into_response()
}

async fn reset(State(state): State<Arc<SinkState>>) -> Response {
    if !state.config.allow_reset {
        let detail =
            "POST /reset is disabled: start the sink with --allow-reset (SINK_ALLOW_RESET=true)";
        return (
            axum::http::StatusCode::FORBIDDEN,
            axum::Json(json!({ "detail": detail })),
        )
            .into_response();
    }
    state.stats.reset();
    axum::Json(json!({"ok": true})).into_response()
}

async fn health() -> Response {
    axum::Json(json!({"ok": true})).into_response()
}
