//! The HTTP server: `/metrics` (Prometheus text), `/healthz` (the process is up) and `/readyz`
//! (connected to the API server and the CRD is installed). Takes a bound listener and a shutdown
//! future.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// Shared state of the HTTP server.
#[derive(Clone)]
pub struct HealthState {
    /// The process registry.
    pub registry: Arc<Registry>,
    /// Set once the CRD check passed.
    pub ready: Arc<AtomicBool>,
}

/// The router.
pub fn app(state: HealthState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(s): State<HealthState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            String::new(),
        ),
    }
}

async fn readyz(State(s): State<HealthState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: HealthState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn readyz_follows_the_flag_and_metrics_render() {
        let ready = Arc::new(AtomicBool::new(false));
        let state = HealthState {
            registry: Arc::new(Registry::default()),
            ready: ready.clone(),
        };
        let get = |p: &str| {
            axum::http::Request::get(p)
                .body(axum::body::Body::empty())
                .expect("request")
        };
        let r = app(state.clone())
            .oneshot(get("/readyz"))
            .await
            .expect("answer");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        ready.store(true, Ordering::Relaxed);
        let r = app(state.clone())
            .oneshot(get("/readyz"))
            .await
            .expect("answer");
        assert_eq!(r.status(), StatusCode::OK);
        let r = app(state).oneshot(get("/metrics")).await.expect("answer");
        assert_eq!(r.status(), StatusCode::OK);
        let body = r.into_body().collect().await.expect("body").to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("# EOF"));
    }
}
