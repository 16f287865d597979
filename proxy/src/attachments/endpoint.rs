//! Where the `endpoint` and `http_url` modes fetch from (PROTOCOL.md §5.3), as pure functions:
//! the URL, the method and body, and which credentials go with the request.
//!
//! - `endpoint`: `POST {client_base_url}{client_attachment_path}` with `{"storage_path": ...}`;
//!   without `client_base_url`, `GMP_ATTACHMENT_BASE_URL` is the whole endpoint URL (as upstream
//!   uses it); `[<url>]<params>` posts `<params>` to `<url>`; empty `<params>` or a full
//!   `http(s)://` storage path means `GET` of the URL.
//! - `http_url`: `GET <storage_path>`.
//!
//! Credentials: the attachment's `auth` always; else the tenant's `client_auth` for the tenant's
//! own endpoint (or the configured default), and for any other URL only when its scheme, host and
//! port equal those of `client_base_url`, so tenant secrets never go to third-party hosts.

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::Url;
use serde_json::Value;

use super::Fail;
use crate::store::tenants::Tenant;

/// One HTTP request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// URL.
    pub url: Url,
    /// `Some(params)`: `POST {"storage_path": params}`; None: `GET`.
    pub post: Option<String>,
    /// `Authorization` header value, if any (a secret: never logged).
    pub authorization: Option<String>,
}

/// The request of an `endpoint` attachment.
pub fn endpoint(
    path: &str,
    auth: Option<&Value>,
    tenant: Option<&Tenant>,
    default_url: Option<&str>,
) -> Result<Target, Fail> {
    if let Some(rest) = path.strip_prefix('[')
        && let Some((url, params)) = rest.split_once(']')
    {
        let post = (!params.is_empty()).then(|| params.to_string());
        return foreign(url, post, auth, tenant);
    }
    if path.starts_with("http://") || path.starts_with("https://") {
        return foreign(path, None, auth, tenant);
    }
    let base = tenant.and_then(|t| t.client_base_url.as_deref().filter(|u| !u.is_empty()));
    let url = match (base, tenant) {
        (Some(base), Some(t)) => {
            let p = t.attachment_path();
            format!(
                "{}/{}",
                base.trim_end_matches('/'),
                p.trim_start_matches('/')
            )
        }
        _ => default_url
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                Fail::permanent("No default endpoint configured and path doesn't specify one")
            })?
            .to_string(),
    };
    Ok(Target {
        url: parse(&url)?,
        post: Some(path.to_string()),
        authorization: header(auth.or(tenant.and_then(|t| t.client_auth.as_ref()))),
    })
}

/// True when an `endpoint` storage path names its own URL (`[<url>]<params>` or a full
/// `http(s)://` URL) instead of the tenant's endpoint: such URLs pass the allowed-host check.
pub fn names_url(path: &str) -> bool {
    path.strip_prefix('[').is_some_and(|r| r.contains(']'))
        || path.starts_with("http://")
        || path.starts_with("https://")
}

/// The request of an `http_url` attachment.
pub fn http_url(path: &str, auth: Option<&Value>, tenant: Option<&Tenant>) -> Result<Target, Fail> {
    foreign(path, None, auth, tenant)
}

/// A request to a URL named by the attachment: tenant credentials only on the tenant's origin.
fn foreign(
    url: &str,
    post: Option<String>,
    auth: Option<&Value>,
    tenant: Option<&Tenant>,
) -> Result<Target, Fail> {
    let url = parse(url)?;
    let tenant_auth = tenant
        .filter(|t| same_origin(&url, t.client_base_url.as_deref()))
        .and_then(|t| t.client_auth.as_ref());
    Ok(Target {
        url,
        post,
        authorization: header(auth.or(tenant_auth)),
    })
}

fn parse(url: &str) -> Result<Url, Fail> {
    let u = Url::parse(url).map_err(|e| Fail::permanent(format!("Invalid URL {url:?}: {e}")))?;
    if matches!(u.scheme(), "http" | "https") {
        Ok(u)
    } else {
        Err(Fail::permanent(format!(
            "Unsupported URL scheme {:?}",
            u.scheme()
        )))
    }
}

/// True when `url` has the scheme, host and port of `base`.
pub fn same_origin(url: &Url, base: Option<&str>) -> bool {
    let Some(base) = base.and_then(|b| Url::parse(b).ok()) else {
        return false;
    };
    url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default()
}

/// The `Authorization` value of an auth object `{method, token, user, password}`: `bearer` →
/// `Bearer <token>`, `basic` → HTTP Basic, `none` or absent → nothing. Without `method`, a
/// `token` means bearer and a `user` means basic.
pub fn header(auth: Option<&Value>) -> Option<String> {
    let auth = auth?;
    let s = |k: &str| auth.get(k).and_then(Value::as_str);
    let method = s("method").unwrap_or(if s("token").is_some() {
        "bearer"
    } else if s("user").is_some() {
        "basic"
    } else {
        "none"
    });
    match method.to_ascii_lowercase().as_str() {
        "bearer" => Some(format!("Bearer {}", s("token").unwrap_or_default())),
        "basic" => {
            let pair = format!(
                "{}:{}",
                s("user").unwrap_or_default(),
                s("password").unwrap_or_default()
            );
            Some(format!("Basic {}", STANDARD.encode(pair)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tenant(base: Option<&str>) -> Tenant {
        Tenant {
            id: "t".into(),
            client_base_url: base.map(str::to_string),
            client_auth: Some(json!({"method": "bearer", "token": "tok"})),
            ..Tenant::default()
        }
    }

    #[test]
    fn endpoint_posts_to_the_tenant_with_its_auth() {
        let t = tenant(Some("http://app:8080/"));
        let target = endpoint("doc_id=1", None, Some(&t), None).unwrap();
        assert_eq!(
            target.url.as_str(),
            "http://app:8080/mail-proxy/attachments"
        );
        assert_eq!(target.post.as_deref(), Some("doc_id=1"));
        assert_eq!(target.authorization.as_deref(), Some("Bearer tok"));
        let own = json!({"method": "basic", "user": "u", "password": "p"});
        let target = endpoint("x", Some(&own), Some(&t), None).unwrap();
        assert_eq!(target.authorization.as_deref(), Some("Basic dTpw"));
    }

    #[test]
    fn endpoint_falls_back_to_the_default_url_or_fails() {
        let t = tenant(None);
        let target = endpoint("x", None, Some(&t), Some("http://files/get")).unwrap();
        assert_eq!(target.url.as_str(), "http://files/get");
        let err = endpoint("x", None, Some(&t), None).unwrap_err();
        assert_eq!(
            err.why,
            "No default endpoint configured and path doesn't specify one"
        );
        assert!(!err.temporary);
    }

    #[test]
    fn bracket_form_and_full_urls_keep_tenant_secrets_on_its_origin() {
        let t = tenant(Some("http://app:8080"));
        let own = endpoint("[http://app:8080/x]id=7", None, Some(&t), None).unwrap();
        assert_eq!(
            (own.post.as_deref(), own.authorization.as_deref()),
            (Some("id=7"), Some("Bearer tok"))
        );
        let other = endpoint("[http://evil:8080/x]", None, Some(&t), None).unwrap();
        assert_eq!((other.post, other.authorization), (None, None));
        let get = http_url("http://app:8080/f.pdf", None, Some(&t)).unwrap();
        assert_eq!(get.authorization.as_deref(), Some("Bearer tok"));
        let port = http_url("http://app:9090/f.pdf", None, Some(&t)).unwrap();
        assert_eq!(port.authorization, None);
        let https = http_url("https://app:8080/f.pdf", None, Some(&t)).unwrap();
        assert_eq!(https.authorization, None);
        assert!(http_url("ftp://x/y", None, Some(&t)).is_err());
    }

    #[test]
    fn auth_methods() {
        assert_eq!(header(Some(&json!({"method": "none", "token": "x"}))), None);
        assert_eq!(
            header(Some(&json!({"token": "x"}))).as_deref(),
            Some("Bearer x")
        );
        assert_eq!(header(None), None);
    }
}
