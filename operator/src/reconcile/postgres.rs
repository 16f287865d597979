//! PostgreSQL: a one-replica StatefulSet with a volume claim template, the seed's server
//! parameters as `-c` arguments, and a headless Service that also publishes the pod while it is
//! not ready.

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec,
    PodTemplateSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use pressure_crds::{PostgresTuning, PostgresVolume, PressureTest};

use super::secret::DB_PASSWORD;
use super::{
    Child, container, env, exec_probe, labels, meta, names, pod_security, port, pt_name, resources,
    scratch, secret_env, selector, service,
};
use crate::Result;

/// Database and role name.
pub const DB_NAME: &str = "mailproxy";
/// uid/gid of `postgres` in the alpine image.
const UID: i64 = 70;
const COMPONENT: &str = "postgres";
/// PostgreSQL port.
pub const PORT: i32 = 5432;

/// The headless Service and the StatefulSet.
pub fn children(pt: &PressureTest) -> Result<Vec<Child>> {
    let name = pt_name(pt)?;
    let svc_meta = meta(
        pt,
        names::postgres(&name),
        labels(&name, COMPONENT, "postgres"),
    )?;
    let mut svc = service(
        svc_meta,
        selector(&name, COMPONENT),
        &[("postgres", PORT)],
        true,
    );
    // The name resolves while the one pod is not ready (restarting, recovering): the proxies get
    // "connection refused" and retry at once, instead of "name not found", which resolvers cache
    // (seen on the real node: about a minute without the name after PostgreSQL's pod was deleted).
    if let Some(spec) = svc.spec.as_mut() {
        spec.publish_not_ready_addresses = Some(true);
    }
    Ok(vec![
        Child::Service(svc),
        Child::StatefulSet(statefulset(pt, &name)?),
    ])
}

/// `-c name=value` arguments for the seed's parameters.
pub fn args(t: &PostgresTuning) -> Vec<String> {
    let params = [
        format!("max_connections={}", t.max_connections),
        format!("shared_buffers={}MB", t.shared_buffers_mb),
        format!("work_mem={}MB", t.work_mem_mb),
        format!("maintenance_work_mem={}MB", t.maintenance_work_mem_mb),
        format!("effective_cache_size={}MB", t.effective_cache_size_mb),
        format!(
            "synchronous_commit={}",
            if t.synchronous_commit { "on" } else { "off" }
        ),
    ];
    params
        .into_iter()
        .flat_map(|p| ["-c".to_string(), p])
        .collect()
}

fn statefulset(pt: &PressureTest, name: &str) -> Result<StatefulSet> {
    let spec = &pt.spec.postgres;
    let sts_name = names::postgres(name);
    let mut c = container(
        "postgres",
        &spec.image,
        resources(spec.resources.as_ref(), ["250m", "512Mi", "2", "1Gi"]),
    );
    c.args = Some(args(&spec.tuning));
    c.ports = Some(vec![port(PORT)]);
    c.env = Some(vec![
        env("POSTGRES_USER", DB_NAME),
        env("POSTGRES_DB", DB_NAME),
        secret_env(name, "POSTGRES_PASSWORD", DB_PASSWORD),
        env("POSTGRES_INITDB_ARGS", "--data-checksums"),
        env("PGDATA", "/var/lib/postgresql/data/pgdata"),
    ]);
    let ready = ["pg_isready", "-U", DB_NAME, "-h", "127.0.0.1"];
    c.readiness_probe = Some(exec_probe(&ready, 5));
    c.liveness_probe = Some(exec_probe(&ready, 10));
    let (run_vol, run_mount) = scratch("run", "/var/run/postgresql");
    let (tmp_vol, tmp_mount) = scratch("tmp", "/tmp");
    let data_mount = VolumeMount {
        name: "data".into(),
        mount_path: "/var/lib/postgresql/data".into(),
        ..Default::default()
    };
    c.volume_mounts = Some(vec![data_mount, run_mount, tmp_mount]);
    let mut volumes = vec![run_vol, tmp_vol];
    if spec.volume == PostgresVolume::EmptyDir {
        let source = EmptyDirVolumeSource {
            size_limit: Some(Quantity(spec.storage.clone())),
            ..Default::default()
        };
        volumes.push(Volume {
            name: "data".into(),
            empty_dir: Some(source),
            ..Volume::default()
        });
    }
    let pod_labels = labels(name, COMPONENT, "postgres");
    Ok(StatefulSet {
        metadata: meta(pt, sts_name.clone(), pod_labels.clone())?,
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(sts_name),
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
            volume_claim_templates: (spec.volume == PostgresVolume::PersistentVolumeClaim)
                .then(|| vec![claim(&spec.storage, spec.storage_class_name.clone())]),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Delete".into()),
                    when_scaled: Some("Retain".into()),
                },
            ),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    })
}

fn claim(storage: &str, class: Option<String>) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: class,
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_string(), Quantity(storage.into()))].into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}
