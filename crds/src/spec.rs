//! The `PressureTest` kind and its spec: tenants, the load window, thresholds, timeouts and what to
//! keep at the end. The system under test and the observability stack are in [`sut`].
//!
//! Every field has a default except `tenants`, so `{tenants: [{name: standard, profile: standard}]}`
//! is a complete spec. Integers only: durations in seconds, rates in permille.

pub mod baseline;
pub mod placement;
pub mod settings;
pub mod stages;
pub mod sut;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::profiles::{Profile, ProfileRates};
use crate::status::PressureTestStatus;
use placement::PlacementSpec;
use sut::{GrafanaSpec, PostgresSpec, PrometheusSpec, ProxySpec, ResourcesSpec, SinkSpec};

/// Default image of the simulated client, the verifying sink and the setup step.
pub const DEFAULT_CLIENT_IMAGE: &str = "mail-pressure/client-sim:0.1.0";

/// CEL rule: the definition of a run (tenants, window, thresholds, the spec-wide placement that
/// the clients use, the run number, the load's stages) cannot change while it is active.
const SPEC_LOCK_RULE: &str = "!has(oldSelf.status) || !has(oldSelf.status.phase) || \
!(oldSelf.status.phase in ['SettingUp', 'Running', 'Analyzing']) || \
(self.spec.tenants == oldSelf.spec.tenants && self.spec.durationSeconds == oldSelf.spec.durationSeconds \
&& self.spec.warmupSeconds == oldSelf.spec.warmupSeconds && self.spec.thresholds == oldSelf.spec.thresholds \
&& has(self.spec.placement) == has(oldSelf.spec.placement) \
&& (!has(self.spec.placement) || self.spec.placement == oldSelf.spec.placement) \
&& (has(self.spec.runNumber) ? self.spec.runNumber : 0) == (has(oldSelf.spec.runNumber) ? oldSelf.spec.runNumber : 0) \
&& has(self.spec.stages) == has(oldSelf.spec.stages) \
&& (!has(self.spec.stages) || self.spec.stages == oldSelf.spec.stages))";

/// CEL rule: the proxies' database connections at their most replicas must leave PostgreSQL spare ones
/// ([`sut::PROXY_DEFAULT_DB_CONNECTIONS`], [`sut::POSTGRES_SPARE_CONNECTIONS`]).
pub(crate) const DB_CONNECTIONS_RULE: &str = "(has(self.proxy.settings) && has(self.proxy.settings.database) \
&& has(self.proxy.settings.database.maxConnections) ? self.proxy.settings.database.maxConnections : 10) \
* (self.proxy.hpa.enabled ? self.proxy.hpa.maxReplicas : self.proxy.replicas) + 5 <= self.postgres.tuning.maxConnections";

/// What the CRD and `validate` say when [`DB_CONNECTIONS_RULE`] fails.
pub const DB_CONNECTIONS_MESSAGE: &str = "proxy.settings.database.maxConnections (default 10) times the most proxy replicas (hpa.maxReplicas, or replicas without the HPA), plus 5 spare, must not exceed postgres.tuning.maxConnections";

/// CEL rule: a new run (a changed `runNumber`) does not start aborted.
const RERUN_ABORT_RULE: &str = "(has(self.runNumber) ? self.runNumber : 0) == \
(has(oldSelf.runNumber) ? oldSelf.runNumber : 0) || !has(self.abort) || !self.abort";

/// A pressure test of the mail proxy: the environment to build, the load to run and the verdict rules.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "pressure.mailproxy.dev",
    version = "v1alpha1",
    kind = "PressureTest",
    namespaced,
    status = "PressureTestStatus",
    derive = "PartialEq",
    shortname = "pt",
    category = "pressure",
    doc = "A pressure test of the multi-tenant mail proxy: environment, load, thresholds and verdict.",
    validation = Rule::new(SPEC_LOCK_RULE).message("tenants, durationSeconds, warmupSeconds, thresholds, placement, runNumber and stages cannot change while the run is active; wait for it to finish (or abort it) first"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Verdict", type_ = "string", json_path = ".status.conditions[?(@.type=='Succeeded')].reason"),
    printcolumn(name = "Tenants", type_ = "integer", json_path = ".status.tenants"),
    printcolumn(name = "Sent", type_ = "integer", json_path = ".status.figures.sent"),
    printcolumn(name = "Msg/s", type_ = "integer", json_path = ".status.figures.ratePerSecond"),
    printcolumn(name = "P99(ms)", type_ = "integer", json_path = ".status.figures.latencyP99Ms"),
    printcolumn(name = "Err‰", type_ = "integer", json_path = ".status.figures.errorRatePermille"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Duration", type_ = "integer", json_path = ".spec.durationSeconds", priority = 1, description = "Planned load duration in seconds"),
    printcolumn(name = "RunID", type_ = "string", json_path = ".status.runId", priority = 1),
    printcolumn(name = "Run", type_ = "integer", json_path = ".status.runNumber", priority = 1, description = "spec.runNumber of the current run")
)]
#[x_kube(validation = Rule::new("!self.grafana.enabled || self.prometheus.enabled").message("grafana.enabled needs prometheus.enabled"))]
#[x_kube(validation = Rule::new(DB_CONNECTIONS_RULE).message(DB_CONNECTIONS_MESSAGE))]
#[x_kube(validation = Rule::new(RERUN_ABORT_RULE).message("a new run (runNumber changed) would start aborted: set abort to false in the same change"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PressureTestSpec {
    /// Simulated tenants; each gets its own client Deployment, proxy tenant and SMTP account.
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub tenants: Vec<TenantSpec>,
    /// Seconds of load after the warm-up, measured for the verdict.
    #[serde(default = "d_duration")]
    #[schemars(range(min = 10, max = 86400))]
    pub duration_seconds: i32,
    /// Seconds of load before measurement starts; excluded from throughput and error rate.
    #[serde(default = "d_warmup")]
    #[schemars(range(min = 0, max = 3600))]
    pub warmup_seconds: i32,
    /// Seconds between the clients being created and the load starting (the start barrier).
    #[serde(default = "d_start_delay")]
    #[schemars(range(min = 5, max = 3600))]
    pub start_delay_seconds: i32,
    /// The shape of the load: each stage moves the clients' rate linearly to its `ratePercent`
    /// of the tenants' rates over its `durationSeconds` (from 0 % before the first); the last
    /// rate holds until the load stops. Counted from the load's start, warm-up included. Empty:
    /// the full rate throughout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub stages: Vec<stages::StageSpec>,
    /// Seed of the clients' random draws (tenant index added), for reproducible runs.
    #[serde(default = "d_seed")]
    #[schemars(range(min = 0))]
    pub seed: i32,
    /// Image of `client-sim`: the clients, the setup Job and the verifying sink.
    #[serde(default = "d_client_image")]
    #[schemars(length(min = 1, max = 253))]
    pub client_image: String,
    /// The mail proxy under test.
    #[serde(default)]
    pub proxy: ProxySpec,
    /// The proxy's PostgreSQL database.
    #[serde(default)]
    pub postgres: PostgresSpec,
    /// The SMTP sink the proxy delivers to.
    #[serde(default)]
    pub sink: SinkSpec,
    /// The bundled Prometheus.
    #[serde(default)]
    pub prometheus: PrometheusSpec,
    /// The bundled Grafana.
    #[serde(default)]
    pub grafana: GrafanaSpec,
    /// Pass/fail limits applied when the run ends.
    #[serde(default)]
    pub thresholds: ThresholdsSpec,
    /// Deadlines of each wait.
    #[serde(default)]
    pub timeouts: TimeoutsSpec,
    /// What stays in the cluster once the run has a verdict.
    #[serde(default)]
    pub keep_on_finish: KeepPolicy,
    /// The run to do. Changing it on a finished PressureTest starts a new run on the same
    /// environment (PostgreSQL keeps its data; the proxy, the sink and the clients start afresh)
    /// under a new run id; the finished run's summary moves to `status.history`. Locked while a
    /// run is active.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub run_number: i32,
    /// Ends the run now: the clients stop generating, the queue drains, and the run ends
    /// `Succeeded=False` with reason `Aborted` and its partial figures. May be set while the run
    /// is active (the only change the lock allows besides tuning); final for this run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort: bool,
    /// Seconds after the verdict at which the operator deletes this PressureTest, and with it
    /// everything it owns (as a Job's `ttlSecondsAfterFinished`). Unset: kept until deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 31_536_000))]
    pub ttl_seconds_after_finished: Option<i32>,
    /// Which runs the TTL deletes: `Always`, or `OnSuccess` (a failed run stays for inspection).
    #[serde(default)]
    pub ttl_applies_to: TtlScope,
    /// What becomes of the run's report ConfigMap (`status.report`) when this PressureTest is
    /// deleted: `Delete` (owned by it, collected with it) or `Retain` (left in the namespace,
    /// unowned, so the results outlive the cleanup). May change at any time.
    #[serde(default)]
    pub report_retention: ReportRetention,
    /// An earlier run to compare this one with at its end: the deltas go to
    /// `status.comparison`, and the `Regressed` condition says whether a figure is beyond its
    /// tolerance. The local run takes a report file instead (`--baseline FILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<baseline::BaselineSpec>,
    /// Scheduling, pull secrets and pod metadata of every pod of the run; each component's own
    /// `placement` replaces it field by field (see [`placement`]).
    #[serde(default)]
    pub placement: PlacementSpec,
}

/// One simulated tenant: a profile and/or explicit rates, and how many client pods.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[x_kube(validation = Rule::new("has(self.profile) || (has(self.rates) && has(self.rates.messagesPerSync) && has(self.rates.cacheHitRatePermille) && has(self.rates.dndProbabilityPermille) && has(self.rates.largeAttachmentRatePermille))").message("set a profile, or all four rates"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSpec {
    /// Tenant name: the proxy tenant id and part of the client object names (a DNS label).
    #[schemars(
        length(min = 1, max = 30),
        regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// A seed profile supplying the rates not given in `rates`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// Explicit rates, overriding the profile's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rates: Option<RatesSpec>,
    /// Client pods for this tenant.
    #[serde(default = "d_one")]
    #[schemars(range(min = 1, max = 50))]
    pub clients: i32,
    /// Requests and limits of each client pod (default 100m/128Mi, limit 500m/512Mi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSpec>,
    /// Scheduling and pod metadata of this tenant's client pods, over `spec.placement`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementSpec>,
}

/// Client rates in integers; probabilities in permille (50 = 5 %).
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RatesSpec {
    /// Average messages returned per sync call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub messages_per_sync: Option<i32>,
    /// Probability of reusing cached attachment content, permille.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub cache_hit_rate_permille: Option<i32>,
    /// Probability of a do-not-disturb answer, permille.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub dnd_probability_permille: Option<i32>,
    /// Probability of a 10 MiB+ attachment, permille.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub large_attachment_rate_permille: Option<i32>,
}

/// Pass/fail limits, judged by [`crate::verdict`] the same way by the operator and the local
/// runner. The verdict is `ThresholdsPassed` only when every threshold holds. A threshold whose
/// figure cannot be measured (no verifying sink, no latency stamp) fails the run with
/// `NotMeasured` unless it is listed in `disabled`.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThresholdsSpec {
    /// Largest share of messages ending in error (final `error` or `bounce` reports received by the
    /// clients), permille of those sent plus errored, over the measured window.
    #[serde(default = "d_err")]
    #[schemars(range(min = 0, max = 1000))]
    pub max_error_rate_permille: i32,
    /// Largest end-to-end p99 latency (client creation stamp to acceptance at the verifying sink),
    /// milliseconds.
    #[serde(default = "d_p99")]
    #[schemars(range(min = 1, max = 86400000))]
    pub max_p99_latency_ms: i32,
    /// Smallest throughput after the warm-up: messages delivered per second, counted by the
    /// verifying sink over the measured window.
    #[serde(default = "d_one")]
    #[schemars(range(min = 0, max = 1000000))]
    pub min_throughput_per_second: i32,
    /// Smallest share of generated messages delivered to the verifying sink, permille.
    #[serde(default = "d_ratio")]
    #[schemars(range(min = 0, max = 1000))]
    pub min_delivered_ratio_permille: i32,
    /// Most messages lost: generated (clients) − distinct deliveries at the verifying sink
    /// (received − duplicates) − final error reports (clients), over the whole run.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000000000))]
    pub max_lost_messages: i32,
    /// Most duplicate deliveries seen by the verifying sink.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000000000))]
    pub max_duplicates: i32,
    /// Most attachments whose content did not match their MD5 at the verifying sink.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000000000))]
    pub max_attachment_mismatches: i32,
    /// Thresholds switched off: listed in the result as `Disabled`, never failing the run, even
    /// when their figure cannot be measured (for example `[maxP99LatencyMs, minThroughputPerSecond,
    /// minDeliveredRatioPermille, maxLostMessages, maxDuplicates, maxAttachmentMismatches]` with no
    /// sink figures; `[maxP99LatencyMs, maxDuplicates, maxAttachmentMismatches]` with Mailpit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub disabled: Vec<ThresholdName>,
}

/// The name of a threshold, as written in `spec.thresholds` (and in `spec.thresholds.disabled`).
#[derive(
    JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "camelCase")]
pub enum ThresholdName {
    /// `maxErrorRatePermille`.
    MaxErrorRatePermille,
    /// `maxP99LatencyMs`.
    MaxP99LatencyMs,
    /// `minThroughputPerSecond`.
    MinThroughputPerSecond,
    /// `minDeliveredRatioPermille`.
    MinDeliveredRatioPermille,
    /// `maxLostMessages`.
    MaxLostMessages,
    /// `maxDuplicates`.
    MaxDuplicates,
    /// `maxAttachmentMismatches`.
    MaxAttachmentMismatches,
}

impl ThresholdName {
    /// Every threshold, in the order of the spec and of the results.
    pub const ALL: [ThresholdName; 7] = [
        ThresholdName::MaxErrorRatePermille,
        ThresholdName::MaxP99LatencyMs,
        ThresholdName::MinThroughputPerSecond,
        ThresholdName::MinDeliveredRatioPermille,
        ThresholdName::MaxLostMessages,
        ThresholdName::MaxDuplicates,
        ThresholdName::MaxAttachmentMismatches,
    ];

    /// The field name, as in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdName::MaxErrorRatePermille => "maxErrorRatePermille",
            ThresholdName::MaxP99LatencyMs => "maxP99LatencyMs",
            ThresholdName::MinThroughputPerSecond => "minThroughputPerSecond",
            ThresholdName::MinDeliveredRatioPermille => "minDeliveredRatioPermille",
            ThresholdName::MaxLostMessages => "maxLostMessages",
            ThresholdName::MaxDuplicates => "maxDuplicates",
            ThresholdName::MaxAttachmentMismatches => "maxAttachmentMismatches",
        }
    }

    /// Whether the threshold is about delivery (its breach alone is a `DeliveryMismatch`).
    pub fn is_delivery(self) -> bool {
        matches!(
            self,
            ThresholdName::MinDeliveredRatioPermille
                | ThresholdName::MaxLostMessages
                | ThresholdName::MaxDuplicates
                | ThresholdName::MaxAttachmentMismatches
        )
    }
}

impl ThresholdsSpec {
    /// The limit of one threshold.
    pub fn limit(&self, name: ThresholdName) -> i32 {
        match name {
            ThresholdName::MaxErrorRatePermille => self.max_error_rate_permille,
            ThresholdName::MaxP99LatencyMs => self.max_p99_latency_ms,
            ThresholdName::MinThroughputPerSecond => self.min_throughput_per_second,
            ThresholdName::MinDeliveredRatioPermille => self.min_delivered_ratio_permille,
            ThresholdName::MaxLostMessages => self.max_lost_messages,
            ThresholdName::MaxDuplicates => self.max_duplicates,
            ThresholdName::MaxAttachmentMismatches => self.max_attachment_mismatches,
        }
    }

    /// Whether the spec switches this threshold off.
    pub fn is_disabled(&self, name: ThresholdName) -> bool {
        self.disabled.contains(&name)
    }
}

/// Deadlines, in seconds; each ends the run as Failed with the waiting step as reason.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeoutsSpec {
    /// From creation until PostgreSQL, proxy, sink and observability are ready.
    #[serde(default = "d_600")]
    #[schemars(range(min = 10, max = 86400))]
    pub provisioning_seconds: i32,
    /// For the setup Job to register tenants and accounts.
    #[serde(default = "d_300")]
    #[schemars(range(min = 10, max = 86400))]
    pub setup_seconds: i32,
    /// After the load ends, for pending messages to drain before the verdict.
    #[serde(default = "d_300")]
    #[schemars(range(min = 0, max = 86400))]
    pub drain_seconds: i32,
    /// How long a pod may fail to start (image pull, scheduling, crash loop) before the run fails.
    #[serde(default = "d_120")]
    #[schemars(range(min = 0, max = 3600))]
    pub pod_start_grace_seconds: i32,
}

/// A part of the run that has pods of its own, for [`PressureTestSpec::placement_of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component<'a> {
    /// The mail proxy.
    Proxy,
    /// PostgreSQL.
    Postgres,
    /// The SMTP sink (verifying sink or Mailpit).
    Sink,
    /// The bundled Prometheus.
    Prometheus,
    /// The bundled Grafana.
    Grafana,
    /// The client pods of one tenant.
    Clients(&'a str),
    /// The setup Job (always the spec-wide placement).
    Setup,
}

/// Which finished runs `ttlSecondsAfterFinished` deletes.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtlScope {
    /// Every finished run, whatever its verdict.
    #[default]
    Always,
    /// Only runs that end `Succeeded=True`; a failed run stays until deleted.
    OnSuccess,
}

/// What becomes of a run's report when its PressureTest is deleted.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReportRetention {
    /// The report ConfigMap is owned by the PressureTest and deleted with it.
    #[default]
    Delete,
    /// The report ConfigMap has no owner: it stays until someone deletes it.
    Retain,
}

/// What to keep once the run has a verdict.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepPolicy {
    /// Keep every object running, for inspection.
    #[default]
    Everything,
    /// Delete the workloads; keep the PressureTest (its status holds the summary), the Secret and
    /// the PostgreSQL volume.
    ResultsOnly,
}

impl Default for ThresholdsSpec {
    fn default() -> Self {
        Self {
            max_error_rate_permille: d_err(),
            max_p99_latency_ms: d_p99(),
            min_throughput_per_second: d_one(),
            min_delivered_ratio_permille: d_ratio(),
            max_lost_messages: 0,
            max_duplicates: 0,
            max_attachment_mismatches: 0,
            disabled: Vec::new(),
        }
    }
}

impl Default for TimeoutsSpec {
    fn default() -> Self {
        Self {
            provisioning_seconds: d_600(),
            setup_seconds: d_300(),
            drain_seconds: d_300(),
            pod_start_grace_seconds: d_120(),
        }
    }
}

impl TenantSpec {
    /// A tenant with a profile, one client and no overrides.
    pub fn from_profile(name: &str, profile: Profile) -> Self {
        Self {
            name: name.into(),
            profile: Some(profile),
            rates: None,
            clients: 1,
            resources: None,
            placement: None,
        }
    }

    /// The effective rates: the profile's (or the standard profile's), overridden by `rates`.
    pub fn effective_rates(&self) -> ProfileRates {
        let base = self.profile.unwrap_or(Profile::Standard).rates();
        let r = self.rates.clone().unwrap_or_default();
        ProfileRates {
            messages_per_sync: r.messages_per_sync.unwrap_or(base.messages_per_sync),
            cache_hit_rate_permille: r
                .cache_hit_rate_permille
                .unwrap_or(base.cache_hit_rate_permille),
            dnd_probability_permille: r
                .dnd_probability_permille
                .unwrap_or(base.dnd_probability_permille),
            large_attachment_rate_permille: r
                .large_attachment_rate_permille
                .unwrap_or(base.large_attachment_rate_permille),
        }
    }
}

impl PressureTestSpec {
    /// A spec with these tenants and every other field at its default.
    pub fn with_tenants(tenants: Vec<TenantSpec>) -> Self {
        Self {
            tenants,
            duration_seconds: d_duration(),
            warmup_seconds: d_warmup(),
            start_delay_seconds: d_start_delay(),
            stages: Vec::new(),
            seed: d_seed(),
            client_image: d_client_image(),
            proxy: ProxySpec::default(),
            postgres: PostgresSpec::default(),
            sink: SinkSpec::default(),
            prometheus: PrometheusSpec::default(),
            grafana: GrafanaSpec::default(),
            thresholds: ThresholdsSpec::default(),
            timeouts: TimeoutsSpec::default(),
            keep_on_finish: KeepPolicy::default(),
            run_number: 0,
            abort: false,
            ttl_seconds_after_finished: None,
            ttl_applies_to: TtlScope::default(),
            report_retention: ReportRetention::default(),
            baseline: None,
            placement: PlacementSpec::default(),
        }
    }

    /// The own `placement` of each component section, by its field name (tenants have theirs).
    pub fn component_placements(&self) -> [(&'static str, &Option<PlacementSpec>); 5] {
        [
            ("proxy", &self.proxy.placement),
            ("postgres", &self.postgres.placement),
            ("sink", &self.sink.placement),
            ("prometheus", &self.prometheus.placement),
            ("grafana", &self.grafana.placement),
        ]
    }

    /// Whether any placement is set, spec-wide or on a component.
    pub fn placement_set(&self) -> bool {
        let none = PlacementSpec::default();
        self.placement != none
            || self
                .component_placements()
                .into_iter()
                .map(|(_, p)| p)
                .chain(self.tenants.iter().map(|t| &t.placement))
                .any(|p| p.as_ref().is_some_and(|p| *p != none))
    }

    /// Where the pods of `component` go: its own placement over `spec.placement`. A tenant that
    /// is not in the spec gets the default.
    pub fn placement_of(&self, component: Component<'_>) -> PlacementSpec {
        let own = match component {
            Component::Proxy => self.proxy.placement.as_ref(),
            Component::Postgres => self.postgres.placement.as_ref(),
            Component::Sink => self.sink.placement.as_ref(),
            Component::Prometheus => self.prometheus.placement.as_ref(),
            Component::Grafana => self.grafana.placement.as_ref(),
            Component::Clients(tenant) => self
                .tenants
                .iter()
                .find(|t| t.name == tenant)
                .and_then(|t| t.placement.as_ref()),
            Component::Setup => None,
        };
        own.map_or_else(|| self.placement.clone(), |p| p.over(&self.placement))
    }

    /// The seed's four tenants (high-volume, standard, newsletter, documents), one client each.
    pub fn seed_default() -> Self {
        Self::with_tenants(
            Profile::ALL
                .iter()
                .map(|p| TenantSpec::from_profile(p.name(), *p))
                .collect(),
        )
    }
}

fn d_duration() -> i32 {
    300
}
fn d_warmup() -> i32 {
    30
}
fn d_start_delay() -> i32 {
    30
}
fn d_seed() -> i32 {
    1
}
fn d_one() -> i32 {
    1
}
fn d_err() -> i32 {
    10
}
fn d_p99() -> i32 {
    60_000
}
fn d_ratio() -> i32 {
    990
}
fn d_600() -> i32 {
    600
}
fn d_300() -> i32 {
    300
}
fn d_120() -> i32 {
    120
}
fn d_client_image() -> String {
    DEFAULT_CLIENT_IMAGE.into()
}
