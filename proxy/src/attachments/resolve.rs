//! Name resolution of attachment downloads (C3, issue 10): the attachment client resolves every
//! host name through [`VettedResolver`], which drops link-local addresses from the answer before
//! the connector sees it (unless the host is listed in `GMP_ATTACHMENT_ALLOWED_HOSTS`). The
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

use super::guard::link_local;
use crate::config::Hosts;

/// Looks a host name up (the system resolver, or a fake in tests).
pub type Lookup = Arc<dyn Fn(String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> + Send + Sync>;

/// Every address of a name was link-local and the name is not listed.
#[derive(Debug, thiserror::Error)]
#[error("Link-local address not allowed: {host}")]
pub struct LinkLocalRefused {
    /// The name asked for.
    pub host: String,
}

/// The addresses of `host` a download may connect to: all of them when the host is listed,
/// else those that are not link-local; an error when none is left.
pub fn vet(
    host: &str,
    addrs: Vec<IpAddr>,
    allowed: &Hosts,
) -> Result<Vec<IpAddr>, LinkLocalRefused> {
    if allowed.contains(host) {
        return Ok(addrs);
    }
    let had_any = !addrs.is_empty();
    let kept: Vec<IpAddr> = addrs.into_iter().filter(|ip| !link_local(*ip)).collect();
    if kept.is_empty() && had_any {
        return Err(LinkLocalRefused {
            host: host.to_string(),
        });
    }
    Ok(kept)
}

/// A `reqwest` resolver that answers only vetted addresses.
pub struct VettedResolver {
    allowed: Hosts,
    lookup: Lookup,
}

impl VettedResolver {
    /// A resolver over `lookup`, letting link-local answers through only for `allowed` hosts.
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
pub fn refusal(e: &reqwest::Error) -> Option<&LinkLocalRefused> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<LinkLocalRefused>() {
            return Some(r);
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
mod tests;
