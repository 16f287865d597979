//! Cross-site requests without an admin token (issue 15): without `GMP_API_TOKEN` every request
//! without a token acts as admin, so a web page the operator visits could drive the proxy on
//! loopback. A JSON body already needs a preflight (415 otherwise, `input.rs`), but a bodyless
//! POST (`/commands/run-now`, `/commands/suspend?tenant_id=…`) or a GET needs none. Browsers
//! name the page's origin in `Origin` on every cross-origin request and on every non-GET one;
//! so a request carrying `Origin` is refused (403) unless it is same-origin, and that origin is
//! an address or `localhost` (a page's own name re-bound to 127.0.0.1 by its DNS is same-origin
//! to the browser, never an address). Programs (curl, client-sim, the operator) send no
//! `Origin` and are unaffected; with a token configured this check is off.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::AppState;
use crate::error::AppError;

/// Middleware: refuses cross-site requests while no admin token is configured.
pub async fn refuse_cross_site(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if state.api_token.is_none()
        && let Err(why) = check(req.headers())
    {
        return AppError::new(
            StatusCode::FORBIDDEN,
            format!("Cross-site request refused without GMP_API_TOKEN: {why}"),
        )
        .into_response();
    }
    next.run(req).await
}

/// Ok when the request carries no `Origin`, or a same-origin one on an address or `localhost`.
fn check(headers: &HeaderMap) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .map_err(|_| "unreadable Origin".to_string())?;
    let (scheme, authority) = origin
        .split_once("://")
        .ok_or_else(|| format!("Origin {origin:?} is not this server"))?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(format!("Origin {origin:?} is not this server")),
    };
    let not_this = || format!("Origin {origin:?} is not this server");
    let (o_host, o_port) = split(authority, default_port).ok_or_else(not_this)?;
    let (h_host, h_port) = split(host, default_port).ok_or_else(not_this)?;
    if !o_host.eq_ignore_ascii_case(h_host) || o_port != h_port {
        return Err(not_this());
    }
    let literal = o_host.eq_ignore_ascii_case("localhost")
        || o_host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok();
    if !literal {
        return Err(format!(
            "Origin {origin:?} names a host, not an address or localhost"
        ));
    }
    Ok(())
}

/// Host and port of an authority (`h`, `h:p`, `[v6]`, `[v6]:p`); None when unreadable.
fn split(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (_, after) = rest.split_once(']')?;
            authority.split_at(authority.len() - after.len())
        }
        None => authority
            .find(':')
            .map_or((authority, ""), |i| authority.split_at(i)),
    };
    let port = match port.strip_prefix(':') {
        Some(p) => p.parse().ok()?,
        None if port.is_empty() => default_port,
        None => return None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::check;
    use axum::http::{HeaderMap, HeaderValue, header};

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_static(o));
        }
        h
    }

    #[test]
    fn only_same_origin_addresses_pass() {
        let ok = |o, h| check(&headers(o, h)).is_ok();
        assert!(ok(None, "127.0.0.1:8000"));
        assert!(ok(Some("http://127.0.0.1:8000"), "127.0.0.1:8000"));
        assert!(ok(Some("http://localhost:8000"), "LOCALHOST:8000"));
        assert!(ok(Some("http://[::1]:8000"), "[::1]:8000"));
        assert!(ok(Some("http://127.0.0.1"), "127.0.0.1:80"));
        assert!(!ok(Some("https://evil.example"), "127.0.0.1:8000"));
        assert!(!ok(Some("null"), "127.0.0.1:8000"));
        assert!(!ok(Some("http://127.0.0.1:9000"), "127.0.0.1:8000"));
        assert!(!ok(Some("http://127.0.0.1"), "127.0.0.1:8000"));
        assert!(
            !ok(Some("http://rebound.example:8000"), "rebound.example:8000"),
            "DNS rebinding"
        );
    }
}
