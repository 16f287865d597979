//! One sync call (PROTOCOL.md §4.1–§4.4): POST the pending delivery reports to the tenant's sync
//! endpoint with its auth, read the answer within the size limit, and turn it into a
//! [`Response`] — or a failure kind for the metrics and the backoff.

use std::time::Duration;

use futures_util::StreamExt;
use mailproxy_proto::sync::SyncRequestV1;
use serde_json::Value;

use crate::attachments::{guard, resolve};
use crate::config::Hosts;
use crate::store::tenants::Tenant;

/// Why a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFailure {
    /// Connection error or non-2xx status.
    Http,
    /// No answer in time.
    Timeout,
    /// 2xx, but not a JSON object or `ok` not true.
    Invalid,
    /// The endpoint is an internal address (by literal or by name) not explicitly allowed.
    Refused,
}

/// A failed call: its kind (the metric's label) and what happened, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// The kind of failure.
    pub kind: CallFailure,
    /// What happened, in words (no credentials: never the request's headers).
    pub cause: String,
}

impl CallError {
    fn new(kind: CallFailure, cause: impl Into<String>) -> Self {
        CallError {
            kind,
            cause: cause.into(),
        }
    }
}

impl CallFailure {
    /// Label of `gmp_sync_calls_total`.
    pub fn label(self) -> &'static str {
        match self {
            CallFailure::Http => "http_error",
            CallFailure::Timeout => "timeout",
            CallFailure::Invalid => "invalid",
            CallFailure::Refused => "refused",
        }
    }
}

/// A parsed answer of a tenant application.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    /// `ok` is true: the reports sent are acknowledged (except `error` ids).
    pub ok: bool,
    /// More work waiting at the client.
    pub queued: u64,
    /// Do not disturb until this Unix second (rounded up), when in the future.
    pub next_sync_after: Option<f64>,
    /// Message ids whose reports the client failed to process.
    pub error: Vec<String>,
    /// Message ids the client does not know.
    pub not_found: Vec<String>,
    /// Inline messages to enqueue.
    pub messages: Vec<Value>,
}

/// Parses a response body: None when it is not a JSON object, or holds more values than a
/// request body may (`http::input::MAX_JSON_VALUES`, a bounded parse).
pub fn parse(body: &[u8]) -> Option<Response> {
    use crate::http::input::{MAX_JSON_VALUES, json_values_over};
    if json_values_over(body, MAX_JSON_VALUES) {
        return None;
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    let ids = |k: &str| -> Vec<String> {
        obj.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .or_else(|| x.as_i64().map(|n| n.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(Response {
        ok: obj.get("ok") == Some(&Value::Bool(true)),
        queued: obj.get("queued").and_then(Value::as_u64).unwrap_or(0),
        next_sync_after: obj.get("next_sync_after").and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        }),
        error: ids("error"),
        not_found: ids("not_found"),
        messages: obj
            .get("messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    })
}

/// The sync URL of a tenant: base without trailing `/` plus the sync path.
pub fn url(tenant: &Tenant) -> Option<String> {
    let base = tenant
        .client_base_url
        .as_deref()
        .filter(|b| !b.is_empty())?;
    Some(format!(
        "{}{}",
        base.trim_end_matches('/'),
        tenant.sync_path()
    ))
}

/// Adds the tenant's `client_auth` to a request.
pub fn with_auth(req: reqwest::RequestBuilder, auth: Option<&Value>) -> reqwest::RequestBuilder {
    let Some(a) = auth else { return req };
    let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or_default();
    match s("method") {
        "bearer" if !s("token").is_empty() => req.bearer_auth(s("token")),
        "basic" => req.basic_auth(s("user"), Some(s("password"))),
        _ => req,
    }
}

/// Makes the call; Ok carries the raw 2xx body.
///
/// `client` is the vetted client of [`crate::attachments::resolve::client`]: a tenant may set its
/// own `client_base_url`, so the call refuses internal addresses (loopback, private, link-local
/// ...) like an attachment download does, by literal here and by name in the client's resolver,
/// unless the host or its range is in `allowed` (`GMP_ATTACHMENT_ALLOWED_HOSTS`). It follows no redirect (a 3xx is a
/// failed call) and uses no `HTTP_PROXY`.
pub async fn post(
    client: &reqwest::Client,
    tenant: &Tenant,
    body: &SyncRequestV1,
    timeout: Duration,
    max_bytes: usize,
    allowed: &Hosts,
) -> Result<Vec<u8>, CallError> {
    let url = url(tenant)
        .and_then(|u| reqwest::Url::parse(&u).ok())
        .ok_or_else(|| CallError::new(CallFailure::Http, "no valid sync URL"))?;
    if let Err(refused) = guard::check_literal(&url, allowed) {
        return Err(CallError::new(
            CallFailure::Refused,
            refused.why.to_string(),
        ));
    }
    let req = with_auth(
        client.post(url).json(body).timeout(timeout),
        tenant.client_auth.as_ref(),
    );
    let resp = req.send().await.map_err(|e| {
        if let Some(refused) = resolve::refusal(&e) {
            CallError::new(CallFailure::Refused, refused.to_string())
        } else if e.is_timeout() {
            CallError::new(
                CallFailure::Timeout,
                format!("no answer within {timeout:?}"),
            )
        } else {
            CallError::new(CallFailure::Http, error_chain(&e.without_url()))
        }
    })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(CallError::new(
            CallFailure::Http,
            format!("answered HTTP {status}"),
        ));
    }
    let too_big = || {
        CallError::new(
            CallFailure::Invalid,
            format!("answer over {max_bytes} bytes"),
        )
    };
    if resp.content_length().is_some_and(|n| n > max_bytes as u64) {
        return Err(too_big());
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            if e.is_timeout() {
                CallError::new(CallFailure::Timeout, "the answer did not arrive in time")
            } else {
                CallError::new(CallFailure::Http, error_chain(&e.without_url()))
            }
        })?;
        if out.len() + chunk.len() > max_bytes {
            return Err(too_big());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// An error and its sources on one line (reqwest's own message is only "error sending request");
/// callers strip the URL first, as a tenant's URL may carry a password.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn responses_parse_leniently() {
        let r = parse(br#"{"ok":true,"queued":3,"next_sync_after":"1700000000.5","error":["a",7],"processed":2,"messages":[{"id":"x"}]}"#).unwrap();
        assert!(r.ok);
        assert_eq!(
            (r.queued, r.error.clone(), r.messages.len()),
            (3, vec!["a".to_string(), "7".to_string()], 1)
        );
        assert_eq!(r.next_sync_after, Some(1_700_000_000.5));
        assert!(!parse(br#"{"ok":"yes"}"#).unwrap().ok);
        assert!(parse(b"[1]").is_none());
        assert!(parse(b"<html>").is_none());
    }

    /// A tenant application on loopback: `/sync` answers a redirect to `/elsewhere`, which
    /// counts its calls; `/ok` answers `{"ok": true}`.
    async fn app() -> (u16, Arc<AtomicUsize>) {
        use axum::{Json, Router, http::StatusCode, routing::post};
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let router = Router::new()
            .route(
                "/sync",
                post(|| async { (StatusCode::TEMPORARY_REDIRECT, [("location", "/elsewhere")]) }),
            )
            .route(
                "/elsewhere",
                post(move || async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    Json(serde_json::json!({"ok": true}))
                }),
            )
            .route(
                "/ok",
                post(|| async { Json(serde_json::json!({"ok": true})) }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, router).await });
        (port, hits)
    }

    /// Resolves `app.test` to a link-local address and to loopback, `metadata.test` to a
    /// link-local address only.
    fn lookup() -> resolve::Lookup {
        Arc::new(|host: String| {
            Box::pin(async move {
                let ll: IpAddr = "169.254.169.254".parse().unwrap();
                Ok(match host.as_str() {
                    "app.test" => vec![ll, IpAddr::from([127, 0, 0, 1])],
                    "metadata.test" => vec![ll],
                    _ => vec![],
                })
            })
        })
    }

    /// A call with loopback allowed (as the test application runs there).
    async fn call(base: String, path: &str) -> Result<Vec<u8>, CallFailure> {
        call_allowing(base, path, Hosts(vec!["127.0.0.0/8".into()]))
            .await
            .map_err(|e| e.kind)
    }

    async fn call_allowing(base: String, path: &str, allowed: Hosts) -> Result<Vec<u8>, CallError> {
        let client = resolve::client(&allowed, lookup());
        let tenant = Tenant {
            id: "t".into(),
            client_base_url: Some(base),
            client_sync_path: Some(path.into()),
            ..Tenant::default()
        };
        let body = SyncRequestV1 {
            delivery_report: vec![],
            tenant_id: None,
        };
        post(
            &client,
            &tenant,
            &body,
            Duration::from_secs(5),
            1 << 20,
            &allowed,
        )
        .await
    }

    #[tokio::test]
    async fn tenant_endpoints_are_vetted_like_attachment_downloads() {
        let (port, hits) = app().await;
        // A name resolves through the vetted resolver: the link-local answer is dropped and
        // loopback is used (the system resolver knows no `app.test`).
        assert!(call(format!("http://app.test:{port}"), "/ok").await.is_ok());
        // A name with only link-local answers, and a link-local literal: refused, no connection.
        let refused = Err(CallFailure::Refused);
        assert_eq!(
            call(format!("http://metadata.test:{port}"), "/ok").await,
            refused
        );
        assert_eq!(call("http://169.254.169.254".into(), "/ok").await, refused);
        assert_eq!(call("http://[fe80::1]:9".into(), "/ok").await, refused);
        // Loopback unlisted: refused by literal and by name.
        let none = Hosts::default();
        let loopback = format!("http://127.0.0.1:{port}");
        let kind = |r: Result<Vec<u8>, CallError>| r.map_err(|e| e.kind);
        assert_eq!(
            kind(call_allowing(loopback, "/ok", none.clone()).await),
            refused
        );
        let named = format!("http://app.test:{port}");
        assert_eq!(kind(call_allowing(named, "/ok", none).await), refused);
        // A redirect is not followed: the call fails and the target is never called.
        let redirected = call(format!("http://127.0.0.1:{port}"), "/sync").await;
        assert_eq!(redirected, Err(CallFailure::Http));
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_failure_says_what_happened_without_the_url_or_its_password() {
        let (port, _) = app().await;
        let allowed = Hosts(vec!["127.0.0.0/8".into()]);
        let err = call_allowing(format!("http://127.0.0.1:{port}"), "/sync", allowed.clone())
            .await
            .unwrap_err();
        assert_eq!(err.kind, CallFailure::Http);
        assert!(err.cause.contains("HTTP 307"), "{}", err.cause);
        // Nothing listens on a port just released: the cause is the connection's.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let base = format!("http://user:s3cret@127.0.0.1:{closed_port}");
        let err = call_allowing(base, "/sync", allowed).await.unwrap_err();
        assert_eq!(err.kind, CallFailure::Http);
        assert!(
            err.cause.to_lowercase().contains("connect"),
            "{}",
            err.cause
        );
        assert!(!err.cause.contains("s3cret"), "{}", err.cause);
    }

    #[test]
    fn urls_join_base_and_path() {
        let t = Tenant {
            client_base_url: Some("http://h:1/".into()),
            client_sync_path: Some("/sync".into()),
            ..Tenant::default()
        };
        assert_eq!(url(&t).as_deref(), Some("http://h:1/sync"));
        let d = Tenant {
            client_base_url: Some("http://h".into()),
            ..Tenant::default()
        };
        assert_eq!(url(&d).as_deref(), Some("http://h/mail-proxy/sync"));
    }
}
