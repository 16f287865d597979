//! Attachment loading (PROTOCOL.md §5): turns the attachment objects of a payload into content for
//! the MIME builder, by fetch mode (`endpoint`, `http_url`, `base64`, `filesystem`). Failures are
//! classified as temporary (retried with the message) or permanent (a terminal `error` report),
//! and described `Attachment fetch failed for <filename>: <why>`.
//!
//! URLs are checked by [`guard`] before any connection, redirect hops included: a URL a message
//! names reaches only the tenant's host or hosts the operator allowed, and no download reaches an
//! internal address (loopback, private, link-local, ...) the operator did not list, by literal or
//! by name: the client resolves names through [`resolve`], which hands the connector only vetted
//! addresses.
//!
//! A message's attachments load concurrently: keyed ones (`content_md5`, else the filename's
//! `{MD5:…}` marker) through the [`cache`] with one shared download per tenant, source and key
//! ([`Loader`]'s single flight; content that does not match its key is never shared), the others
//! straight from their origin, at most `GMP_MAX_CONCURRENT_ATTACHMENTS` downloads at once, each
//! under `GMP_ATTACHMENT_TIMEOUT_SECONDS`. Downloads stream into a [`spool`]; only once all are
//! loaded does the message reserve its peak footprint in the memory [`budget`] and read the
//! spools into memory, unless a reservation made before its large payload was read (inline
//! content, decoded under it) already covers that. The reservation travels with the result
//! ([`Loaded`]) and must be kept until the message is sent.

pub mod base64;
pub mod budget;
pub mod cache;
pub mod disk;
pub mod endpoint;
pub mod filesystem;
pub mod guard;
pub mod http;
mod load;
pub mod resolve;
pub mod spec;
pub mod spool;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{OnceCell, Semaphore};

use self::{budget::Budget, cache::Cache, spool::Fetched};
pub use self::{budget::BudgetGuard, load::Loaded};
use crate::{
    config::{Config, Hosts},
    metrics::Metrics,
};

/// A failed load, with the contract's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// Retry later (timeouts, connection errors, 429, 5xx) or give up.
    pub temporary: bool,
    /// Description, e.g. `Attachment fetch failed for x.pdf: HTTP 404 Not Found`.
    pub text: String,
}

impl LoadError {
    /// A permanent failure.
    pub fn permanent(text: impl Into<String>) -> Self {
        LoadError {
            temporary: false,
            text: text.into(),
        }
    }

    /// A temporary failure.
    pub fn temporary(text: impl Into<String>) -> Self {
        LoadError {
            temporary: true,
            text: text.into(),
        }
    }
}

/// Why one attachment failed, before its filename is added to the description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    /// Retry later or give up.
    pub temporary: bool,
    /// The reason, e.g. `HTTP 404 Not Found` or `File not found: <path>`.
    pub why: String,
}

impl Fail {
    /// A permanent failure.
    pub fn permanent(why: impl Into<String>) -> Self {
        Fail {
            temporary: false,
            why: why.into(),
        }
    }

    /// A temporary failure.
    pub fn temporary(why: impl Into<String>) -> Self {
        Fail {
            temporary: true,
            why: why.into(),
        }
    }

    /// Content over `GMP_MAX_ATTACHMENT_BYTES` (permanent).
    pub fn over_cap(name: &str, cap: u64) -> Self {
        Fail::permanent(format!("Attachment '{name}' exceeds limit ({cap} bytes)"))
    }

    /// The message-level error for the attachment named `name`.
    pub fn for_attachment(self, name: &str) -> LoadError {
        LoadError {
            temporary: self.temporary,
            text: format!("Attachment fetch failed for {name}: {}", self.why),
        }
    }
}

/// One download shared by concurrent loads; `Ok(None)` when its content did not match the key
/// (kept by the load that fetched it, see `load.rs`).
pub(crate) type Flight = Arc<OnceCell<Result<Option<(Fetched, &'static str)>, Fail>>>;

/// Loads the attachments of messages; one per replica (it owns the cache, the HTTP client, the
/// download slots and the memory budget).
pub struct Loader {
    /// Settings (`GMP_ATTACHMENT_*`, `GMP_CACHE_*`, `GMP_SPOOL_DIR`).
    config: Config,
    /// Load durations, sizes, cache hits.
    metrics: Arc<Metrics>,
    /// `GMP_ATTACHMENT_ALLOWED_HOSTS` plus the host of `GMP_ATTACHMENT_BASE_URL`, which the
    /// operator configured and may therefore be internal.
    allowed: Hosts,
    client: reqwest::Client,
    cache: Cache,
    budget: Budget,
    downloads: Arc<Semaphore>,
    flights: Mutex<HashMap<String, Flight>>,
}

impl Loader {
    /// A loader with the replica's settings.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Self {
        let mut allowed = config.attachment_allowed_hosts.clone();
        if let Some(host) = config
            .attachment_base_url
            .as_deref()
            .and_then(|u| reqwest::Url::parse(u).ok())
            .and_then(|u| {
                u.host_str()
                    .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
            })
        {
            allowed.0.push(host);
        }
        Loader {
            client: resolve::client(&allowed, resolve::system_lookup()),
            allowed,
            cache: Cache::new(config, metrics.cache_requests.clone()),
            budget: Budget::new(
                config.attachment_memory_budget_mb,
                metrics.attachment_memory.clone(),
            ),
            downloads: Arc::new(Semaphore::new(config.max_concurrent_attachments.max(1))),
            flights: Mutex::new(HashMap::new()),
            config: config.clone(),
            metrics,
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.attachment_timeout_seconds.max(1))
    }
}

#[cfg(test)]
mod tests;
