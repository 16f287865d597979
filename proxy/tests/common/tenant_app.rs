//! A fake tenant application for sync tests: a real HTTP server on 127.0.0.1 whose `/sync`
//! answers are scripted by the test, and which records every call (time, auth header, reports).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use serde_json::Value;

/// One recorded `/sync` call.
#[derive(Debug, Clone)]
pub struct Call {
    pub at: Instant,
    pub auth: Option<String>,
    pub body: Value,
}

impl Call {
    pub fn reports(&self) -> Vec<Value> {
        self.body["delivery_report"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Decides the answer to a sync body: status and raw text.
pub type Script = Arc<dyn Fn(&Value) -> (StatusCode, String) + Send + Sync>;

#[derive(Clone)]
pub struct TenantApp {
    pub url: String,
    pub calls: Arc<Mutex<Vec<Call>>>,
    script: Arc<Mutex<Script>>,
    delay: Arc<Mutex<Duration>>,
    active: Arc<AtomicUsize>,
    /// Most calls in flight at once.
    pub max_active: Arc<AtomicUsize>,
}

impl TenantApp {
    pub async fn start() -> TenantApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ok: Script = Arc::new(|_| (StatusCode::OK, r#"{"ok":true}"#.to_string()));
        let app = TenantApp {
            url: format!("http://{}", listener.local_addr().unwrap()),
            calls: Arc::default(),
            script: Arc::new(Mutex::new(ok)),
            delay: Arc::default(),
            active: Arc::default(),
            max_active: Arc::default(),
        };
        let router = Router::new()
            .route("/sync", post(sync))
            .with_state(app.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        app
    }

    pub fn script(&self, f: impl Fn(&Value) -> (StatusCode, String) + Send + Sync + 'static) {
        *self.script.lock().unwrap() = Arc::new(f);
    }

    pub fn delay(&self, d: Duration) {
        *self.delay.lock().unwrap() = d;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Every report entry received, in order.
    pub fn reports(&self) -> Vec<Value> {
        self.calls().iter().flat_map(Call::reports).collect()
    }
}

async fn sync(
    State(app): State<TenantApp>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, String) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    app.calls.lock().unwrap().push(Call {
        at: Instant::now(),
        auth,
        body: body.clone(),
    });
    let now_active = app.active.fetch_add(1, Ordering::SeqCst) + 1;
    app.max_active.fetch_max(now_active, Ordering::SeqCst);
    let delay = *app.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let script = app.script.lock().unwrap().clone();
    let answer = script(&body);
    app.active.fetch_sub(1, Ordering::SeqCst);
    answer
}
