//! The loading steps of [`Loader`]: all attachments of a message concurrently; per attachment
//! the cache with single flight, the download slot and timeout, the origin fetch by mode; then
//! the tenant's large-file rule, the memory budget and the read into memory.

use std::{sync::Arc, time::Instant};

use serde_json::Value;
use tracing::warn;

use super::{
    BudgetGuard, Fail, LoadError, Loader, base64, budget, endpoint, filesystem, guard, http,
    spec::Spec,
    spool::{Fetched, Spool, SpoolWriter, md5_hex},
};
use crate::{
    mail::build::LoadedAttachment,
    metrics::{FetchLabels, TenantLabel},
    store::tenants::Tenant,
};

/// The attachments of one message and its memory reservation, which must be kept until the
/// message has been built and sent.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The attachments, in payload order.
    pub attachments: Vec<LoadedAttachment>,
    /// The reservation in the memory budget (None without attachment bytes).
    pub budget: Option<BudgetGuard>,
}

impl Loaded {
    /// The attachments (for the builder) and the reservation (to hold until the send ends).
    pub fn into_parts(self) -> (Vec<LoadedAttachment>, Option<BudgetGuard>) {
        (self.attachments, self.budget)
    }
}

impl Loader {
    /// Reserves `bytes` of the memory budget, waiting for room: taken before a large payload
    /// (inline attachments) is read from the database and decoded, and handed to
    /// [`Loader::load_all`].
    pub async fn reserve(&self, bytes: u64) -> BudgetGuard {
        self.budget.reserve(bytes).await
    }

    /// Loads every attachment of a message, in order; the first failure fails the message.
    /// `held` is a reservation the message made before its payload was loaded; it is kept when
    /// it covers the attachments' footprint, else exchanged for one that does.
    pub async fn load_all(
        &self,
        tenant: Option<&Tenant>,
        attachments: &[Value],
        held: Option<BudgetGuard>,
    ) -> Result<Loaded, LoadError> {
        let specs = attachments
            .iter()
            .map(Spec::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if specs.is_empty() {
            return Ok(Loaded {
                attachments: Vec::new(),
                budget: held,
            });
        }
        let spools =
            futures_util::future::try_join_all(specs.iter().map(|s| self.load_one(tenant, s)))
                .await?;
        for (s, spool) in specs.iter().zip(&spools) {
            large_file_rule(tenant, s, spool.len())?;
        }
        let total: u64 = spools.iter().map(|s| budget::footprint(s.len())).sum();
        let budget = match (held, total) {
            (held, 0) => held,
            (Some(g), n) if g.covers(n) => Some(g),
            (held, n) => {
                // Exchanged, not added to: holding one reservation while waiting for another
                // can deadlock two messages. Only a message with both inline content and
                // downloads larger than it gets here.
                drop(held);
                Some(self.budget.reserve(n).await)
            }
        };
        let mut attachments = Vec::with_capacity(specs.len());
        for (s, spool) in specs.into_iter().zip(spools) {
            let content = spool.to_bytes().await.map_err(|e| {
                Fail::temporary(format!("spool read failed: {e}")).for_attachment(s.raw_name)
            })?;
            attachments.push(LoadedAttachment {
                filename: s.name,
                mime: s.mime,
                content,
            });
        }
        Ok(Loaded {
            attachments,
            budget,
        })
    }

    async fn load_one(&self, tenant: Option<&Tenant>, s: &Spec<'_>) -> Result<Spool, LoadError> {
        let started = Instant::now();
        let (fetched, source) = match &s.key {
            Some(key) => self.keyed(tenant, s, key).await,
            None => self.fetch(tenant, s).await.map(|f| (f, "origin")),
        }
        .map_err(|f| f.for_attachment(s.raw_name))?;
        let m = &self.metrics;
        m.attachment_load
            .get_or_create(&FetchLabels {
                fetch_mode: s.mode.into(),
                source: source.into(),
            })
            .observe(started.elapsed().as_secs_f64());
        m.attachment_bytes
            .get_or_create(&tenant_label(tenant))
            .observe(fetched.spool.len() as f64);
        Ok(fetched.spool)
    }

    /// Cache lookup and, on a miss, one download shared by the concurrent loads of the same
    /// tenant, source and key in this replica. Content that does not match its key is kept by
    /// the load that fetched it (delivered with a warning, as upstream) and never handed to
    /// another: a waiter then fetches its own copy. Sharing by key alone let one tenant's forged
    /// bytes reach another tenant's mail, or another tenant's content reach its own.
    async fn keyed(
        &self,
        tenant: Option<&Tenant>,
        s: &Spec<'_>,
        key: &str,
    ) -> Result<(Fetched, &'static str), Fail> {
        let tenant_id = tenant_label(tenant).tenant_id;
        let flight_key = format!("{tenant_id}\0{}\0{}\0{key}", s.mode, s.path);
        let cell: super::Flight = match self.flights.lock() {
            Ok(mut f) => f.entry(flight_key.clone()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        // The fetcher's own mismatched content, which the cell does not share.
        let own = std::sync::Mutex::new(None);
        let result = cell
            .get_or_init(|| async {
                let hit = tokio::time::timeout(self.timeout(), self.cache.get(key)).await;
                if let Ok(Some((spool, tier))) = hit {
                    let source = match tier {
                        super::cache::Tier::Memory => "memory",
                        super::cache::Tier::Disk => "disk",
                    };
                    let md5 = key.to_string();
                    return Ok(Some((Fetched { spool, md5 }, source)));
                }
                let fetched = self.fetch_checked(tenant, s, key).await?;
                if fetched.md5 != key {
                    *own.lock().unwrap_or_else(|e| e.into_inner()) = Some(fetched);
                    return Ok(None);
                }
                Ok(Some((fetched, "origin")))
            })
            .await
            .clone();
        if let Ok(mut f) = self.flights.lock()
            && f.get(&flight_key).is_some_and(|c| Arc::ptr_eq(c, &cell))
        {
            f.remove(&flight_key);
        }
        match result? {
            Some(shared) => Ok(shared),
            None => match own.into_inner().unwrap_or_else(|e| e.into_inner()) {
                Some(mine) => Ok((mine, "origin")),
                None => self
                    .fetch_checked(tenant, s, key)
                    .await
                    .map(|f| (f, "origin")),
            },
        }
    }

    /// Fetches from the origin, caches the content under its real MD5, and counts and logs a
    /// content that differs from `key`.
    async fn fetch_checked(
        &self,
        tenant: Option<&Tenant>,
        s: &Spec<'_>,
        key: &str,
    ) -> Result<Fetched, Fail> {
        let fetched = self.fetch(tenant, s).await?;
        if fetched.md5 != key {
            let tenant_id = tenant_label(tenant).tenant_id;
            warn!(%tenant_id, key, md5 = %fetched.md5, filename = %s.name,
                "Attachment content differs from its MD5 key; sending it with this message only.");
            self.metrics
                .md5_mismatch
                .get_or_create(&tenant_label(tenant))
                .inc();
        }
        self.cache.put(&fetched.md5, &fetched.spool).await;
        Ok(fetched)
    }

    /// Loads from the origin: base64 inline; the other modes in a download slot, timed.
    async fn fetch(&self, tenant: Option<&Tenant>, s: &Spec<'_>) -> Result<Fetched, Fail> {
        let cap = self.config.max_attachment_bytes;
        if s.mode == "base64" {
            let bytes = base64::decode(s.path)
                .map_err(|why| Fail::permanent(format!("Invalid base64 content: {why}")))?;
            if bytes.len() as u64 > cap {
                return Err(Fail::over_cap(s.raw_name, cap));
            }
            let md5 = md5_hex(&bytes);
            return Ok(Fetched {
                spool: Spool::Memory(bytes),
                md5,
            });
        }
        let _slot = self
            .downloads
            .acquire()
            .await
            .map_err(|_| Fail::temporary("download slots closed"))?;
        tokio::time::timeout(self.timeout(), self.origin(tenant, s))
            .await
            .map_err(|_| Fail::temporary(format!("Attachment {} fetch timed out", s.raw_name)))?
    }

    async fn origin(&self, tenant: Option<&Tenant>, s: &Spec<'_>) -> Result<Fetched, Fail> {
        let c = &self.config;
        let cap = c.max_attachment_bytes;
        let mut w = SpoolWriter::new(c.spool_dir.clone(), cap);
        let base = c.attachment_base_url.as_deref();
        let tenant_base = tenant.and_then(|t| t.client_base_url.as_deref());
        let allowed = &self.allowed;
        match s.mode {
            "endpoint" | "http_url" => {
                let t = if s.mode == "endpoint" {
                    endpoint::endpoint(s.path, s.auth, tenant, base)?
                } else {
                    endpoint::http_url(s.path, s.auth, tenant)?
                };
                let named = s.mode == "http_url" || endpoint::names_url(s.path);
                // Redirect hops are host-checked in every mode (issue 15, item 3).
                let check = |u: &reqwest::Url, hop: bool| {
                    guard::check_hop(u, named || hop, tenant_base, base, allowed)
                };
                http::download(&self.client, &t, &check, &mut w, s.raw_name, cap).await?;
            }
            _ => {
                // Each tenant reads only `<base>/<tenant_id>/` (issue 15, item 8).
                let base_dir = c.attachment_base_dir.as_deref();
                let file = filesystem::open(base_dir, tenant.map(|t| t.id.as_str()), s.path);
                filesystem::read(file.await?, s.path, &mut w, s.raw_name, cap).await?;
            }
        }
        w.finish()
            .await
            .map_err(|e| Fail::temporary(format!("spool write failed: {e}")))
    }
}

fn tenant_label(tenant: Option<&Tenant>) -> TenantLabel {
    TenantLabel {
        tenant_id: tenant.map_or_else(|| "default".into(), |t| t.id.clone()),
    }
}

/// The tenant's `large_file_config` (§5.7): over `max_size_mb`, `reject` is a permanent error;
/// `warn` and `rewrite` (not implemented, as upstream when its upload fails) log and attach.
fn large_file_rule(tenant: Option<&Tenant>, s: &Spec<'_>, len: u64) -> Result<(), LoadError> {
    let Some(cfg) = tenant.and_then(|t| t.large_file_config.as_ref()) else {
        return Ok(());
    };
    if cfg.get("enabled").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let max = cfg
        .get("max_size_mb")
        .and_then(Value::as_f64)
        .unwrap_or(10.0);
    let size = len as f64 / (1024.0 * 1024.0);
    if size <= max {
        return Ok(());
    }
    match cfg.get("action").and_then(Value::as_str).unwrap_or("warn") {
        "reject" => Err(LoadError::permanent(format!(
            "Attachment '{}' ({size:.1} MB) exceeds limit ({max} MB)",
            s.name
        ))),
        action => {
            warn!(filename = %s.name, size_mb = size, max_mb = max, action,
                "Large attachment exceeds the tenant limit; sending it anyway.");
            Ok(())
        }
    }
}
