//! Downloads for the `endpoint` and `http_url` modes (contract §5.6): one request, the body
//! streamed into a [`SpoolWriter`] chunk by chunk. Connection errors, HTTP 429 and 5xx are
//! temporary; other non-2xx statuses and bodies over the cap are permanent.

use futures_util::StreamExt;
use reqwest::{Client, StatusCode, header::AUTHORIZATION};
use serde_json::json;

use super::{
    Fail,
    endpoint::Target,
    spool::{SpoolError, SpoolWriter},
};

/// Fetches `target` into `writer`; `name` and `cap` word the over-the-cap error.
pub async fn download(
    client: &Client,
    target: &Target,
    writer: &mut SpoolWriter,
    name: &str,
    cap: u64,
) -> Result<(), Fail> {
    let mut req = match &target.post {
        Some(p) => client
            .post(target.url.clone())
            .json(&json!({"storage_path": p})),
        None => client.get(target.url.clone()),
    };
    if let Some(a) = &target.authorization {
        req = req.header(AUTHORIZATION, a);
    }
    let resp = req.send().await.map_err(|e| {
        let why = describe(&e);
        if e.is_builder() {
            Fail::permanent(why)
        } else {
            Fail::temporary(why)
        }
    })?;
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
