//! Prometheus metrics of a replica (PROTOCOL.md §8): the upstream `gmp_*` series with their names,
//! help texts and labels, so the upstream Grafana dashboard works unchanged, plus histograms and
//! counters of our own. One registry per process; names are constants here.

use std::sync::Arc;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels of the upstream per-account series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountLabels {
    /// Tenant id, or `default`.
    pub tenant_id: String,
    /// Tenant name, else its id.
    pub tenant_name: String,
    /// Account id, or `default`.
    pub account_id: String,
    /// Same as `account_id` (upstream compatibility).
    pub account_name: String,
}

impl AccountLabels {
    /// Labels for a tenant and account.
    pub fn new(tenant_id: &str, tenant_name: Option<&str>, account_id: Option<&str>) -> Self {
        let account = account_id
            .filter(|a| !a.is_empty())
            .unwrap_or("default")
            .to_string();
        AccountLabels {
            tenant_id: tenant_id.to_string(),
            tenant_name: tenant_name
                .filter(|n| !n.is_empty())
                .unwrap_or(tenant_id)
                .to_string(),
            account_id: account.clone(),
            account_name: account,
        }
    }
}

/// Labels `tenant_id, account_id`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantAccount {
    /// Tenant id.
    pub tenant_id: String,
    /// Account id.
    pub account_id: String,
}

/// Label `tenant_id`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    /// Tenant id.
    pub tenant_id: String,
}

/// Labels `tenant_id, source` (`rest` or `sync`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantSource {
    /// Tenant id.
    pub tenant_id: String,
    /// `rest` or `sync`.
    pub source: String,
}

/// Labels `tenant_id, outcome` of sync calls.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantOutcome {
    /// Tenant id.
    pub tenant_id: String,
    /// `ok`, `http_error`, `timeout`, `invalid`, `refused` (a link-local endpoint),
    /// `database_error` (the proxy's own database failed around the call).
    pub outcome: String,
}

/// Labels of attachment loads.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FetchLabels {
    /// Fetch mode.
    pub fetch_mode: String,
    /// `memory`, `disk` or `origin`.
    pub source: String,
}

/// Labels of cache requests.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `memory` or `disk`.
    pub tier: String,
    /// `hit` or `miss`.
    pub result: String,
}

/// Label `kind` of `gmp_http_timeouts_total`: `header` or `body`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpTimeoutLabel {
    /// Which part of the request was too slow.
    pub kind: String,
}

fn send_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 30.0,
    ])
}

fn latency_buckets() -> Histogram {
    Histogram::new([
        0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
        3600.0,
    ])
}

fn byte_buckets() -> Histogram {
    Histogram::new((0..9).map(|n| 1024.0 * 4f64.powi(n)))
}

/// Every metric family of the proxy.
pub struct Metrics {
    registry: Registry,
    /// SMTP accepted.
    pub sent: Family<AccountLabels, Counter>,
    /// Became terminal `error` during dispatch.
    pub errors: Family<AccountLabels, Counter>,
    /// Deferred for retry or rate limit.
    pub deferred: Family<AccountLabels, Counter>,
    /// Rate-limit blocks.
    pub rate_limited: Family<AccountLabels, Counter>,
    /// Unsent messages, all tenants.
    pub pending: Gauge,
    /// Unsent per tenant.
    pub pending_by_tenant: Family<TenantLabel, Gauge>,
    /// Connection acquire → final reply.
    pub send_duration: Family<TenantAccount, Histogram>,
    /// Enqueue → acceptance.
    pub delivery_latency: Family<TenantLabel, Histogram>,
    /// Accepted at intake.
    pub enqueued: Family<TenantSource, Counter>,
    /// Refused at intake.
    pub rejected: Family<TenantSource, Counter>,
    /// Sync call durations.
    pub sync_duration: Family<TenantOutcome, Histogram>,
    /// Sync calls.
    pub sync_calls: Family<TenantOutcome, Counter>,
    /// Reports acknowledged.
    pub reports_acked: Family<TenantLabel, Counter>,
    /// Reports refused by the client.
    pub reports_refused: Family<TenantLabel, Counter>,
    /// Attachment load durations.
    pub attachment_load: Family<FetchLabels, Histogram>,
    /// Attachment sizes.
    pub attachment_bytes: Family<TenantLabel, Histogram>,
    /// Cache lookups.
    pub cache_requests: Family<CacheLabels, Counter>,
    /// Fetched content whose MD5 differs from its key.
    pub md5_mismatch: Family<TenantLabel, Counter>,
    /// Attachment bytes held under the memory budget.
    pub attachment_memory: Gauge,
    /// Database statements issued by the dispatcher and sync (round-trip accounting).
    pub db_round_trips: Counter,
    /// Outcomes of finished sends held in memory because the database did not take them yet.
    pub outcomes_unwritten: Gauge,
    /// Outcomes discarded because this replica no longer held the message's claim.
    pub outcomes_stale: Counter,
    /// Messages parked with an error after being started too often without an outcome.
    pub parked: Counter,
    /// Open HTTP connections.
    pub http_connections: Gauge,
    /// HTTP connections refused over `GMP_HTTP_MAX_CONNECTIONS`.
    pub http_refused: Counter,
    /// Requests whose head or body did not arrive in time.
    pub http_timeouts: Family<HttpTimeoutLabel, Counter>,
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Arc<Self> {
        let mut r = Registry::default();
        let m = Metrics {
            sent: Family::default(),
            errors: Family::default(),
            deferred: Family::default(),
            rate_limited: Family::default(),
            pending: Gauge::default(),
            pending_by_tenant: Family::default(),
            send_duration: Family::new_with_constructor(send_buckets),
            delivery_latency: Family::new_with_constructor(latency_buckets),
            enqueued: Family::default(),
            rejected: Family::default(),
            sync_duration: Family::new_with_constructor(send_buckets),
            sync_calls: Family::default(),
            reports_acked: Family::default(),
            reports_refused: Family::default(),
            attachment_load: Family::new_with_constructor(send_buckets),
            attachment_bytes: Family::new_with_constructor(byte_buckets),
            cache_requests: Family::default(),
            md5_mismatch: Family::default(),
            attachment_memory: Gauge::default(),
            db_round_trips: Counter::default(),
            outcomes_unwritten: Gauge::default(),
            outcomes_stale: Counter::default(),
            parked: Counter::default(),
            http_connections: Gauge::default(),
            http_refused: Counter::default(),
            http_timeouts: Family::default(),
            registry: Registry::default(),
        };
        r.register("gmp_sent", "Total sent emails", m.sent.clone());
        r.register("gmp_errors", "Total send errors", m.errors.clone());
        r.register("gmp_deferred", "Total deferred emails", m.deferred.clone());
        r.register(
            "gmp_rate_limited",
            "Total rate limited occurrences",
            m.rate_limited.clone(),
        );
        r.register(
            "gmp_pending_messages",
            "Current pending messages",
            m.pending.clone(),
        );
        r.register(
            "gmp_pending_messages_by_tenant",
            "Unsent messages per tenant",
            m.pending_by_tenant.clone(),
        );
        r.register(
            "gmp_send_duration_seconds",
            "Connection acquire to final SMTP reply",
            m.send_duration.clone(),
        );
        r.register(
            "gmp_delivery_latency_seconds",
            "Enqueue to SMTP acceptance",
            m.delivery_latency.clone(),
        );
        r.register(
            "gmp_messages_enqueued",
            "Messages accepted at intake",
            m.enqueued.clone(),
        );
        r.register(
            "gmp_messages_rejected",
            "Messages refused at intake",
            m.rejected.clone(),
        );
        r.register(
            "gmp_sync_duration_seconds",
            "Duration of sync calls",
            m.sync_duration.clone(),
        );
        r.register(
            "gmp_sync_calls",
            "Sync calls by outcome",
            m.sync_calls.clone(),
        );
        r.register(
            "gmp_reports_acked",
            "Delivery reports acknowledged",
            m.reports_acked.clone(),
        );
        r.register(
            "gmp_reports_refused",
            "Delivery reports refused by the client",
            m.reports_refused.clone(),
        );
        r.register(
            "gmp_attachment_load_duration_seconds",
            "Attachment load time",
            m.attachment_load.clone(),
        );
        r.register(
            "gmp_attachment_bytes",
            "Attachment sizes",
            m.attachment_bytes.clone(),
        );
        r.register(
            "gmp_attachment_cache_requests",
            "Attachment cache lookups",
            m.cache_requests.clone(),
        );
        r.register(
            "gmp_attachment_md5_mismatch",
            "Fetched content differing from its MD5 key",
            m.md5_mismatch.clone(),
        );
        r.register(
            "gmp_attachment_memory_bytes",
            "Attachment bytes held in memory",
            m.attachment_memory.clone(),
        );
        r.register(
            "gmp_db_round_trips",
            "Database statements of the dispatch and sync paths",
            m.db_round_trips.clone(),
        );
        r.register(
            "gmp_outcomes_unwritten",
            "Outcomes of finished sends waiting for the database",
            m.outcomes_unwritten.clone(),
        );
        r.register(
            "gmp_outcomes_stale",
            "Outcomes discarded because another replica had taken the message over",
            m.outcomes_stale.clone(),
        );
        r.register(
            "gmp_messages_parked",
            "Messages parked with an error after repeated starts without an outcome",
            m.parked.clone(),
        );
        r.register(
            "gmp_http_connections",
            "Open HTTP connections",
            m.http_connections.clone(),
        );
        r.register(
            "gmp_http_connections_refused",
            "HTTP connections refused over GMP_HTTP_MAX_CONNECTIONS",
            m.http_refused.clone(),
        );
        r.register(
            "gmp_http_timeouts",
            "Requests whose head or body did not arrive in time",
            m.http_timeouts.clone(),
        );
        // The upstream dashboard expects a zero series before the first send.
        let default = AccountLabels::new("default", None, None);
        for f in [&m.sent, &m.errors, &m.deferred, &m.rate_limited] {
            let _ = f.get_or_create(&default);
        }
        Arc::new(Metrics { registry: r, ..m })
    }

    /// Creates the zero series of an account (at startup and on account creation), and of its
    /// tenant's pending gauge: the dashboard's "Pending Messages by Tenant" shows 0 rather than
    /// "No data" while nothing waits.
    pub fn touch_account(&self, labels: &AccountLabels) {
        for f in [&self.sent, &self.errors, &self.deferred, &self.rate_limited] {
            let _ = f.get_or_create(labels);
        }
        let tenant = TenantLabel {
            tenant_id: labels.tenant_id.clone(),
        };
        let _ = self.pending_by_tenant.get_or_create(&tenant);
    }

    /// Sets the pending gauge of each tenant in `counts` and zeroes every other tenant's series
    /// (they keep existing: a tenant's line drops to 0 rather than vanishing).
    pub fn set_pending_by_tenant(
        &self,
        counts: &std::collections::BTreeMap<String, i64>,
        known: &mut std::collections::BTreeSet<String>,
    ) {
        known.extend(counts.keys().cloned());
        for tenant in known.iter() {
            let label = TenantLabel {
                tenant_id: tenant.clone(),
            };
            let _ = self
                .pending_by_tenant
                .get_or_create(&label)
                .set(counts.get(tenant).copied().unwrap_or(0));
        }
    }

    /// The exposition text (OpenMetrics).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    #[test]
    fn a_tenants_pending_gauge_exists_from_its_account_and_drops_to_zero() {
        let m = Metrics::new();
        m.touch_account(&AccountLabels::new("quiet", None, Some("a")));
        assert!(
            m.render()
                .contains("gmp_pending_messages_by_tenant{tenant_id=\"quiet\"} 0")
        );
        let mut known = BTreeSet::new();
        m.set_pending_by_tenant(&BTreeMap::from([("busy".to_string(), 3)]), &mut known);
        assert!(
            m.render()
                .contains("gmp_pending_messages_by_tenant{tenant_id=\"busy\"} 3")
        );
        m.set_pending_by_tenant(&BTreeMap::new(), &mut known);
        let text = m.render();
        assert!(
            text.contains("gmp_pending_messages_by_tenant{tenant_id=\"busy\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("gmp_pending_messages_by_tenant{tenant_id=\"quiet\"} 0"),
            "{text}"
        );
    }
}
