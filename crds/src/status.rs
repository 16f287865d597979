//! The status the operator writes: a display phase, typed conditions, the run's times, live
//! figures while it runs and the final summary with one line per threshold.
//!
//! Only integers: rates per second, latencies in milliseconds, ratios in permille.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of a PressureTest.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PressureTestStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Display phase, derived from the conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// When the current phase began (RFC 3339); deadlines count from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_since: Option<String>,
    /// One sentence about the current phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `spec.runNumber` of the run this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_number: Option<i32>,
    /// Earlier runs of this PressureTest (`spec.runNumber` changed), newest first; at most
    /// [`HISTORY_LENGTH`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RunSummary>,
    /// Id of this run; clients stamp it on every message (`RUN_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Number of tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<i32>,
    /// When the operator first acted on this run (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// When the verdict was reached (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// Unix second at which clients start generating (`START_AT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_start_at: Option<i64>,
    /// Unix second at which clients stop generating (`STOP_AT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_stop_at: Option<i64>,
    /// Unix second at which `spec.abort` stopped the load, if it did (the measured window ends
    /// there instead of at `loadStopAt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_at: Option<i64>,
    /// Latest figures: live while running, final once complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figures: Option<Figures>,
    /// Figures at the end of the warm-up: the measured window's start, subtracted for throughput
    /// and error rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Figures>,
    /// Figures at the load's stop: the measured window's end (deliveries during the drain count
    /// for loss and delivery, not for throughput).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_end: Option<Figures>,
    /// Figures per tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_tenant: Vec<TenantFigures>,
    /// One line per threshold, set with the verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<ThresholdResult>,
    /// The ConfigMap holding this run's report: `timeline.json` while the load runs, then
    /// `report.json` (the local run's report document) and `chart.svg` once it has a verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// This run against `spec.baseline`, set with the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<crate::compare::Comparison>,
    /// Conditions: EnvironmentReady, ClientsReady, PodsHealthy, Complete, Succeeded, and
    /// Regressed when the spec names a baseline.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// How many earlier runs `status.history` keeps.
pub const HISTORY_LENGTH: usize = 10;

/// A finished run, as `status.history` keeps it.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// `spec.runNumber` of that run.
    pub run_number: i32,
    /// Its run id.
    pub run_id: String,
    /// When it started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// When it got its verdict (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// The reason of its `Succeeded` condition.
    pub verdict: String,
    /// Whether it passed.
    pub succeeded: bool,
    /// Whether it regressed against its baseline, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regressed: Option<bool>,
    /// Its report ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// Messages the proxy sent.
    pub sent: i64,
    /// Messages the verifying sink received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<i64>,
    /// Delivered per second over the measured window.
    pub rate_per_second: i64,
    /// p99 latency, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<i64>,
    /// Error rate, permille.
    pub error_rate_permille: i64,
}

/// Display phase.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Not yet seen by the operator.
    #[default]
    Pending,
    /// Creating PostgreSQL, the proxy, the sink and observability; waiting for them to be ready.
    Provisioning,
    /// Registering tenants and accounts, then starting the clients before the start barrier.
    SettingUp,
    /// Clients are generating load (warm-up included).
    Running,
    /// Load is over; waiting for the queue to drain, then computing the verdict.
    Analyzing,
    /// Finished with every threshold met.
    Succeeded,
    /// Finished with a breach, a deadline or a failure.
    Failed,
}

impl Phase {
    /// Whether the run has a verdict.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

/// `True`, `False` or `Unknown`, as in every Kubernetes condition.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

/// A Kubernetes-style condition.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type (the list's key).
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// One CamelCase word.
    pub reason: String,
    /// One sentence.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    /// The generation the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Aggregated run figures.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// Unix second of the reading.
    #[serde(default)]
    pub observed_at: i64,
    /// Messages the clients generated.
    #[serde(default)]
    pub generated: i64,
    /// Messages the proxy's SMTP side got accepted (`gmp_sent_total`).
    #[serde(default)]
    pub sent: i64,
    /// Messages that ended in error: final `error` and `bounce` reports received by the clients.
    #[serde(default)]
    pub errors: i64,
    /// Deferrals (`gmp_deferred_total`).
    #[serde(default)]
    pub deferred: i64,
    /// Unsent messages (`gmp_pending_messages`, max over replicas).
    #[serde(default)]
    pub pending: i64,
    /// Messages received by the sink: the verifying sink's count, or Mailpit's message count
    /// (duplicates included); absent when the sink did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<i64>,
    /// Duplicate deliveries seen by the sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<i64>,
    /// Attachments whose content did not match their hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_mismatches: Option<i64>,
    /// Delivered per second (the verifying sink's count) since the load started, after the warm-up
    /// once past it; without a verifying sink, the proxy's sent per second (shown, never judged).
    #[serde(default)]
    pub rate_per_second: i64,
    /// What the latency figures measure: `Sink` (end to end, judged) or `Proxy` (the proxy's
    /// enqueue→accept histogram, shown only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_source: Option<LatencySource>,
    /// Latency p50, ms (sink end-to-end, else the proxy's enqueue→accept histogram).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<i64>,
    /// Latency p95, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p95_ms: Option<i64>,
    /// Latency p99, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<i64>,
    /// Latency maximum, ms (sink only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_max_ms: Option<i64>,
    /// Clients' attachment cache hit rate, permille (mean over clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hit_rate_permille: Option<i64>,
    /// errors / (sent + errors), permille, over the measured window.
    #[serde(default)]
    pub error_rate_permille: i64,
    /// delivered / generated, permille.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_ratio_permille: Option<i64>,
}

/// Where latency figures come from.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencySource {
    /// The verifying sink: client creation stamp to acceptance at the sink (end to end).
    Sink,
    /// The proxy's enqueue→accept histogram, bucket-interpolated; not end to end.
    Proxy,
}

/// Figures of one tenant.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TenantFigures {
    /// Tenant name.
    pub name: String,
    /// Client pods answering `/stats`.
    #[serde(default)]
    pub clients: i32,
    /// Messages generated by its clients.
    #[serde(default)]
    pub generated: i64,
    /// Messages sent by the proxy.
    #[serde(default)]
    pub sent: i64,
    /// Final error reports received by its clients.
    #[serde(default)]
    pub errors: i64,
    /// Messages received by the sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<i64>,
    /// Sink latency p99, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<i64>,
    /// Clients' cache hit rate, permille.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hit_rate_permille: Option<i64>,
}

/// The outcome of one threshold.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdResult {
    /// Threshold field name (`maxErrorRatePermille`, …).
    pub name: String,
    /// The limit from the spec.
    pub limit: i64,
    /// The observed value; absent when it could not be measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<i64>,
    /// Whether it held: `Passed` or `Disabled`.
    pub passed: bool,
    /// `Passed`, `Breached`, `NotMeasured` (fails the run) or `Disabled` (switched off in the spec).
    #[serde(default)]
    pub outcome: ThresholdOutcome,
}

/// What became of one threshold.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThresholdOutcome {
    /// Measured and within its limit.
    #[default]
    Passed,
    /// Measured and beyond its limit.
    Breached,
    /// Its figure could not be measured (no verifying sink, no latency stamp): fails the run.
    NotMeasured,
    /// Switched off in `spec.thresholds.disabled`: never fails the run.
    Disabled,
}

impl PressureTestStatus {
    /// The condition of this type, if set.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}
