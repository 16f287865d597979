//! The system under test and its surroundings: the proxy (with HPA and `GMP_*` tuning),
//! PostgreSQL (with the seed's server parameters), the SMTP sink, Prometheus and Grafana.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::placement::PlacementSpec;
use super::settings::ProxySettings;

/// Default image of the mail proxy.
pub const DEFAULT_PROXY_IMAGE: &str = "mail-pressure/mailproxy:0.1.0";
/// Default image of PostgreSQL.
pub const DEFAULT_POSTGRES_IMAGE: &str = "postgres:16-alpine";
/// Default image of Prometheus.
pub const DEFAULT_PROMETHEUS_IMAGE: &str = "prom/prometheus:v2.53.0";
/// Default image of Grafana.
pub const DEFAULT_GRAFANA_IMAGE: &str = "grafana/grafana:11.1.0";
/// Default image of the mail catcher (`sink.kind: Mailpit`, and its alias `MailHog`): Mailpit,
/// the maintained, API-compatible successor of MailHog (SMTP 1025, web and API 8025).
pub const DEFAULT_MAILPIT_IMAGE: &str = "axllent/mailpit:v1.33.1";

/// The proxy container's default requests and limits: cpu and memory requests, cpu and memory
/// limits (the seed's).
pub const PROXY_DEFAULT_RESOURCES: [&str; 4] = ["250m", "256Mi", "1", "512Mi"];

/// Database connections of a proxy replica when `settings.database.maxConnections` is unset (the
/// proxy's own default); the operator and the local run always pass the value.
pub const PROXY_DEFAULT_DB_CONNECTIONS: i64 = 10;

/// Size in MiB of the proxy's disk cache tier when `settings.diskCache.maxMb` is unset (the
/// proxy's own default); sizes the cache volume.
pub const DEFAULT_DISK_CACHE_MB: i64 = 500;

/// Connections PostgreSQL must keep beyond the proxies' (its superuser-reserved ones and a
/// `psql` for whoever investigates).
pub const POSTGRES_SPARE_CONNECTIONS: i64 = 5;

/// The proxy's memory limit in MiB as a CEL expression: `resources.memoryLimit`, else the
/// default 512Mi.
macro_rules! proxy_memory_mib {
    () => {
        "((has(self.resources) && has(self.resources.memoryLimit) ? quantity(self.resources.memoryLimit).asInteger() : 536870912) / 1048576)"
    };
}

/// The two memory budgets (explicit, else the operator's shares) must leave a quarter of the
/// memory limit to the rest of the process: [`ProxySpec::memory_plan`] in CEL.
const PROXY_MEMORY_RULE: &str = concat!(
    "!has(self.settings) || ((has(self.settings.attachments) && has(self.settings.attachments.memoryBudgetMb) ? self.settings.attachments.memoryBudgetMb : ",
    proxy_memory_mib!(),
    " * 2 / 5) + (has(self.settings.cache) && has(self.settings.cache.memoryMaxMb) ? self.settings.cache.memoryMaxMb : ",
    proxy_memory_mib!(),
    " / 10)) * 4 <= ",
    proxy_memory_mib!(),
    " * 3"
);

/// What the CRD and `validate` say when [`PROXY_MEMORY_RULE`] fails.
pub const PROXY_MEMORY_MESSAGE: &str = "settings.attachments.memoryBudgetMb and settings.cache.memoryMaxMb (each 40 % and 10 % of the memory limit when unset) must together stay within three quarters of resources.memoryLimit (default 512Mi): raise the limit or lower them";

/// The proxy's memory limit and how much of it the attachment budget and the memory cache take.
/// Unset, they are 40 % and 10 % of the limit: the proxy's own defaults (256 + 50 MiB) assume a
/// bigger machine; under a 512Mi limit, attachments at 100 MB/s peaked at 287 MiB with them
/// (`bench/attachments.py`), so the shares leave room for the rest of the process and the
/// allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPlan {
    /// The container's memory limit, MiB.
    pub limit_mib: i64,
    /// `GMP_ATTACHMENT_MEMORY_BUDGET_MB`: the setting, else 40 % of the limit (at least 1).
    pub attachment_budget_mb: i64,
    /// `GMP_CACHE_MEMORY_MAX_MB`: the setting, else 10 % of the limit (at least 1).
    pub cache_memory_mb: i64,
}

impl MemoryPlan {
    /// True when the two budgets leave at least a quarter of the limit to the rest of the
    /// process (the CRD's rule on `spec.proxy`).
    pub fn fits(&self) -> bool {
        (self.attachment_budget_mb + self.cache_memory_mb) * 4 <= self.limit_mib * 3
    }
}

/// Requests and limits as Kubernetes quantities (`250m`, `512Mi`); each unset one uses the
/// component's default.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourcesSpec {
    /// CPU request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?m?$"), length(max = 20))]
    pub cpu_request: Option<String>,
    /// CPU limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?m?$"), length(max = 20))]
    pub cpu_limit: Option<String>,
    /// Memory request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$"), length(max = 20))]
    pub memory_request: Option<String>,
    /// Memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$"), length(max = 20))]
    pub memory_limit: Option<String>,
}

/// The mail proxy Deployment.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[x_kube(validation = Rule::new(PROXY_MEMORY_RULE).message(PROXY_MEMORY_MESSAGE))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxySpec {
    /// Container image.
    #[serde(default = "d_proxy_image")]
    #[schemars(length(min = 1, max = 253))]
    pub image: String,
    /// Replicas when the HPA is disabled.
    #[serde(default = "d_one")]
    #[schemars(range(min = 1, max = 50))]
    pub replicas: i32,
    /// Horizontal pod autoscaler on CPU.
    #[serde(default)]
    pub hpa: HpaSpec,
    /// The seed's `GMP_*` tuning knobs.
    #[serde(default)]
    pub tuning: ProxyTuning,
    /// Every other documented `GMP_*` setting that makes sense in a cluster, by group; unset
    /// ones keep the proxy's defaults.
    #[serde(default, skip_serializing_if = "ProxySettings::is_empty")]
    pub settings: ProxySettings,
    /// Requests and limits (default 250m/256Mi, limit 1/512Mi as the seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSpec>,
    /// Scheduling and pod metadata, over `spec.placement` field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementSpec>,
}

/// autoscaling/v2 settings for the proxy.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("hpa.minReplicas must not exceed hpa.maxReplicas"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaSpec {
    /// Create the HorizontalPodAutoscaler (otherwise `replicas` is fixed).
    #[serde(default = "d_true")]
    pub enabled: bool,
    /// Fewest replicas.
    #[serde(default = "d_one")]
    #[schemars(range(min = 1, max = 50))]
    pub min_replicas: i32,
    /// Most replicas.
    #[serde(default = "d_four")]
    #[schemars(range(min = 1, max = 50))]
    pub max_replicas: i32,
    /// Average CPU utilisation to aim for, percent of the request.
    #[serde(default = "d_cpu")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_percent: i32,
    /// How long the HPA waits, with the load lower, before it removes replicas
    /// (`behavior.scaleDown.stabilizationWindowSeconds`). Unset keeps Kubernetes' default of
    /// 300 s, longer than many runs: a run that wants to see the scale-in sets it shorter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub scale_down_stabilization_seconds: Option<i32>,
}

/// The proxy's dispatch and sync tuning (`GMP_*` variables).
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyTuning {
    /// Idle dispatcher poll, milliseconds (`GMP_SEND_LOOP_INTERVAL`, in seconds).
    #[serde(default = "d_send_loop")]
    #[schemars(range(min = 50, max = 60000))]
    pub send_loop_interval_ms: i32,
    /// Messages per SMTP batch per account (`GMP_BATCH_SIZE_PER_ACCOUNT`).
    #[serde(default = "d_batch")]
    #[schemars(range(min = 1, max = 10000))]
    pub batch_size_per_account: i32,
    /// SMTP connections per pool key (`GMP_POOL_SIZE`).
    #[serde(default = "d_pool")]
    #[schemars(range(min = 1, max = 1000))]
    pub pool_size: i32,
    /// Seconds between tenant syncs (`GMP_SYNC_INTERVAL`).
    #[serde(default = "d_sync")]
    #[schemars(range(min = 1, max = 3600))]
    pub sync_interval_seconds: i32,
    /// Log level (`GMP_LOG_LEVEL`).
    #[serde(default)]
    pub log_level: LogLevel,
}

/// `GMP_LOG_LEVEL` values.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// Everything.
    Debug,
    /// Normal operation.
    Info,
    /// Problems only (the seed's choice).
    #[default]
    Warning,
    /// Failures only.
    Error,
}

/// The PostgreSQL StatefulSet.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostgresSpec {
    /// Container image.
    #[serde(default = "d_pg_image")]
    #[schemars(length(min = 1, max = 253))]
    pub image: String,
    /// Size of the data volume.
    #[serde(default = "d_storage")]
    #[schemars(regex(pattern = r"^[0-9]+(Ki|Mi|Gi|Ti)$"), length(max = 20))]
    pub storage: String,
    /// Where the data lives: a PersistentVolumeClaim (default), or an emptyDir for clusters
    /// without a volume provisioner (data is lost with the pod).
    #[serde(default)]
    pub volume: PostgresVolume,
    /// Storage class of the data volume (cluster default when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,
    /// Server parameters, passed as `-c name=value`.
    #[serde(default)]
    pub tuning: PostgresTuning,
    /// Requests and limits (default 250m/512Mi, limit 2/1Gi as the seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSpec>,
    /// Scheduling and pod metadata, over `spec.placement` field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementSpec>,
}

/// Kinds of PostgreSQL data volume.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PostgresVolume {
    /// A claim from the StatefulSet's volume claim template, of `storage` size.
    #[default]
    PersistentVolumeClaim,
    /// An emptyDir sized by `storage`.
    EmptyDir,
}

/// The seed's PostgreSQL parameters.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostgresTuning {
    /// `max_connections`.
    #[serde(default = "d_max_conn")]
    #[schemars(range(min = 10, max = 10000))]
    pub max_connections: i32,
    /// `shared_buffers`, MiB.
    #[serde(default = "d_shared")]
    #[schemars(range(min = 1, max = 1048576))]
    pub shared_buffers_mb: i32,
    /// `work_mem`, MiB.
    #[serde(default = "d_work")]
    #[schemars(range(min = 1, max = 1048576))]
    pub work_mem_mb: i32,
    /// `maintenance_work_mem`, MiB.
    #[serde(default = "d_maint")]
    #[schemars(range(min = 1, max = 1048576))]
    pub maintenance_work_mem_mb: i32,
    /// `effective_cache_size`, MiB.
    #[serde(default = "d_cache")]
    #[schemars(range(min = 1, max = 1048576))]
    pub effective_cache_size_mb: i32,
    /// `synchronous_commit` (the seed turns it off).
    #[serde(default)]
    pub synchronous_commit: bool,
}

/// The SMTP sink.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinkSpec {
    /// Which sink: `Verifying` (our sink: counts, duplicates, attachments, latency), `Mailpit`
    /// (a mail catcher: its message count only), or `MailHog`, an alias of `Mailpit` kept so that
    /// existing specs still work (the same Mailpit deployment; MailHog is unmaintained).
    #[serde(default)]
    pub kind: SinkKind,
    /// Image override (default: `clientImage` for Verifying, `axllent/mailpit:v1.33.1` for
    /// Mailpit and its alias MailHog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub image: Option<String>,
    /// Requests and limits (default 250m/256Mi, limit 1/1Gi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSpec>,
    /// Scheduling and pod metadata, over `spec.placement` field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementSpec>,
}

/// Sink implementations.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SinkKind {
    /// `client-sim sink`: verifies content and measures end-to-end latency per tenant.
    #[default]
    Verifying,
    /// Mailpit, a mail catcher: delivered is its message count (`GET /api/v1/messages`, `total`);
    /// it cannot check attachments, tell duplicates apart or time delivery, so duplicates,
    /// attachment mismatches and latency are not measured (and the delivered count includes any
    /// duplicate).
    Mailpit,
    /// Alias of `Mailpit`, kept so that specs written for the seed's MailHog still work: the
    /// same Mailpit deployment (MailHog is unmaintained). Prefer `Mailpit`.
    MailHog,
}

impl SinkKind {
    /// A mail catcher (Mailpit, or its alias MailHog) rather than the verifying sink.
    pub fn is_catcher(self) -> bool {
        matches!(self, SinkKind::Mailpit | SinkKind::MailHog)
    }
}

/// The bundled Prometheus.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusSpec {
    /// Deploy it.
    #[serde(default = "d_true")]
    pub enabled: bool,
    /// Container image.
    #[serde(default = "d_prom_image")]
    #[schemars(length(min = 1, max = 253))]
    pub image: String,
    /// Requests and limits (default 100m/256Mi, limit 500m/512Mi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSpec>,
    /// Scheduling and pod metadata, over `spec.placement` field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementSpec>,
}

/// The bundled Grafana.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrafanaSpec {
    /// Deploy it (needs Prometheus).
    #[serde(default = "d_true")]
    pub enabled: bool,
    /// Container image.
    #[serde(default = "d_grafana_image")]
    #[schemars(length(min = 1, max = 253))]
    pub image: String,
    /// Requests and limits (default 100m/128Mi, limit 500m/256Mi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSpec>,
    /// Scheduling and pod metadata, over `spec.placement` field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementSpec>,
}

impl Default for ProxySpec {
    fn default() -> Self {
        Self {
            image: d_proxy_image(),
            replicas: 1,
            hpa: HpaSpec::default(),
            tuning: ProxyTuning::default(),
            settings: ProxySettings::default(),
            resources: None,
            placement: None,
        }
    }
}

impl ProxySpec {
    /// The memory limit and the two memory budgets the proxy runs with.
    pub fn memory_plan(&self) -> MemoryPlan {
        let limit = self
            .resources
            .as_ref()
            .and_then(|r| r.memory_limit.as_deref())
            .unwrap_or(PROXY_DEFAULT_RESOURCES[3]);
        // The schema admits only quantities `memory_bytes` reads; the default is the fallback.
        let bytes = crate::validate::memory_bytes(limit)
            .or_else(|| crate::validate::memory_bytes(PROXY_DEFAULT_RESOURCES[3]))
            .unwrap_or_default();
        let limit_mib = i64::try_from(bytes >> 20).unwrap_or(i64::MAX);
        let explicit = |env| self.settings.value(env);
        MemoryPlan {
            limit_mib,
            attachment_budget_mb: explicit("GMP_ATTACHMENT_MEMORY_BUDGET_MB")
                .unwrap_or((limit_mib * 2 / 5).max(1)),
            cache_memory_mb: explicit("GMP_CACHE_MEMORY_MAX_MB").unwrap_or((limit_mib / 10).max(1)),
        }
    }

    /// Database connections of one replica.
    pub fn db_connections(&self) -> i64 {
        self.settings
            .value("GMP_DB_MAX_CONNECTIONS")
            .unwrap_or(PROXY_DEFAULT_DB_CONNECTIONS)
    }

    /// The most replicas the proxy can have: the HPA's maximum, else `replicas`.
    pub fn max_replicas(&self) -> i32 {
        if self.hpa.enabled {
            self.hpa.max_replicas
        } else {
            self.replicas
        }
    }
}

impl Default for HpaSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            min_replicas: 1,
            max_replicas: d_four(),
            target_cpu_percent: d_cpu(),
            scale_down_stabilization_seconds: None,
        }
    }
}

impl Default for ProxyTuning {
    fn default() -> Self {
        Self {
            send_loop_interval_ms: d_send_loop(),
            batch_size_per_account: d_batch(),
            pool_size: d_pool(),
            sync_interval_seconds: d_sync(),
            log_level: LogLevel::default(),
        }
    }
}

impl Default for PostgresSpec {
    fn default() -> Self {
        Self {
            image: d_pg_image(),
            storage: d_storage(),
            volume: PostgresVolume::default(),
            storage_class_name: None,
            tuning: PostgresTuning::default(),
            resources: None,
            placement: None,
        }
    }
}

impl Default for PostgresTuning {
    fn default() -> Self {
        Self {
            max_connections: d_max_conn(),
            shared_buffers_mb: d_shared(),
            work_mem_mb: d_work(),
            maintenance_work_mem_mb: d_maint(),
            effective_cache_size_mb: d_cache(),
            synchronous_commit: false,
        }
    }
}

impl Default for PrometheusSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            image: d_prom_image(),
            resources: None,
            placement: None,
        }
    }
}

impl Default for GrafanaSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            image: d_grafana_image(),
            resources: None,
            placement: None,
        }
    }
}

impl LogLevel {
    /// The value of `GMP_LOG_LEVEL`.
    pub fn as_env(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
        }
    }
}

fn d_true() -> bool {
    true
}
fn d_one() -> i32 {
    1
}
fn d_four() -> i32 {
    4
}
fn d_cpu() -> i32 {
    70
}
fn d_send_loop() -> i32 {
    1000
}
fn d_batch() -> i32 {
    50
}
fn d_pool() -> i32 {
    20
}
fn d_sync() -> i32 {
    5
}
fn d_max_conn() -> i32 {
    200
}
fn d_shared() -> i32 {
    256
}
fn d_work() -> i32 {
    16
}
fn d_maint() -> i32 {
    128
}
fn d_cache() -> i32 {
    512
}
fn d_proxy_image() -> String {
    DEFAULT_PROXY_IMAGE.into()
}
fn d_pg_image() -> String {
    DEFAULT_POSTGRES_IMAGE.into()
}
fn d_storage() -> String {
    "1Gi".into()
}
fn d_prom_image() -> String {
    DEFAULT_PROMETHEUS_IMAGE.into()
}
fn d_grafana_image() -> String {
    DEFAULT_GRAFANA_IMAGE.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cel_rules_use_the_constants_they_mirror() {
        // CEL cannot read Rust constants: the rules spell them out, and must stay equal to them.
        let limit = crate::validate::memory_bytes(PROXY_DEFAULT_RESOURCES[3]).unwrap();
        assert!(PROXY_MEMORY_RULE.contains(&format!(": {limit}) / 1048576)")));
        let db = crate::spec::DB_CONNECTIONS_RULE;
        assert!(
            db.contains(&format!(": {PROXY_DEFAULT_DB_CONNECTIONS})")),
            "{db}"
        );
        assert!(
            db.contains(&format!("+ {POSTGRES_SPARE_CONNECTIONS} <=")),
            "{db}"
        );
    }

    #[test]
    fn the_scale_down_window_is_optional_and_bounded_in_the_schema() {
        let hpa: HpaSpec =
            serde_json::from_str(r#"{"scaleDownStabilizationSeconds": 30}"#).expect("parses");
        assert_eq!(hpa.scale_down_stabilization_seconds, Some(30));
        assert_eq!((hpa.min_replicas, hpa.max_replicas), (1, 4));
        let unset: HpaSpec = serde_json::from_str("{}").expect("parses");
        assert_eq!(unset, HpaSpec::default());
        assert!(!serde_json::to_string(&unset).unwrap().contains("scaleDown"));
        let schema = serde_json::to_value(schemars::schema_for!(HpaSpec)).unwrap();
        let field = &schema["properties"]["scaleDownStabilizationSeconds"];
        assert_eq!(
            (field["minimum"].as_i64(), field["maximum"].as_i64()),
            (Some(0), Some(3600))
        );
    }
}
