//! Where attachment downloads may go (contract §5.3, C3): a URL named by a message (`http_url`,
//! or an `endpoint` storage path that is a URL) may reach only the tenant's own host, the host of
//! `GMP_ATTACHMENT_BASE_URL`, or a host the operator listed in `GMP_ATTACHMENT_ALLOWED_HOSTS`
//! (`*` = any host). No download, the tenant's own endpoint included, may reach a link-local
//! address (169.254.0.0/16, where cloud metadata services live, or fe80::/10), by literal (checked
//! here) or by name resolution (checked by [`super::resolve`] as the client resolves), unless its
//! host is listed explicitly. Every redirect hop is checked like the first request. Refusals are
//! permanent failures.

use std::net::{IpAddr, Ipv4Addr};

use reqwest::Url;

use super::Fail;
use crate::config::Hosts;

/// True for addresses no attachment may be fetched from unless explicitly allowed: IPv4
/// 169.254.0.0/16, IPv6 fe80::/10, and IPv6 forms that carry a link-local IPv4 address (mapped
/// `::ffff:a.b.c.d`, compatible `::a.b.c.d`, and NAT64 `64:ff9b::a.b.c.d`, which a NAT64 gateway
/// forwards to that IPv4 address).
pub fn link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // Mapped and compatible forms, then the NAT64 prefix with the IPv4 address last.
            let v4 = v6.to_ipv4().or_else(|| {
                (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0])
                    .then(|| Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7])))
            });
            (s[0] & 0xffc0) == 0xfe80 || v4.is_some_and(|v4| v4.is_link_local())
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

/// Refuses a URL whose host is a link-local address literal, unless it is listed explicitly.
/// Host names are vetted when they are resolved, by the attachment client's own resolver
/// ([`super::resolve`]), so that the addresses checked are the ones connected to.
pub fn check_literal(url: &Url, allowed: &Hosts) -> Result<(), Fail> {
    let Some(host) = host_of(url) else {
        return Ok(());
    };
    match host.parse::<IpAddr>() {
        Ok(ip) if link_local(ip) && !allowed.contains(&host) => Err(Fail::permanent(format!(
            "Link-local address not allowed: {host}"
        ))),
        _ => Ok(()),
    }
}

/// Checks one request of a download, the first or a redirect hop, by the same policy: a URL
/// named by the message (`named`) must reach an allowed host, and no URL a link-local literal.
pub fn check_hop(
    url: &Url,
    named: bool,
    tenant_base: Option<&str>,
    default_base: Option<&str>,
    allowed: &Hosts,
) -> Result<(), Fail> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Fail::permanent(format!(
            "Unsupported URL scheme: {}",
            url.scheme()
        )));
    }
    if named {
        check_named(url, tenant_base, default_base, allowed)?;
    }
    check_literal(url, allowed)
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
            "::169.254.169.254",
            "64:ff9b::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(link_local(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "::1",
            "170.254.0.1",
            "fec0::1",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::169.254.169.254",
            "2001:db8::a9fe:a9fe",
        ] {
            assert!(!link_local(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn metadata_addresses_are_refused_before_any_connection() {
        let none = hosts(&[]);
        for u in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]:8080/x",
            "http://2852039166/x",
            "http://[::ffff:169.254.1.1]/x",
        ] {
            let err = check_literal(&url(u), &none).unwrap_err();
            assert!(!err.temporary);
            assert!(
                err.why.starts_with("Link-local address not allowed"),
                "{}",
                err.why
            );
        }
        let listed = hosts(&["169.254.169.254"]);
        assert!(check_literal(&url("http://169.254.169.254/x"), &listed).is_ok());
        assert!(check_literal(&url("http://localhost:1/x"), &none).is_ok());
        assert!(check_literal(&url("http://127.0.0.1:1/x"), &none).is_ok());
    }

    #[test]
    fn every_hop_is_checked_like_the_first_request() {
        let (base, none) = (Some("http://127.0.0.1:8080"), hosts(&[]));
        let hop = |u: &str, named| check_hop(&url(u), named, base, None, &none);
        assert!(hop("http://127.0.0.1:9/next", true).is_ok());
        assert_eq!(
            hop("http://localhost:9/next", true).unwrap_err().why,
            "Host not allowed: localhost"
        );
        // The tenant's own endpoint is not host-checked, but never reaches a link-local address.
        assert!(hop("http://cdn.example/f", false).is_ok());
        let err = hop("http://169.254.169.254/latest/", false).unwrap_err();
        assert_eq!(
            (err.why.as_str(), err.temporary),
            ("Link-local address not allowed: 169.254.169.254", false)
        );
        assert_eq!(
            hop("file:///etc/passwd", false).unwrap_err().why,
            "Unsupported URL scheme: file"
        );
    }
}
