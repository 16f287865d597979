//! The HTTP listener (issue 15, item 7): hyper's HTTP/1 connection with a timer, so that a client
//! cannot hold a connection open for free. The request head must arrive within
//! `GMP_HTTP_HEADER_TIMEOUT_SECONDS` (this also closes idle keep-alive connections), the whole
//! body within `GMP_HTTP_BODY_TIMEOUT_SECONDS` of the head (408 otherwise), and at most
//! `GMP_HTTP_MAX_CONNECTIONS` connections are open at once: beyond that a new connection is
//! answered 503 and closed, so slow clients cannot use up the process's file descriptors and the
//! health checks of a busy replica fail fast instead of hanging. On shutdown, idle connections
//! close at once, requests in progress get [`DRAIN`] to finish, and whatever is left is dropped,
//! so slow or stuck clients cannot hold up a rolling update.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes, HttpBody},
    http::{Request, Response, StatusCode, header},
};
use http_body::Frame;
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinSet,
    time::Sleep,
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::metrics::{HttpTimeoutLabel, Metrics};

/// Longest wait for requests in progress once shutdown starts.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Connections answered 503 at once beyond the cap; more are closed without an answer.
const REFUSALS_IN_FLIGHT: usize = 64;

/// The answer to a connection over the cap.
fn over_capacity() -> String {
    let body = r#"{"detail":"Too many connections; retry shortly"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The listener's limits (`GMP_HTTP_*`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to receive a request head (and idle time between keep-alive requests).
    pub header_timeout: Duration,
    /// Time to receive a request body, from the end of its head.
    pub body_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `stop` is cancelled, then drains (see the module doc).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout.max(Duration::from_millis(1)));
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, typically: wait instead of spinning.
                warn!(error = %e, "Accepting an HTTP connection failed.");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.http_refused.inc();
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                conns.spawn(async move {
                    refuse(stream).await;
                    drop(permit);
                });
            }
            continue;
        };
        let conn = http.serve_connection(
            TokioIo::new(stream),
            hyper::service::service_fn(handler(app.clone(), limits.body_timeout, metrics.clone())),
        );
        let (stop, metrics) = (stop.clone(), metrics.clone());
        conns.spawn(async move {
            metrics.http_connections.inc();
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                if e.is_timeout() {
                    let kind = "header".to_string();
                    metrics
                        .http_timeouts
                        .get_or_create(&HttpTimeoutLabel { kind })
                        .inc();
                }
                debug!(error = %e, "HTTP connection ended with an error.");
            }
            metrics.http_connections.dec();
            drop(slot);
        });
    }
    drop(listener);
    let drained =
        tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        debug!(
            left = conns.len(),
            "HTTP connections still open after the drain; closing them."
        );
        conns.shutdown().await;
    }
}

/// What the per-request service answers with.
type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// The per-request service: the app, with the body under its deadline; a request whose body
/// missed the deadline is answered 408 whatever the handler made of the truncated body.
fn handler(
    app: Router,
    body_timeout: Duration,
    metrics: Arc<Metrics>,
) -> impl Fn(Request<Incoming>) -> Answer + Clone {
    move |req: Request<Incoming>| {
        let (app, metrics) = (app.clone(), metrics.clone());
        Box::pin(async move {
            let expired = Arc::new(AtomicBool::new(false));
            let req = req.map(|b| Body::new(Deadline::new(b, body_timeout, expired.clone())));
            let resp = app.oneshot(req).await?;
            if !expired.load(Ordering::Relaxed) {
                return Ok(resp);
            }
            let kind = "body".to_string();
            metrics
                .http_timeouts
                .get_or_create(&HttpTimeoutLabel { kind })
                .inc();
            let detail = format!(
                "{{\"detail\":\"Request body not received within {} s\"}}",
                body_timeout.as_secs_f64()
            );
            let mut out = Response::new(Body::from(detail));
            *out.status_mut() = StatusCode::REQUEST_TIMEOUT;
            let h = out.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            h.insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            Ok(out)
        })
    }
}

/// Answers a connection over the cap with a 503 and closes it. The request is read (a little,
/// briefly) before closing, so that the client sees the answer rather than a reset.
async fn refuse(mut stream: TcpStream) {
    if stream.write_all(over_capacity().as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// The error of a body that missed its deadline.
#[derive(Debug, thiserror::Error)]
#[error("request body not received in time")]
pub struct BodyTimeout;

/// A request body that fails once its deadline passes (total time, not time between chunks: a
/// client trickling one byte at a time is as slow as one sending nothing).
struct Deadline {
    inner: Incoming,
    sleep: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

impl Deadline {
    fn new(inner: Incoming, after: Duration, expired: Arc<AtomicBool>) -> Self {
        Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(after)),
            expired,
        }
    }
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyTimeout.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
