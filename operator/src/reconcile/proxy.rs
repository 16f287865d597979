//! The mail proxy: Deployment (env from the Secret, `GMP_*` tuning), headless Service on port
//! 8000 and an autoscaling/v2 HorizontalPodAutoscaler on CPU.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{EnvVar, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use pressure_crds::PressureTest;

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

/// The proxy's environment: credentials from the Secret, the database URL built with `$(VAR)`
/// expansion, the tenants' client Services as allowed hosts, and the tuning knobs.
pub fn proxy_env(pt: &PressureTest, name: &str) -> Vec<EnvVar> {
    let t = &pt.spec.proxy.tuning;
    let (budget_mb, cache_mb) = memory_shares(pt);
    let db_url = format!(
        "postgresql://{DB_NAME}:$(GMP_DB_PASSWORD)@{}:5432/{DB_NAME}",
        names::postgres(name)
    );
    vec![
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
        env("GMP_ATTACHMENT_MEMORY_BUDGET_MB", budget_mb.to_string()),
        env("GMP_CACHE_MEMORY_MAX_MB", cache_mb.to_string()),
    ]
}

/// The container's default requests and limits: cpu and memory requests, cpu and memory limits.
const RESOURCES: [&str; 4] = ["250m", "256Mi", "1", "512Mi"];

/// The attachment memory budget and the MD5 memory cache, in MiB: 40% and 10% of the container's
/// memory limit. The proxy's own defaults (256 + 50 MiB) assume a bigger machine; under a
/// 512Mi limit, attachments at 100 MB/s peaked at 287 MiB with them (`bench/attachments.py`),
/// so these shares leave room for the rest of the process and the allocator.
pub fn memory_shares(pt: &PressureTest) -> (u64, u64) {
    let limit = pt
        .spec
        .proxy
        .resources
        .as_ref()
        .and_then(|r| r.memory_limit.as_deref())
        .unwrap_or(RESOURCES[3]);
    // The schema admits only quantities `memory_bytes` reads; the default is the fallback.
    let bytes = pressure_crds::validate::memory_bytes(limit)
        .or_else(|| pressure_crds::validate::memory_bytes(RESOURCES[3]))
        .unwrap_or_default();
    let mib = bytes >> 20;
    ((mib * 2 / 5).max(1), (mib / 10).max(1))
}

fn deployment(pt: &PressureTest, name: &str) -> Result<Deployment> {
    let spec = &pt.spec.proxy;
    let mut c = container(
        "mailproxy",
        &spec.image,
        resources(spec.resources.as_ref(), RESOURCES),
    );
    c.command = Some(vec!["mailproxy".into()]);
    c.env = Some(proxy_env(pt, name));
    c.ports = Some(vec![port(PORT)]);
    c.readiness_probe = Some(super::http_probe("/health", PORT));
    c.liveness_probe = Some(exec_probe(&["mailproxy", "healthcheck"], 10));
    let (tmp_vol, tmp_mount) = scratch("tmp", "/tmp");
    c.volume_mounts = Some(vec![tmp_mount]);
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
                    volumes: Some(vec![tmp_vol]),
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
            ..Default::default()
        },
        ..HorizontalPodAutoscaler::default()
    })
}
