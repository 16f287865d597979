//! `/health`, `/status`, `/metrics` (public or any token) and the JSON 404 for unknown routes.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde_json::{Value, json};

use super::{AppState, auth::Authed};
use crate::error::{ApiResult, AppError};

/// `GET /health`: liveness, no token. Without an admin token it also says, in `warning`, that
/// every request acts as admin, so that a probe or a person looking sees it.
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    if state.api_token.is_none() {
        return Json(json!({
            "status": "ok",
            "admin_token_required": false,
            "warning": "GMP_API_TOKEN is not set: every request without a token acts as admin",
        }));
    }
    Json(json!({"status": "ok"}))
}

/// `GET /status`: any valid token; whether the scheduler is active.
pub async fn status(State(state): State<AppState>, _: Authed) -> ApiResult {
    Ok(Json(json!({"ok": true, "active": state.scheduler_active})))
}

/// `GET /metrics`: Prometheus exposition (OpenMetrics text), no token.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Unknown routes: a JSON 404.
pub async fn not_found() -> AppError {
    AppError::new(StatusCode::NOT_FOUND, "Not Found")
}
