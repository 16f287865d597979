//! The system under test and its surroundings: the proxy (with HPA and `GMP_*` tuning),
//! PostgreSQL (with the seed's server parameters), the SMTP sink, Prometheus and Grafana.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::placement::PlacementSpec;

/// Default image of the mail proxy.
pub const DEFAULT_PROXY_IMAGE: &str = "mail-pressure/mailproxy:0.1.0";
/// Default image of PostgreSQL.
pub const DEFAULT_POSTGRES_IMAGE: &str = "postgres:16-alpine";
/// Default image of Prometheus.
pub const DEFAULT_PROMETHEUS_IMAGE: &str = "prom/prometheus:v2.53.0";
/// Default image of Grafana.
pub const DEFAULT_GRAFANA_IMAGE: &str = "grafana/grafana:11.1.0";
/// Default image of MailHog.
pub const DEFAULT_MAILHOG_IMAGE: &str = "mailhog/mailhog:v1.0.1";

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
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
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
    /// Which sink.
    #[serde(default)]
    pub kind: SinkKind,
    /// Image override (default: `clientImage` for Verifying, `mailhog/mailhog:v1.0.1` for MailHog).
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
    /// MailHog as in the seed; no delivery figures.
    MailHog,
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
            resources: None,
            placement: None,
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
