//! Name resolution of attachment downloads (PROTOCOL.md §5.3; issue 10, issue 15 item 3): the attachment client
//! resolves every host name through [`VettedResolver`], which drops internal addresses (loopback,
//! private, CGNAT, ULA, unspecified, link-local: [`guard::internal`]) from the answer before the
//! connector sees it, unless the host is listed in `GMP_ATTACHMENT_ALLOWED_HOSTS` or the address
//! lies in a range listed there. The
//! addresses checked are therefore exactly the addresses connected to: a DNS server that answers
//! a safe address to a first lookup and a metadata address to a second (DNS rebinding) gains
//! nothing, because there is no second lookup. Address literals never reach a resolver; [`guard`]
//! checks them before each request and each redirect hop.
//!
//! The client connects directly (no `HTTP_PROXY`): through a proxy, the proxy would resolve the
//! name and the check would not hold. The sync loop calls tenant applications with the same
//! client, since a tenant may set its own endpoint (`sync::call::post`).
//!
//! [`guard`]: super::guard

use std::{
    io,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use futures_util::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::guard::{Internal, internal};
use crate::config::Hosts;

/// Looks a host name up (the system resolver, or a fake in tests).
pub type Lookup = Arc<dyn Fn(String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> + Send + Sync>;

/// Every address of a name was internal and neither the name nor the addresses are listed.
#[derive(Debug, thiserror::Error)]
#[error("{kind} address not allowed: {host}")]
pub struct AddressRefused {
    /// The name asked for.
    pub host: String,
    /// What the first refused address was.
    pub kind: Internal,
}

/// The addresses of `host` a request may connect to: all of them when the host is listed by
/// name, else those that are not internal or lie in a listed range; an error when none is left.
pub fn vet(host: &str, addrs: Vec<IpAddr>, allowed: &Hosts) -> Result<Vec<IpAddr>, AddressRefused> {
    if allowed.contains(host) {
        return Ok(addrs);
    }
    let first_internal = addrs.iter().find_map(|ip| internal(*ip));
    let kept: Vec<IpAddr> = addrs
        .into_iter()
        .filter(|ip| internal(*ip).is_none() || allowed.covers(*ip))
        .collect();
    match first_internal {
        Some(kind) if kept.is_empty() => Err(AddressRefused {
            host: host.to_string(),
            kind,
        }),
        _ => Ok(kept),
    }
}

/// A `reqwest` resolver that answers only vetted addresses.
pub struct VettedResolver {
    allowed: Hosts,
    lookup: Lookup,
}

impl VettedResolver {
    /// A resolver over `lookup`, letting internal answers through only for `allowed` hosts.
    pub fn new(allowed: Hosts, lookup: Lookup) -> Self {
        VettedResolver { allowed, lookup }
    }
}

impl Resolve for VettedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let allowed = self.allowed.clone();
        let lookup = (self.lookup)(host.clone());
        Box::pin(async move {
            let ips = vet(&host, lookup.await?, &allowed)?;
            // Port 0: the connector puts the URL's port in.
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// The system resolver (getaddrinfo on a blocking thread, as reqwest's default).
pub fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    })
}

/// The attachment client: vetted resolution, no proxy, redirects left to the caller (each hop
/// is checked like the first request, see [`super::http::download`]).
///
/// Panics when the TLS backend cannot start, as `reqwest::Client::new` does: falling back to a
/// client without the vetted resolver would undo the check.
pub fn client(allowed: &Hosts, lookup: Lookup) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(VettedResolver::new(allowed.clone(), lookup)))
        .build()
        .expect("the attachment HTTP client builds (TLS backend available)")
}

/// The refusal in a failed request's causes, if that is why it failed.
pub fn refusal(e: &reqwest::Error) -> Option<&AddressRefused> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<AddressRefused>() {
            return Some(r);
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
mod tests;
