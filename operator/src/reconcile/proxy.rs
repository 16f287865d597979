//! The mail proxy: Deployment (env from the Secret, `GMP_*` tuning), headless Service on port
//! 8000 and an autoscaling/v2 HorizontalPodAutoscaler on CPU.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, EnvVar, PodSpec, PodTemplateSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use pressure_crds::PressureTest;
use pressure_crds::spec::sut::{DEFAULT_DISK_CACHE_MB, PROXY_DEFAULT_RESOURCES};

use super::postgres::DB_NAME;
use super::secret::{API_TOKEN, DB_PASSWORD, ENCRYPTION_KEY};
use super::{
    Child, container, env, exec_probe, labels, meta, names, pod_security, port, pt_name, resources,
    scratch, secret_env, selector, service,
};
use crate::Result;

/// Port of the proxy's HTTP API.
pub const PORT: i32 = 8000;
const COMPONENT: &str = "proxy";
const UID: i64 = 10001;

/// Service, Deployment and (when enabled) the HPA.
pub fn children(pt: &PressureTest) -> Result<Vec<Child>> {
    let name = pt_name(pt)?;
    let svc_meta = meta(
        pt,
        names::proxy(&name),
        labels(&name, COMPONENT, "mailproxy"),
    )?;
    let svc = service(
        svc_meta,
        selector(&name, COMPONENT),
        &[("http", PORT)],
        true,
    );
    let mut out = vec![
        Child::Service(svc),
        Child::Deployment(deployment(pt, &name)?),
    ];
    if pt.spec.proxy.hpa.enabled {
        out.push(Child::Hpa(hpa(pt, &name)?));
    }
    Ok(out)
}

/// Seconds as `GMP_SEND_LOOP_INTERVAL` expects them, from milliseconds (`1500` → `"1.5"`).
pub fn seconds_str(ms: i32) -> String {
    let text = format!("{}.{:03}", ms / 1000, ms % 1000);
    let trimmed = text.trim_end_matches('0');
    trimmed.strip_suffix('.').unwrap_or(trimmed).to_string()
}

/// The hosts the proxy may call although they resolve to private addresses: the tenants'
/// client Services (their `client_base_url`, set by the setup Job), by name. The proxy refuses
/// internal addresses unless listed (issue 15); a Service's ClusterIP is one.
pub fn allowed_hosts(pt: &PressureTest, name: &str) -> String {
    let hosts: Vec<String> = pt
        .spec
        .tenants
        .iter()
        .map(|t| names::client(name, &t.name))
        .collect();
    hosts.join(",")
}

/// Where the disk tier of the MD5 cache lives in the proxy's container, when
/// `settings.diskCache` is set.
pub const CACHE_DIR: &str = "/var/cache/mailproxy";

/// The proxy's environment: credentials from the Secret, the database URL built with `$(VAR)`
/// expansion, the tenants' client Services as allowed hosts, the tuning knobs, the memory
/// budgets sized from the memory limit, the database connections (always passed: the CRD's rule
/// checks them against PostgreSQL's), every other setting the spec sets, and the disk cache's
/// folder when it has one.
pub fn proxy_env(pt: &PressureTest, name: &str) -> Vec<EnvVar> {
    let proxy = &pt.spec.proxy;
    let t = &proxy.tuning;
    let memory = proxy.memory_plan();
    let db_url = format!(
        "postgresql://{DB_NAME}:$(GMP_DB_PASSWORD)@{}:5432/{DB_NAME}",
        names::postgres(name)
    );
    let mut out = vec![
        secret_env(name, "GMP_DB_PASSWORD", DB_PASSWORD),
        env("GMP_DB_PATH", db_url),
        secret_env(name, "GMP_API_TOKEN", API_TOKEN),
        secret_env(name, "MAIL_PROXY_ENCRYPTION_KEY", ENCRYPTION_KEY),
        env("GMP_HOST", "0.0.0.0"),
        env("GMP_PORT", PORT.to_string()),
        env("GMP_ATTACHMENT_ALLOWED_HOSTS", allowed_hosts(pt, name)),
        env(
            "GMP_SEND_LOOP_INTERVAL",
            seconds_str(t.send_loop_interval_ms),
        ),
        env("GMP_SYNC_INTERVAL", t.sync_interval_seconds.to_string()),
        env(
            "GMP_BATCH_SIZE_PER_ACCOUNT",
            t.batch_size_per_account.to_string(),
        ),
        env("GMP_POOL_SIZE", t.pool_size.to_string()),
        env("GMP_LOG_LEVEL", t.log_level.as_env()),
        env("GMP_SPOOL_DIR", "/tmp"),
        env(
            "GMP_ATTACHMENT_MEMORY_BUDGET_MB",
            memory.attachment_budget_mb.to_string(),
        ),
        env(
            "GMP_CACHE_MEMORY_MAX_MB",
            memory.cache_memory_mb.to_string(),
        ),
        env("GMP_DB_MAX_CONNECTIONS", proxy.db_connections().to_string()),
    ];
    // The three set above from the settings are not repeated.
    let owned: Vec<String> = out.iter().map(|e| e.name.clone()).collect();
    out.extend(
        proxy
            .settings
            .env()
            .into_iter()
            .filter(|(k, _)| !owned.iter().any(|o| o == k))
            .map(|(k, v)| env(k, v)),
    );
    if proxy.settings.disk_cache.is_some() {
        out.push(env("GMP_CACHE_DISK_DIR", CACHE_DIR));
    }
    out
}

/// The disk cache's emptyDir. The tier stores an item (at most its size) before it evicts the
/// oldest, so it briefly holds up to twice its size; the volume's limit allows that and 16 MiB
/// more (the kubelet evicts a pod whose emptyDir outgrows its limit).
fn cache_volume(disk_max_mb: i64) -> (Volume, VolumeMount) {
    let (mut volume, mount) = scratch("cache", CACHE_DIR);
    let limit_mib = disk_max_mb * 2 + 16;
    volume.empty_dir = Some(EmptyDirVolumeSource {
        size_limit: Some(Quantity(format!("{limit_mib}Mi"))),
        ..EmptyDirVolumeSource::default()
    });
    (volume, mount)
}

fn deployment(pt: &PressureTest, name: &str) -> Result<Deployment> {
    let spec = &pt.spec.proxy;
    let mut c = container(
        "mailproxy",
        &spec.image,
        resources(spec.resources.as_ref(), PROXY_DEFAULT_RESOURCES),
    );
    c.command = Some(vec!["mailproxy".into()]);
    c.env = Some(proxy_env(pt, name));
    c.ports = Some(vec![port(PORT)]);
    c.readiness_probe = Some(super::http_probe("/health", PORT));
    c.liveness_probe = Some(exec_probe(&["mailproxy", "healthcheck"], 10));
    let (tmp_vol, tmp_mount) = scratch("tmp", "/tmp");
    let mut volumes = vec![tmp_vol];
    let mut mounts = vec![tmp_mount];
    if let Some(disk) = &spec.settings.disk_cache {
        // The proxy's default size when the spec leaves it unset.
        let (vol, mount) = cache_volume(disk.max_mb.unwrap_or(DEFAULT_DISK_CACHE_MB));
        volumes.push(vol);
        mounts.push(mount);
    }
    c.volume_mounts = Some(mounts);
    let pod_labels = labels(name, COMPONENT, "mailproxy");
    Ok(Deployment {
        metadata: meta(pt, names::proxy(name), pod_labels.clone())?,
        spec: Some(DeploymentSpec {
            // With an HPA the replica count is its to set; applying one here would fight it.
            replicas: (!spec.hpa.enabled).then_some(spec.replicas),
            selector: LabelSelector {
                match_labels: Some(selector(name, COMPONENT)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![c],
                    volumes: Some(volumes),
                    security_context: Some(pod_security(UID)),
                    automount_service_account_token: Some(false),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    })
}

fn hpa(pt: &PressureTest, name: &str) -> Result<HorizontalPodAutoscaler> {
    let h = &pt.spec.proxy.hpa;
    Ok(HorizontalPodAutoscaler {
        metadata: meta(pt, names::proxy(name), labels(name, COMPONENT, "mailproxy"))?,
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: names::proxy(name),
            },
            min_replicas: Some(h.min_replicas),
            max_replicas: h.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(h.target_cpu_percent),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]),
            behavior: h.scale_down_stabilization_seconds.map(|seconds| {
                HorizontalPodAutoscalerBehavior {
                    scale_down: Some(HPAScalingRules {
                        stabilization_window_seconds: Some(seconds),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            }),
        },
        ..HorizontalPodAutoscaler::default()
    })
}
