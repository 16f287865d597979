//! `/stats` bodies of the simulated client (the seed's fields; `client-sim/README.md`) and of the SMTP sink.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /stats` of a simulated tenant client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClientStatsV1 {
    /// Client id (`CLIENT_ID`).
    pub client_id: String,
    /// Tenant id (`TENANT_ID`).
    pub tenant_id: String,
    /// Seconds since start, to 0.1.
    pub uptime_seconds: f64,
    /// `/sync` calls received.
    pub sync_calls: u64,
    /// Delivery report entries received.
    pub reports_received: u64,
    /// Messages handed to the proxy.
    pub messages_generated: u64,
    /// `/attachments` calls served.
    pub attachments_served: u64,
    /// Attachment megabytes served (MiB), to 0.01.
    pub attachment_mb_served: f64,
    /// Share of attachment draws that reused cached content, to 0.001.
    pub cache_hit_rate: f64,
    /// Do-not-disturb answers given.
    pub dnd_periods: u64,
    /// Bad requests and failures.
    pub errors: u64,
    /// Messages per sync call, to 0.01.
    pub msg_per_sync: f64,
    /// Reports received by type (`sent`, `error`, `deferred`, `bounce`).
    #[serde(default)]
    pub reports_by_type: BTreeMap<String, u64>,
    /// Distinct messages that got a final report (sent, error or bounce).
    #[serde(default)]
    pub messages_finalized: u64,
}

impl ClientStatsV1 {
    /// Final error reports received (`error` and `bounce`): the errors every verdict counts,
    /// in the cluster and locally.
    pub fn error_reports(&self) -> u64 {
        ["error", "bounce"]
            .iter()
            .map(|k| self.reports_by_type.get(*k).copied().unwrap_or(0))
            .sum()
    }
}

/// Per-tenant figures of the SMTP sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SinkTenantStatsV1 {
    /// Messages accepted (250 after DATA).
    pub received: u64,
    /// Bytes of message data accepted.
    pub bytes: u64,
    /// Attachments whose content did not hash to their marker or header.
    pub attachment_mismatches: u64,
    /// Attachments verified against a marker or header.
    pub attachments_verified: u64,
    /// Messages whose Message-ID was seen before.
    pub duplicates: u64,
    /// End-to-end latency percentiles in milliseconds (creation header → acceptance).
    pub latency_ms: LatencySummaryV1,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct LatencySummaryV1 {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// `GET /stats` of the SMTP sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SinkStatsV1 {
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// Totals over all tenants.
    pub total: SinkTenantStatsV1,
    /// Figures per tenant (from the tenant header; `unknown` when absent).
    pub tenants: BTreeMap<String, SinkTenantStatsV1>,
    /// Replies refused on purpose by fault injection, by class (`4xx`, `5xx`, `drop`).
    #[serde(default)]
    pub faults_injected: BTreeMap<String, u64>,
}
