//! Downloads for the `endpoint` and `http_url` modes (PROTOCOL.md §5.6): one request, the body
//! streamed into a [`SpoolWriter`] chunk by chunk. Connection errors, HTTP 429 and 5xx are
//! temporary; other non-2xx statuses, bodies over the cap and refused addresses are permanent.
//!
//! Redirects are followed here, not by the client, so that each hop passes the same check as
//! the first request ([`super::guard::check_hop`]), plus the host check of a URL named by the
//! message even when the first request went to the tenant's own endpoint, and credentials stay
//! with the first origin.

use futures_util::StreamExt;
use reqwest::{
    Client, StatusCode, Url,
    header::{AUTHORIZATION, LOCATION},
};
use serde_json::json;

use super::{
    Fail,
    endpoint::Target,
    resolve::refusal,
    spool::{SpoolError, SpoolWriter},
};

/// Redirects followed at most (as reqwest's default policy).
const MAX_REDIRECTS: usize = 10;

/// Fetches `target` into `writer`; `name` and `cap` word the over-the-cap error. `check` vets
/// the URL of every request before it is made: `check(url, false)` the first, `check(url, true)`
/// each redirect hop.
pub async fn download(
    client: &Client,
    target: &Target,
    check: &(dyn Fn(&Url, bool) -> Result<(), Fail> + Send + Sync),
    writer: &mut SpoolWriter,
    name: &str,
    cap: u64,
) -> Result<(), Fail> {
    let mut url = target.url.clone();
    let mut post = target.post.clone();
    for hop in 0..=MAX_REDIRECTS {
        check(&url, hop > 0)?;
        let resp = send(client, target, &url, post.as_deref()).await?;
        let status = resp.status();
        match next_hop(&resp, &url) {
            Some(next) if status.is_redirection() => {
                // As browsers and reqwest: 301, 302 and 303 continue with a GET.
                if matches!(status.as_u16(), 301..=303) {
                    post = None;
                }
                url = next;
            }
            _ => return read(resp, writer, name, cap).await,
        }
    }
    Err(Fail::permanent(format!(
        "Too many redirects (more than {MAX_REDIRECTS})"
    )))
}

/// One request. The `Authorization` header goes only to the origin (scheme, host, port) of the
/// first URL, so a redirect never carries credentials to another host.
async fn send(
    client: &Client,
    target: &Target,
    url: &Url,
    post: Option<&str>,
) -> Result<reqwest::Response, Fail> {
    let mut req = match post {
        Some(p) => client.post(url.clone()).json(&json!({"storage_path": p})),
        None => client.get(url.clone()),
    };
    if let Some(a) = &target.authorization
        && url.origin() == target.url.origin()
    {
        req = req.header(AUTHORIZATION, a);
    }
    req.send().await.map_err(|e| {
        if let Some(refused) = refusal(&e) {
            Fail::permanent(refused.to_string())
        } else if e.is_builder() {
            Fail::permanent(describe(&e))
        } else {
            Fail::temporary(describe(&e))
        }
    })
}

/// The URL a redirect response points to (`Location`, relative to `url`).
fn next_hop(resp: &reqwest::Response, url: &Url) -> Option<Url> {
    let location = resp.headers().get(LOCATION)?.to_str().ok()?;
    url.join(location).ok()
}

/// Streams a final response's body into `writer`.
async fn read(
    resp: reqwest::Response,
    writer: &mut SpoolWriter,
    name: &str,
    cap: u64,
) -> Result<(), Fail> {
    let status = resp.status();
    if !status.is_success() {
        let why = format!("HTTP {status}");
        return Err(
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                Fail::temporary(why)
            } else {
                Fail::permanent(why)
            },
        );
    }
    if resp.content_length().is_some_and(|n| n > cap) {
        return Err(Fail::over_cap(name, cap));
    }
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Fail::temporary(describe(&e)))?;
        writer
            .write(&chunk)
            .await
            .map_err(|e| spool_error(e, name, cap))?;
    }
    Ok(())
}

/// A spool failure as a load failure: over the cap is permanent, a local I/O error temporary.
pub fn spool_error(e: SpoolError, name: &str, cap: u64) -> Fail {
    match e {
        SpoolError::Cap => Fail::over_cap(name, cap),
        SpoolError::Io(e) => Fail::temporary(format!("spool write failed: {e}")),
    }
}

/// The error and its causes, without the URL (which may carry secrets in its query).
fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        "request timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else if e.is_body() || e.is_decode() {
        "body read failed".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests;
