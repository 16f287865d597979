//! A fake tenant application serving attachments over real HTTP on 127.0.0.1: `POST /attachments`
//! with `{"storage_path": key}` (the `endpoint` mode) and `GET /files/{key}` (the `http_url`
//! mode). It records every call with its `Authorization` header. Keys with a behaviour:
//! `status-<code>` answers that status; `flaky-*` answers 503 once, then the content;
//! `slow-*` waits 5 s; `delayed-*` waits 300 ms before the content; `stream-<n>` streams `n` bytes
//! without a `Content-Length`. Keys set with [`Files::redirect`] answer 302 to their location.
//! Other keys answer the content stored with [`Files::put`], else 404.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use bytes::Bytes;
use serde_json::Value;

/// One request received.
#[derive(Debug, Clone)]
pub struct Call {
    /// The key asked for.
    pub key: String,
    /// `POST` or `GET`.
    pub method: &'static str,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

#[derive(Clone, Default)]
struct AppState {
    calls: Arc<Mutex<Vec<Call>>>,
    content: Arc<Mutex<HashMap<String, Bytes>>>,
    redirects: Arc<Mutex<HashMap<String, String>>>,
}

/// The running app.
#[derive(Clone)]
pub struct Files {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    state: AppState,
}

impl Files {
    pub async fn start() -> Files {
        let state = AppState::default();
        let app = Router::new()
            .route("/attachments", post(by_post))
            .route("/files/{*key}", get(by_get))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Files { base, state }
    }

    /// Serves `content` under `key`.
    pub fn put(&self, key: &str, content: impl Into<Bytes>) {
        self.state
            .content
            .lock()
            .unwrap()
            .insert(key.into(), content.into());
    }

    /// Answers `key` with a 302 to `location`.
    pub fn redirect(&self, key: &str, location: &str) {
        self.state
            .redirects
            .lock()
            .unwrap()
            .insert(key.into(), location.into());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Requests for `key`.
    pub fn calls_for(&self, key: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.key == key).collect()
    }
}

async fn by_post(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let key = body["storage_path"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    serve(s, headers, key, "POST").await
}

async fn by_get(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    serve(s, headers, key, "GET").await
}

async fn serve(s: AppState, headers: HeaderMap, key: String, method: &'static str) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let n_before = {
        let mut calls = s.calls.lock().unwrap();
        let n = calls.iter().filter(|c| c.key == key).count();
        calls.push(Call {
            key: key.clone(),
            method,
            authorization,
        });
        n
    };
    if let Some(to) = s.redirects.lock().unwrap().get(&key) {
        return (StatusCode::FOUND, [("location", to.clone())]).into_response();
    }
    if let Some(code) = key.strip_prefix("status-") {
        let code = code.parse().unwrap_or(500);
        return StatusCode::from_u16(code).unwrap().into_response();
    }
    if key.starts_with("flaky-") && n_before == 0 {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if key.starts_with("slow-") {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    if key.starts_with("delayed-") {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if let Some(n) = key.strip_prefix("stream-") {
        let n: usize = n.parse().unwrap_or(0);
        let chunks = (0..n.div_ceil(1024))
            .map(move |i| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 1024.min(n - i * 1024)])));
        return Body::from_stream(futures_util::stream::iter(chunks)).into_response();
    }
    match s.content.lock().unwrap().get(&key) {
        Some(b) => b.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
