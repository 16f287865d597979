//! Where attachment downloads and sync calls may go (PROTOCOL.md §5.3; issue 15 item 3): a URL
//! named by a message (`http_url`, an `endpoint` storage path that is a URL, and every redirect
//! hop) may reach only the tenant's own host, the host of `GMP_ATTACHMENT_BASE_URL`, or a host
//! the operator listed in `GMP_ATTACHMENT_ALLOWED_HOSTS` (`*` = any host). No request, the
//! tenant's own endpoint and its sync calls included, may reach an internal address — loopback,
//! private (RFC 1918), shared (CGNAT), unique local, unspecified or link-local (where cloud
//! metadata services live) — by literal (checked here) or by name resolution (checked by
//! [`super::resolve`] as the client resolves), unless its host is listed by name or address, or
//! the address lies in a listed CIDR range. A tenant may set its own `client_base_url`, so "its
//! own host" alone would let it read the proxy's neighbours and mail the answers to itself.
//! Refusals are permanent failures.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use reqwest::Url;

use super::Fail;
use crate::config::Hosts;

/// The kind of internal address a request was refused for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Internal {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fec0::/10 (deprecated site-local).
    Private,
    /// 100.64.0.0/10 (carrier-grade NAT, also used by some clusters).
    Shared,
    /// fc00::/7.
    UniqueLocal,
    /// 0.0.0.0/8, :: (Linux connects them to the local host).
    Unspecified,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
}

impl std::fmt::Display for Internal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Internal::Loopback => "Loopback",
            Internal::Private => "Private",
            Internal::Shared => "Shared (CGNAT)",
            Internal::UniqueLocal => "Unique local",
            Internal::Unspecified => "Unspecified",
            Internal::LinkLocal => "Link-local",
        })
    }
}

/// The kind of internal address `ip` is, None for other addresses. IPv6 forms that carry an
/// IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`,
/// which a NAT64 gateway forwards to that IPv4 address) are judged by that address.
pub fn internal(ip: IpAddr) -> Option<Internal> {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<Internal> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some(Internal::Loopback)
    } else if ip.is_private() {
        Some(Internal::Private)
    } else if a == 100 && (64..128).contains(&b) {
        Some(Internal::Shared)
    } else if a == 0 {
        Some(Internal::Unspecified)
    } else if ip.is_link_local() {
        Some(Internal::LinkLocal)
    } else {
        None
    }
}

fn internal_v6(ip: Ipv6Addr) -> Option<Internal> {
    let s = ip.segments();
    if ip.is_loopback() {
        return Some(Internal::Loopback);
    }
    if ip.is_unspecified() {
        return Some(Internal::Unspecified);
    }
    match s[0] & 0xffc0 {
        0xfe80 => return Some(Internal::LinkLocal),
        0xfec0 => return Some(Internal::Private),
        _ => {}
    }
    if s[0] & 0xfe00 == 0xfc00 {
        return Some(Internal::UniqueLocal);
    }
    embedded_v4(ip).and_then(internal_v4)
}

/// The IPv4 address an IPv6 address carries: mapped and compatible forms, then the NAT64
/// prefix with the IPv4 address last.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    ip.to_ipv4().or_else(|| {
        (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0])
            .then(|| Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7])))
    })
}

/// True for link-local addresses, plain or carried in an IPv6 address (see [`internal`]).
pub fn link_local(ip: IpAddr) -> bool {
    internal(ip) == Some(Internal::LinkLocal)
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

/// Refuses a URL whose host is an internal address literal, unless the host is listed by
/// address or lies in a listed range. Host names are vetted when they are resolved, by the
/// client's own resolver ([`super::resolve`]), so that the addresses checked are the ones
/// connected to.
pub fn check_literal(url: &Url, allowed: &Hosts) -> Result<(), Fail> {
    let Some(host) = host_of(url) else {
        return Ok(());
    };
    match host
        .parse::<IpAddr>()
        .ok()
        .and_then(|ip| Some((ip, internal(ip)?)))
    {
        Some((ip, kind)) if !allowed.contains(&host) && !allowed.covers(ip) => Err(
            Fail::permanent(format!("{kind} address not allowed: {host}")),
        ),
        _ => Ok(()),
    }
}

/// Checks one request of a download, the first or a redirect hop, by the same policy: a URL
/// named by the message (`named`; every redirect hop is) must reach an allowed host, and no URL
/// an internal address literal that is not listed.
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
        assert!(check_literal(&url("http://93.184.215.14/x"), &none).is_ok());
    }

    #[test]
    fn internal_ranges() {
        use Internal::*;
        for (ip, kind) in [
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("::1", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("fec0::1", Private),
            ("64:ff9b::10.0.0.1", Private),
            ("100.64.0.1", Shared),
            ("100.127.255.255", Shared),
            ("fc00::1", UniqueLocal),
            ("fd12:3456::1", UniqueLocal),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("169.254.169.254", LinkLocal),
            ("fe80::1", LinkLocal),
        ] {
            assert_eq!(internal(ip.parse().unwrap()), Some(kind), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2001:db8::1",
            "2606:4700::1111",
            "64:ff9b::8.8.8.8",
        ] {
            assert_eq!(internal(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn internal_literals_are_refused_unless_listed_or_in_a_listed_range() {
        let none = hosts(&[]);
        for (u, why) in [
            (
                "http://127.0.0.1:8000/metrics",
                "Loopback address not allowed: 127.0.0.1",
            ),
            ("http://[::1]/x", "Loopback address not allowed: ::1"),
            (
                "http://10.96.0.1/x",
                "Private address not allowed: 10.96.0.1",
            ),
            (
                "http://100.64.1.1/x",
                "Shared (CGNAT) address not allowed: 100.64.1.1",
            ),
            (
                "http://[fd00::5]/x",
                "Unique local address not allowed: fd00::5",
            ),
            (
                "http://0.0.0.0:8000/x",
                "Unspecified address not allowed: 0.0.0.0",
            ),
            (
                "http://2130706433/x",
                "Loopback address not allowed: 127.0.0.1",
            ),
        ] {
            let err = check_literal(&url(u), &none).unwrap_err();
            assert_eq!((err.why.as_str(), err.temporary), (why, false), "{u}");
        }
        assert!(check_literal(&url("http://127.0.0.1/x"), &hosts(&["127.0.0.1"])).is_ok());
        assert!(check_literal(&url("http://10.96.3.4/x"), &hosts(&["10.96.0.0/12"])).is_ok());
        assert!(check_literal(&url("http://10.128.0.1/x"), &hosts(&["10.96.0.0/12"])).is_err());
        // `*` lets a message name any host; it opens no internal address.
        assert!(check_literal(&url("http://127.0.0.1/x"), &hosts(&["*"])).is_err());
    }

    #[test]
    fn every_hop_is_checked_like_the_first_request() {
        let (base, own) = (Some("http://127.0.0.1:8080"), hosts(&["127.0.0.1"]));
        let hop = |u: &str, named| check_hop(&url(u), named, base, None, &own);
        assert!(hop("http://127.0.0.1:9/next", true).is_ok());
        assert_eq!(
            hop("http://localhost:9/next", true).unwrap_err().why,
            "Host not allowed: localhost"
        );
        // The tenant's own endpoint is not host-checked, but never reaches an internal address.
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
