//! The simulated client's HTTP surface: `POST /sync`, `POST /attachments`, `GET /stats`,
//! `POST /reset-stats`, `POST /stop` (ends the load now: the operator's abort),
//! `GET /cache-info`, `GET /health`, `GET /metrics`. Bodies are parsed by
//! hand so that malformed input gets this client's own 4xx JSON and counts in `errors`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mailproxy_proto::message::AttachmentFetchV1;
use mailproxy_proto::sync::DeliveryReportV1;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::content::{self, ContentRef, Registry};
use super::generate::{self, IdGenerator};
use super::message::{self, OutMessage};
use super::profile::ServeConfig;
use super::stats::ClientStats;

/// Size served when a `storage_path` names none (the upstream default).
const DEFAULT_SIZE: u64 = 10_240;

/// Shared state of the handlers.
#[derive(Debug)]
pub struct AppState {
    cfg: Arc<ServeConfig>,
    stats: ClientStats,
    /// Every draw comes from this one generator, in request order.
    rng: Mutex<StdRng>,
    registry: Mutex<Registry>,
    ids: IdGenerator,
    /// When `POST /stop` ended the load (Unix microseconds; 0 = not stopped). It overrides
    /// `STOP_AT` from then on.
    stopped_at: AtomicU64,
    /// When this client started (Unix seconds): the load's stages count from here without a
    /// `START_AT`.
    started: f64,
}

impl AppState {
    /// State for `cfg`, seeded by `cfg.seed`.
    pub fn new(cfg: ServeConfig) -> Arc<Self> {
        Arc::new(AppState {
            stats: ClientStats::new(&cfg.tenant_id),
            rng: Mutex::new(StdRng::seed_from_u64(cfg.seed)),
            registry: Mutex::new(Registry::new(cfg.cache_max_bytes)),
            ids: IdGenerator::new(cfg.seed, &cfg.run_id),
            stopped_at: AtomicU64::new(0),
            started: crate::unix_micros() as f64 / 1e6,
            cfg: Arc::new(cfg),
        })
    }
}

/// Every route of the simulated client.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/sync", post(sync))
        .route("/attachments", post(attachments))
        .route("/stats", get(stats))
        .route("/reset-stats", post(reset_stats))
        .route("/stop", post(stop))
        .route("/cache-info", get(cache_info))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

fn bad(state: &AppState, status: StatusCode, error: String) -> Response {
    state.stats.on_error();
    tracing::debug!(%status, %error, "Refused a request.");
    (status, axum::Json(json!({"ok": false, "error": error}))).into_response()
}

#[derive(Debug, Deserialize)]
struct SyncBody {
    #[serde(default)]
    delivery_report: Option<Vec<DeliveryReportV1>>,
    #[serde(default)]
    reports: Option<Vec<DeliveryReportV1>>,
}

#[derive(Debug, Serialize)]
struct SyncAnswer {
    ok: bool,
    processed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_sync_after: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    messages: Vec<OutMessage>,
}

async fn sync(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    state.stats.on_sync();
    let parsed: SyncBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return bad(
                &state,
                StatusCode::BAD_REQUEST,
                format!("invalid sync body: {e}"),
            );
        }
    };
    let reports = parsed
        .delivery_report
        .or(parsed.reports)
        .unwrap_or_default();
    state.stats.on_reports(&reports);
    let mut answer = SyncAnswer {
        ok: true,
        processed: reports.len() as u64,
        next_sync_after: None,
        messages: vec![],
    };
    let now = crate::unix_micros() as f64 / 1e6;
    if let Some(start) = state.cfg.start_at.filter(|s| *s > now) {
        // Before the start barrier: ask to be called exactly at the start.
        answer.next_sync_after = Some(start);
        return axum::Json(answer).into_response();
    }
    if state.cfg.stop_at.is_some_and(|s| s <= now) || state.stopped_at.load(Ordering::Relaxed) > 0 {
        return axum::Json(answer).into_response();
    }
    match generate_messages(&state, now).await {
        Ok((messages, dnd)) => {
            answer.messages = messages;
            answer.next_sync_after = dnd;
            axum::Json(answer).into_response()
        }
        Err(e) => bad(&state, StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// Draws and builds one sync's messages; returns them with the DND instant, if any.
async fn generate_messages(
    state: &Arc<AppState>,
    now: f64,
) -> Result<(Vec<OutMessage>, Option<f64>), String> {
    let plan = {
        let mut rng = state.rng.lock().map_err(|_| "generator lock poisoned")?;
        let registry = state
            .registry
            .lock()
            .map_err(|_| "registry lock poisoned")?;
        let origin = state.cfg.start_at.unwrap_or(state.started);
        let percent = mailproxy_proto::stages::rate_percent_at(&state.cfg.stages, now - origin);
        generate::plan_sync(&mut *rng, &state.cfg, &registry, &state.ids, percent)
    };
    let cfg = state.cfg.clone();
    let created_us = crate::unix_micros();
    let (plan, built) = tokio::task::spawn_blocking(move || {
        let built = message::materialise(&plan, &cfg, created_us);
        (plan, built)
    })
    .await
    .map_err(|e| format!("message generation failed: {e}"))?;
    if let Ok(mut registry) = state.registry.lock() {
        for (md5, content) in &built.fresh {
            registry.insert(md5, *content);
        }
    }
    let dnd = plan.dnd_seconds.map(|s| now + s as f64);
    let count = built.messages.len() as u64;
    state
        .stats
        .on_generated(count, plan.cache_hits, plan.cache_misses, dnd.is_some());
    Ok((built.messages, dnd))
}

async fn attachments(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let fetch: AttachmentFetchV1 = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return bad(
                &state,
                StatusCode::BAD_REQUEST,
                format!("invalid JSON body: {e}"),
            );
        }
    };
    let path = match content::parse_storage_path(&fetch.storage_path) {
        Ok(p) => p,
        Err(why) => {
            return bad(
                &state,
                StatusCode::BAD_REQUEST,
                format!("invalid storage_path: {why}"),
            );
        }
    };
    let known = path
        .hash
        .as_deref()
        .and_then(|h| state.registry.lock().ok()?.get(h));
    let (hash, content, hit) = match (path.hash, known, path.seed) {
        (Some(h), Some(c), _) => (h, c, true),
        (Some(h), None, Some(seed)) => (
            h,
            ContentRef {
                seed,
                size: path.size.unwrap_or(DEFAULT_SIZE),
            },
            false,
        ),
        _ => {
            let msg = format!("Attachment not found: {}", fetch.storage_path);
            return bad(&state, StatusCode::NOT_FOUND, msg);
        }
    };
    state.stats.on_served(content.size, hit);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, content.size)
        .header("X-Content-MD5", hash)
        .body(Body::from_stream(content::stream(
            content.seed,
            content.size,
        )))
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

async fn stats(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(state.stats.snapshot(&state.cfg)).into_response()
}

async fn reset_stats(State(state): State<Arc<AppState>>) -> Response {
    state.stats.reset();
    axum::Json(json!({"ok": true, "message": "Stats reset"})).into_response()
}

/// Ends the load now (the operator's abort): later syncs get no new messages, reports are
/// still taken. Idempotent: the first call's instant stays.
async fn stop(State(state): State<Arc<AppState>>) -> Response {
    let now = crate::unix_micros();
    let first = state
        .stopped_at
        .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok();
    let at = state.stopped_at.load(Ordering::Relaxed) as f64 / 1e6;
    if first {
        tracing::info!(stopped_at = at, "Load stopped on request.");
    }
    axum::Json(json!({"ok": true, "stopped_at": at})).into_response()
}

async fn cache_info(State(state): State<Arc<AppState>>) -> Response {
    let (items, bytes, max) = match state.registry.lock() {
        Ok(r) => (r.len(), r.bytes(), r.max_bytes()),
        Err(_) => (0, 0, 0),
    };
    let mb = |b: u64| super::stats::round(b as f64 / 1_048_576.0, 2);
    axum::Json(json!({
        "cached_items": items,
        "cached_bytes": bytes,
        "cached_mb": mb(bytes),
        "max_cache_mb": mb(max),
    }))
    .into_response()
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let body =
        json!({"ok": true, "client_id": state.cfg.client_id, "tenant_id": state.cfg.tenant_id});
    axum::Json(body).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        state.stats.encode_metrics(),
    )
        .into_response()
}
