//! A round-robin HTTP forwarder: a tenant with several client replicas needs one base URL for the
//! proxy, as a Kubernetes Service gives it. Each request goes to the next replica, bodies
//! streamed both ways. Any replica can serve any attachment (content is derived from the seed in
//! its `storage_path`), and delivery reports are counted per tenant over the replicas.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::TryStreamExt;
use tokio::net::TcpListener;

#[derive(Debug)]
struct Backends {
    urls: Vec<String>,
    next: AtomicUsize,
    http: reqwest::Client,
}

/// Serves the forwarder on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    urls: Vec<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let state = Arc::new(Backends {
        urls,
        next: AtomicUsize::new(0),
        http,
    });
    let app = axum::Router::new().fallback(forward).with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn forward(State(b): State<Arc<Backends>>, req: Request) -> Response {
    let i = b.next.fetch_add(1, Ordering::Relaxed) % b.urls.len().max(1);
    let Some(base) = b.urls.get(i) else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let (parts, body) = req.into_parts();
    let mut out = b
        .http
        .request(parts.method, format!("{base}{path}"))
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    for (k, v) in &parts.headers {
        if k != axum::http::header::HOST {
            out = out.header(k, v);
        }
    }
    match out.send().await {
        Ok(resp) => {
            let mut r = Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                r = r.header(k, v);
            }
            let stream = resp.bytes_stream().map_err(std::io::Error::other);
            r.body(Body::from_stream(stream))
                .unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY))
        }
        Err(_) => status(StatusCode::BAD_GATEWAY),
    }
}

fn status(code: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = code;
    r
}
