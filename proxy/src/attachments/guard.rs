//! Where attachment downloads may go (contract §5.3, C3): a URL named by a message (`http_url`,
//! or an `endpoint` storage path that is a URL) may reach only the tenant's own host, the host of
//! `GMP_ATTACHMENT_BASE_URL`, or a host the operator listed in `GMP_ATTACHMENT_ALLOWED_HOSTS`
//! (`*` = any host). No download, the tenant's own endpoint included, may reach a link-local
//! address (169.254.0.0/16, where cloud metadata services live, or fe80::/10), by literal or by
//! name resolution, unless its host is listed explicitly. Refusals are permanent failures.

use std::net::IpAddr;

use reqwest::Url;

use super::Fail;
use crate::config::Hosts;

/// True for addresses no attachment may be fetched from unless explicitly allowed.
pub fn link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_link_local())
        }
    }
}

/// The host of a URL in lower case, without IPv6 brackets.
fn host_of(url: &Url) -> Option<String> {
    url.host_str().map(|h| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase()
    })
}

fn host_of_str(url: Option<&str>) -> Option<String> {
    url.and_then(|u| Url::parse(u).ok())
        .as_ref()
        .and_then(host_of)
}

/// Checks a URL named by a message against the allowed hosts: the tenant's own
/// (`client_base_url`), the default endpoint's, and the operator's list.
pub fn check_named(
    url: &Url,
    tenant_base: Option<&str>,
    default_base: Option<&str>,
    allowed: &Hosts,
) -> Result<(), Fail> {
    let host = host_of(url).unwrap_or_default();
    let own = [tenant_base, default_base]
        .into_iter()
        .any(|b| host_of_str(b).as_deref() == Some(host.as_str()));
    if own || allowed.contains(&host) || allowed.contains("*") {
        Ok(())
    } else {
        Err(Fail::permanent(format!("Host not allowed: {host}")))
    }
}

/// Refuses a URL whose host is, or resolves to, a link-local address, unless it is listed
/// explicitly. A host that does not resolve is left to the download (a temporary failure).
pub async fn check_address(url: &Url, allowed: &Hosts) -> Result<(), Fail> {
    let Some(host) = host_of(url) else {
        return Ok(());
    };
    if allowed.contains(&host) {
        return Ok(());
    }
    let refused = || Fail::permanent(format!("Link-local address not allowed: {host}"));
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if link_local(ip) {
            Err(refused())
        } else {
            Ok(())
        };
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let resolved: Vec<_> = match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(addrs) => addrs.collect(),
        Err(_) => Vec::new(),
    };
    if resolved.iter().any(|a| link_local(a.ip())) {
        Err(refused())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> Url {
        Url::parse(u).unwrap()
    }

    fn hosts(list: &[&str]) -> Hosts {
        Hosts(list.iter().map(|h| h.to_string()).collect())
    }

    #[test]
    fn named_urls_reach_only_allowed_hosts() {
        let base = Some("http://127.0.0.1:8080");
        let none = hosts(&[]);
        assert!(check_named(&url("http://127.0.0.1:9/f"), base, None, &none).is_ok());
        let err = check_named(&url("http://localhost:9/f"), base, None, &none).unwrap_err();
        assert_eq!(
            (err.why.as_str(), err.temporary),
            ("Host not allowed: localhost", false)
        );
        assert!(check_named(&url("http://files.example/f"), None, None, &none).is_err());
        assert!(
            check_named(
                &url("http://FILES.example/f"),
                None,
                None,
                &hosts(&["files.example"])
            )
            .is_ok()
        );
        assert!(check_named(&url("http://cdn/f"), None, Some("http://cdn:81/get"), &none).is_ok());
        assert!(check_named(&url("http://any.example/f"), None, None, &hosts(&["*"])).is_ok());
        assert!(check_named(&url("http://[::1]:9/f"), None, None, &hosts(&["::1"])).is_ok());
    }

    #[test]
    fn link_local_ranges() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "::ffff:169.254.1.1",
        ] {
            assert!(link_local(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.1", "10.0.0.1", "::1", "170.254.0.1", "fec0::1"] {
            assert!(!link_local(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn metadata_addresses_are_refused_before_any_connection() {
        let none = hosts(&[]);
        for u in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]:8080/x",
        ] {
            let err = check_address(&url(u), &none).await.unwrap_err();
            assert!(!err.temporary);
            assert!(
                err.why.starts_with("Link-local address not allowed"),
                "{}",
                err.why
            );
        }
        let listed = hosts(&["169.254.169.254"]);
        assert!(
            check_address(&url("http://169.254.169.254/x"), &listed)
                .await
                .is_ok()
        );
        assert!(
            check_address(&url("http://localhost:1/x"), &none)
                .await
                .is_ok()
        );
    }
}
