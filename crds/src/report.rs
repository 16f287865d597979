//! The report of one run, the same document from the local run (`report.json` next to the
//! chart) and from the operator (the `<pressuretest>-report-<run>` ConfigMap): totals and
//! per-tenant lines, the thresholds with the verdict, the figures in the status shape and the
//! timeline that [`chart::svg`] draws. Each side fills what it can measure; what it cannot is
//! absent (`null`), never zero.

pub mod chart;
pub mod render;
pub mod replicas;

/// Key of the finished run's report in its report ConfigMap (`status.report`).
pub const REPORT_KEY: &str = "report.json";
/// Key of the finished run's chart in its report ConfigMap.
pub const CHART_KEY: &str = "chart.svg";
/// Key of the timeline so far in the report ConfigMap of a run still going.
pub const TIMELINE_KEY: &str = "timeline.json";

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::compare::Comparison;
use crate::{Figures, StageSpec, TenantFigures, ThresholdResult};

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum (unknown without the sink).
    pub max: Option<f64>,
}

/// One line of the report: a tenant, or the total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// Tenant name, or `total`.
    pub name: String,
    /// Client replicas.
    pub clients: usize,
    /// Messages the clients generated.
    pub generated: u64,
    /// Messages the proxy sent (`gmp_sent_total`).
    pub sent: u64,
    /// Messages delivered: counted by the sink (or the proxy's sent count with `--smtp`).
    pub delivered: u64,
    /// Error reports (`error`, `bounce`) the clients received.
    pub errors: u64,
    /// Deferrals (`gmp_deferred_total`).
    pub deferred: u64,
    /// generated − distinct deliveries (delivered − duplicates) − errors (never negative).
    pub lost: u64,
    /// Duplicate deliveries seen by the sink.
    pub duplicates: Option<u64>,
    /// Attachments whose content did not match their MD5.
    pub attachment_mismatches: Option<u64>,
    /// Message bytes the sink accepted.
    pub bytes_delivered: Option<u64>,
    /// Share of the clients' attachment draws reusing cached content, permille.
    pub cache_hit_rate_permille: Option<i64>,
    /// Delivered per second over the measured window.
    pub throughput_per_second: f64,
    /// End-to-end latency (creation at the client → acceptance at the sink).
    pub latency_ms: Option<Latency>,
}

/// The proxy's attachment cache.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CacheFigures {
    /// Lookups that hit (memory or disk).
    pub hits: u64,
    /// Lookups that missed.
    pub misses: u64,
    /// hits / (hits + misses), permille.
    pub hit_rate_permille: Option<i64>,
}

/// One second of the timeline (the chart's data).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// Seconds since the load started.
    pub t: f64,
    /// Delivered per second over the last interval.
    pub delivered_per_second: f64,
    /// p99 latency of the deliveries of the last interval, ms.
    pub latency_p99_ms: Option<f64>,
    /// Messages generated so far.
    pub generated: u64,
    /// Messages delivered so far.
    pub delivered: u64,
    /// Proxy replicas that answered this reading (the operator's timeline; a local run has one
    /// proxy and leaves it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_replicas: Option<u32>,
    /// The HPA's desired proxy replicas at this reading (the operator's timeline, with the HPA
    /// on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<u32>,
    /// The proxy Deployment's ready replicas at this reading (the operator's timeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<u32>,
    /// The HPA's average CPU utilisation of the proxy, percent of its request, at this reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<u32>,
}

/// The whole report (printed, written as JSON, charted). Read back (a baseline), a field the
/// writer did not know takes its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Report {
    /// Run id.
    pub run_id: String,
    /// Where the spec came from.
    pub source: String,
    /// `sqlite` or `postgresql`.
    pub database: String,
    /// `sink` (verified), `mailpit` (a mail catcher's message count: duplicates and attachments
    /// unverified), or `proxy` (external SMTP: the proxy's sent count, unverified).
    pub delivered_source: String,
    /// What the latency measures: `sink` (client creation to sink acceptance, exact) or `proxy`
    /// (the proxy's own histogram, bucket-interpolated; with `--smtp`).
    pub latency_source: String,
    /// Planned measured seconds.
    pub duration_seconds: i32,
    /// Warm-up seconds, excluded from throughput and error rate.
    pub warmup_seconds: i32,
    /// Seconds actually measured.
    pub measured_seconds: f64,
    /// Seconds spent draining after the load stopped.
    pub drain_seconds: f64,
    /// Every generated message got a final report before the drain deadline.
    pub drained: bool,
    /// The user stopped the run (partial report).
    pub interrupted: bool,
    /// All tenants.
    pub total: Line,
    /// One line per tenant.
    pub tenants: Vec<Line>,
    /// The proxy's attachment cache.
    pub proxy_cache: CacheFigures,
    /// The proxy's peak resident memory (VmHWM), bytes.
    pub proxy_peak_memory_bytes: Option<u64>,
    /// CPU seconds by process.
    pub cpu_seconds: BTreeMap<String, f64>,
    /// Each threshold with its observed value.
    pub thresholds: Vec<ThresholdResult>,
    /// `ThresholdsPassed`, `ThresholdBreached`, `DeliveryMismatch`, `NotMeasured` or
    /// `Aborted`.
    pub verdict: String,
    /// The verdict in one sentence: what was breached, what could not be measured.
    #[serde(default)]
    pub message: String,
    /// Whether the run passed.
    pub passed: bool,
    /// The same totals in the operator's status shape.
    pub figures: Figures,
    /// The same per-tenant lines in the operator's status shape.
    pub per_tenant: Vec<TenantFigures>,
    /// The load's stages (`spec.stages`), counted from the load's start; the chart marks where
    /// each ends.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageSpec>,
    /// Throughput by the number of proxy replicas, over the measured window (a cluster run's;
    /// see [`replicas::by_replicas`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_replicas: Vec<replicas::ReplicaFigures>,
    /// Throughput and p99 latency second by second.
    pub timeline: Vec<Point>,
    /// This run against its baseline, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}
