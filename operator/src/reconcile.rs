//! Desired state: pure builders that turn a `PressureTest` (spec and the status fields that fix
//! the run: run id and load window) into the Kubernetes objects it needs. No I/O here.
//!
//! One file per component under `reconcile/`; this file holds the shared pieces: names, labels,
//! owner references, security contexts, probes, resources and the [`Child`] list; [`placement`]
//! then places every pod template of that list.

pub mod clients;
pub mod dashboard;
pub mod network;
pub mod observability;
pub mod placement;
pub mod postgres;
pub mod proxy;
pub mod run_scope;
pub mod secret;
pub mod setup;
pub mod sink;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    ExecAction, HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, Secret, SecretKeySelector, SecurityContext, Service,
    ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};
use pressure_crds::{Phase, PressureTest, ResourcesSpec};

use crate::{Error, Result};
pub use network::OperatorPeer;
pub use secret::SecretValues;

/// Field manager of every server-side apply.
pub const MANAGER: &str = "pressure-operator";
/// Label naming the PressureTest a child belongs to.
pub use pressure_crds::TEST_LABEL;
/// Label naming the tenant of a client pod.
pub const TENANT_LABEL: &str = "pressure.mailproxy.dev/tenant";
/// `app.kubernetes.io/component` label.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// One object to apply.
#[derive(Debug, Clone)]
pub enum Child {
    /// Credentials.
    Secret(Secret),
    /// Configuration files.
    ConfigMap(ConfigMap),
    /// A Service.
    Service(Service),
    /// A Deployment.
    Deployment(Deployment),
    /// PostgreSQL.
    StatefulSet(StatefulSet),
    /// The setup Job.
    Job(Job),
    /// The proxy's autoscaler.
    Hpa(HorizontalPodAutoscaler),
    /// Who may reach PostgreSQL, the clients and the sink.
    NetworkPolicy(NetworkPolicy),
}

impl Child {
    /// Kind and name, for logs.
    pub fn describe(&self) -> String {
        let (kind, meta) = match self {
            Child::Secret(o) => ("Secret", &o.metadata),
            Child::ConfigMap(o) => ("ConfigMap", &o.metadata),
            Child::Service(o) => ("Service", &o.metadata),
            Child::Deployment(o) => ("Deployment", &o.metadata),
            Child::StatefulSet(o) => ("StatefulSet", &o.metadata),
            Child::Job(o) => ("Job", &o.metadata),
            Child::Hpa(o) => ("HorizontalPodAutoscaler", &o.metadata),
            Child::NetworkPolicy(o) => ("NetworkPolicy", &o.metadata),
        };
        format!("{kind}/{}", meta.name.as_deref().unwrap_or(""))
    }
}

/// Names of the children of the PressureTest `pt`.
pub mod names {
    /// The credentials Secret.
    pub fn secret(pt: &str) -> String {
        format!("{pt}-credentials")
    }
    /// PostgreSQL StatefulSet and headless Service.
    pub fn postgres(pt: &str) -> String {
        format!("{pt}-postgres")
    }
    /// Proxy Deployment, Service and HPA.
    pub fn proxy(pt: &str) -> String {
        format!("{pt}-proxy")
    }
    /// Sink Deployment and Service.
    pub fn sink(pt: &str) -> String {
        format!("{pt}-sink")
    }
    /// Prometheus Deployment, Service and ConfigMap.
    pub fn prometheus(pt: &str) -> String {
        format!("{pt}-prometheus")
    }
    /// Grafana Deployment, Service and ConfigMap.
    pub fn grafana(pt: &str) -> String {
        format!("{pt}-grafana")
    }
    /// A tenant's client Deployment and Service.
    pub fn client(pt: &str, tenant: &str) -> String {
        format!("{pt}-client-{tenant}")
    }
    /// The setup Job.
    pub fn setup(pt: &str) -> String {
        format!("{pt}-setup")
    }
    /// The NetworkPolicy of PostgreSQL.
    pub fn postgres_policy(pt: &str) -> String {
        format!("{pt}-postgres-ingress")
    }
    /// The NetworkPolicy of the tenant clients.
    pub fn clients_policy(pt: &str) -> String {
        format!("{pt}-clients-ingress")
    }
    /// The NetworkPolicy of the sink.
    pub fn sink_policy(pt: &str) -> String {
        format!("{pt}-sink-ingress")
    }
    /// The report ConfigMap of the run `run_id` (`<pt>-<8 hex digits>`): `<pt>-report-<hex>`,
    /// a name no other run of a PressureTest of the same name takes, even after a retained
    /// report outlived its PressureTest.
    pub fn report(pt: &str, run_id: &str) -> String {
        let run = run_id
            .strip_prefix(pt)
            .and_then(|r| r.strip_prefix('-'))
            .unwrap_or(run_id);
        format!("{pt}-report-{run}")
    }
}

/// Every object the PressureTest needs at its current phase. Infrastructure from the start; the
/// setup Job while setting up; client Deployments once the load window is known; nothing once
/// the run has a verdict (the cleanup policy decides what stays). `operator` names the pods of
/// the operator, which the clients' NetworkPolicy admits.
pub fn desired(
    pt: &PressureTest,
    secrets: &SecretValues,
    operator: &OperatorPeer,
) -> Result<Vec<Child>> {
    let status = pt.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or_default();
    if phase.is_terminal() {
        return Ok(Vec::new());
    }
    let mut out = vec![Child::Secret(secret::secret(pt, secrets)?)];
    out.extend(postgres::children(pt)?);
    out.extend(sink::children(pt)?);
    out.extend(proxy::children(pt)?);
    out.extend(observability::children(pt)?);
    out.extend(network::children(pt, operator)?);
    if phase == Phase::SettingUp {
        out.push(Child::Job(setup::job(pt)?));
    }
    if let (Some(start), Some(stop)) = (status.load_start_at, status.load_stop_at) {
        let run_id = status.run_id.clone().unwrap_or_default();
        out.extend(clients::children(pt, &run_id, start, stop)?);
    }
    placement::place(&mut out, &pt.spec);
    if let Some(run_id) = &status.run_id {
        run_scope::scope(&mut out, run_id);
    }
    Ok(out)
}

/// Name of the PressureTest.
pub fn pt_name(pt: &PressureTest) -> Result<String> {
    pt.metadata
        .name
        .clone()
        .ok_or(Error::MissingField("metadata.name"))
}

/// Labels of a child: the recommended `app.kubernetes.io/*` set plus the test label.
pub fn labels(pt: &str, component: &str, app: &str) -> BTreeMap<String, String> {
    let mut l = selector(pt, component);
    l.insert("app.kubernetes.io/name".into(), app.into());
    l.insert("app.kubernetes.io/managed-by".into(), MANAGER.into());
    l.insert("app.kubernetes.io/part-of".into(), "pressure-test".into());
    l
}

/// The stable subset of [`labels`] used in selectors.
pub fn selector(pt: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/instance".to_string(), pt.to_string()),
        (COMPONENT_LABEL.to_string(), component.to_string()),
        (TEST_LABEL.to_string(), pt.to_string()),
    ])
}

/// Metadata of a child: name, namespace, labels and the controller owner reference.
pub fn meta(
    pt: &PressureTest,
    name: String,
    labels: BTreeMap<String, String>,
) -> Result<ObjectMeta> {
    let owner = pt
        .controller_owner_ref(&())
        .ok_or(Error::MissingField("metadata.uid"))?;
    Ok(ObjectMeta {
        name: Some(name),
        namespace: Some(
            pt.namespace()
                .ok_or(Error::MissingField("metadata.namespace"))?,
        ),
        labels: Some(labels),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    })
}

/// Pod security: non-root with a fixed uid/gid and the runtime's seccomp profile.
pub fn pod_security(uid: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group: Some(uid),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// Container security: no privilege escalation, read-only root, no capabilities.
pub fn container_security() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        ..SecurityContext::default()
    }
}

/// Requests and limits: the spec's values where set, else the component defaults
/// `[cpu request, memory request, cpu limit, memory limit]`.
pub fn resources(spec: Option<&ResourcesSpec>, defaults: [&str; 4]) -> ResourceRequirements {
    let s = spec.cloned().unwrap_or_default();
    let pick = |v: Option<String>, d: &str| Quantity(v.unwrap_or_else(|| d.to_string()));
    let requests = BTreeMap::from([
        ("cpu".to_string(), pick(s.cpu_request, defaults[0])),
        ("memory".to_string(), pick(s.memory_request, defaults[1])),
    ]);
    let limits = BTreeMap::from([
        ("cpu".to_string(), pick(s.cpu_limit, defaults[2])),
        ("memory".to_string(), pick(s.memory_limit, defaults[3])),
    ]);
    ResourceRequirements {
        requests: Some(requests),
        limits: Some(limits),
        ..Default::default()
    }
}

/// A probe running a command in the container.
pub fn exec_probe(command: &[&str], period: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command.iter().map(|s| s.to_string()).collect()),
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(6),
        ..Probe::default()
    }
}

/// A probe doing `GET path` on a port.
pub fn http_probe(path: &str, port: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(port),
            ..Default::default()
        }),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(6),
        ..Probe::default()
    }
}

/// A TCP container port.
pub fn port(p: i32) -> ContainerPort {
    ContainerPort {
        container_port: p,
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

/// A literal environment variable.
pub fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// An environment variable read from the credentials Secret.
pub fn secret_env(pt: &str, name: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: names::secret(pt),
                key: key.into(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..EnvVar::default()
    }
}

/// A writable emptyDir volume and its mount, for processes that need `/tmp` or a data dir.
pub fn scratch(name: &str, path: &str) -> (Volume, VolumeMount) {
    let volume = Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    let mount = VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..Default::default()
    };
    (volume, mount)
}

/// A container with the shared hardening: security context, and the given resources.
pub fn container(name: &str, image: &str, resources: ResourceRequirements) -> Container {
    Container {
        name: name.into(),
        image: Some(image.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        security_context: Some(container_security()),
        resources: Some(resources),
        ..Container::default()
    }
}

/// A pod spec with the shared hardening: non-root `uid`, no service-account token.
pub fn pod_spec(containers: Vec<Container>, volumes: Vec<Volume>, uid: i64) -> PodSpec {
    PodSpec {
        containers,
        volumes: Some(volumes),
        security_context: Some(pod_security(uid)),
        automount_service_account_token: Some(false),
        ..PodSpec::default()
    }
}

/// A Deployment whose pods carry `pod_labels` and are selected by `selector`.
pub fn deployment(
    meta: ObjectMeta,
    selector: BTreeMap<String, String>,
    replicas: Option<i32>,
    pod: PodSpec,
) -> Deployment {
    let pod_labels = meta.labels.clone();
    Deployment {
        metadata: meta,
        spec: Some(DeploymentSpec {
            replicas,
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: pod_labels,
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// A Service; headless ones publish every ready pod in DNS, which Prometheus uses to find them.
pub fn service(
    meta: ObjectMeta,
    selector: BTreeMap<String, String>,
    ports: &[(&str, i32)],
    headless: bool,
) -> Service {
    let ports = ports
        .iter()
        .map(|(name, port)| ServicePort {
            name: Some((*name).into()),
            port: *port,
            target_port: Some(IntOrString::Int(*port)),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        })
        .collect();
    Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(ports),
            cluster_ip: headless.then(|| "None".to_string()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

#[cfg(test)]
#[path = "reconcile/tests.rs"]
mod tests;
