//! The objects a PressureTest owns, read back from the API server: which exist (as `Kind/name`),
//! and what is wrong with them (owner reference, labels, probes, requests and limits, security
//! context, and NetworkPolicies that let only the proxy reach PostgreSQL, the clients and the
//! sink).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams};
use kube::{Client, Resource};
use pressure_crds::PressureTest;
use serde::de::DeserializeOwned;

/// Label naming the PressureTest of a child.
pub const TEST_LABEL: &str = "pressure.mailproxy.dev/test";

/// Every child of the PressureTest `pt`, with its metadata and (for workloads) pod template.
#[derive(Debug, Default)]
pub struct Children {
    /// `Kind/name` → metadata.
    pub meta: BTreeMap<String, ObjectMeta>,
    /// `Kind/name` → pod template, for Deployments, StatefulSets and Jobs.
    pub templates: BTreeMap<String, PodTemplateSpec>,
    /// `Kind/name` → whether probes are expected (not for Jobs).
    pub long_running: BTreeSet<String>,
    /// Object name → NetworkPolicy.
    pub policies: BTreeMap<String, NetworkPolicy>,
}

async fn list<K>(client: &Client, ns: &str, pt: &str) -> anyhow::Result<Vec<K>>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("{TEST_LABEL}={pt}"));
    Ok(api.list(&lp).await?.items)
}

impl Children {
    /// Reads every child kind labelled with the PressureTest `pt`.
    pub async fn read(client: &Client, ns: &str, pt: &str) -> anyhow::Result<Self> {
        let mut c = Children::default();
        let key =
            |kind: &str, m: &ObjectMeta| format!("{kind}/{}", m.name.clone().unwrap_or_default());
        for o in list::<Secret>(client, ns, pt).await? {
            c.meta.insert(key("Secret", &o.metadata), o.metadata);
        }
        for o in list::<ConfigMap>(client, ns, pt).await? {
            c.meta.insert(key("ConfigMap", &o.metadata), o.metadata);
        }
        for o in list::<Service>(client, ns, pt).await? {
            c.meta.insert(key("Service", &o.metadata), o.metadata);
        }
        for o in list::<HorizontalPodAutoscaler>(client, ns, pt).await? {
            c.meta
                .insert(key("HorizontalPodAutoscaler", &o.metadata), o.metadata);
        }
        for o in list::<Deployment>(client, ns, pt).await? {
            let k = key("Deployment", &o.metadata);
            c.long_running.insert(k.clone());
            if let Some(s) = o.spec {
                c.templates.insert(k.clone(), s.template);
            }
            c.meta.insert(k, o.metadata);
        }
        for o in list::<StatefulSet>(client, ns, pt).await? {
            let k = key("StatefulSet", &o.metadata);
            c.long_running.insert(k.clone());
            if let Some(s) = o.spec {
                c.templates.insert(k.clone(), s.template);
            }
            c.meta.insert(k, o.metadata);
        }
        for o in list::<NetworkPolicy>(client, ns, pt).await? {
            let name = o.metadata.name.clone().unwrap_or_default();
            c.meta
                .insert(key("NetworkPolicy", &o.metadata), o.metadata.clone());
            c.policies.insert(name, o);
        }
        for o in list::<Job>(client, ns, pt).await? {
            let k = key("Job", &o.metadata);
            if let Some(s) = o.spec {
                c.templates.insert(k.clone(), s.template);
            }
            c.meta.insert(k, o.metadata);
        }
        Ok(c)
    }

    /// The `Kind/name` of every child.
    pub fn names(&self) -> BTreeSet<String> {
        self.meta.keys().cloned().collect()
    }

    /// Everything wrong with the children of `pt`; empty when they are all as users expect.
    pub fn problems(&self, pt: &PressureTest) -> Vec<String> {
        let mut out = Vec::new();
        for (k, m) in &self.meta {
            out.extend(meta_problems(k, m, pt));
            let workload = ["Deployment/", "StatefulSet/", "Job/"]
                .iter()
                .any(|w| k.starts_with(w));
            if workload && !self.templates.contains_key(k) {
                out.push(format!("{k}: no pod template"));
            }
        }
        for (k, t) in &self.templates {
            out.extend(template_problems(k, t, self.long_running.contains(k)));
        }
        let name = pt.metadata.name.clone().unwrap_or_default();
        if self
            .templates
            .contains_key(&format!("StatefulSet/{name}-postgres"))
        {
            out.extend(self.policy_problems(
                &format!("{name}-postgres-ingress"),
                "postgres",
                &["proxy"],
            ));
            out.extend(self.policy_problems(
                &format!("{name}-clients-ingress"),
                "client",
                &["proxy", "prometheus"],
            ));
        }
        if self
            .templates
            .contains_key(&format!("Deployment/{name}-sink"))
        {
            // SMTP from the proxy, HTTP (/stats, /reset) from Prometheus and the operator; the
            // unit tests check which port each peer gets.
            out.extend(self.policy_problems(
                &format!("{name}-sink-ingress"),
                "sink",
                &["proxy", "prometheus"],
            ));
        }
        out
    }

    /// Components of this test whose pods the selector selects, each once.
    fn components(&self, sel: &LabelSelector) -> Result<BTreeSet<String>, String> {
        let mut out = BTreeSet::new();
        for t in self.templates.values() {
            let labels = t
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            if selects(sel, &labels)? {
                out.insert(labels.get(COMPONENT_LABEL).cloned().unwrap_or_default());
            }
        }
        Ok(out)
    }

    /// The policy `name` must guard exactly the pods of `target` and admit, among this test's
    /// pods, exactly those of the `from` components it runs (peers in other namespaces, such as the operator, are not
    /// this test's pods and are left to the unit tests).
    fn policy_problems(&self, name: &str, target: &str, from: &[&str]) -> Vec<String> {
        let at = format!("NetworkPolicy/{name}");
        let Some(spec) = self.policies.get(name).and_then(|p| p.spec.clone()) else {
            return vec![format!("{at}: missing")];
        };
        let mut out = Vec::new();
        if !spec.policy_types.iter().flatten().any(|t| t == "Ingress") {
            out.push(format!("{at}: policyTypes lacks Ingress"));
        }
        let guarded = spec
            .pod_selector
            .as_ref()
            .ok_or_else(|| "no podSelector".to_string())
            .and_then(|s| self.components(s));
        match guarded {
            Ok(g) if g.iter().eq([target.to_string()].iter()) => {}
            Ok(g) => out.push(format!("{at}: guards {g:?}, want [{target}]")),
            Err(e) => out.push(format!("{at}: {e}")),
        }
        let mut admitted = BTreeSet::new();
        for rule in spec.ingress.iter().flatten() {
            let Some(peers) = &rule.from else {
                out.push(format!("{at}: an ingress rule admits every source"));
                continue;
            };
            for peer in peers {
                if peer.ip_block.is_some() {
                    out.push(format!("{at}: admits an ipBlock"));
                }
                let Some(sel) = &peer.pod_selector else {
                    out.push(format!("{at}: a peer admits whole namespaces"));
                    continue;
                };
                if peer.namespace_selector.is_some() {
                    continue;
                }
                match self.components(sel) {
                    Ok(c) => admitted.extend(c),
                    Err(e) => out.push(format!("{at}: {e}")),
                }
            }
        }
        // Of `from`, the components this test runs (Prometheus is optional).
        let present: BTreeSet<String> = self
            .templates
            .values()
            .filter_map(|t| {
                t.metadata
                    .as_ref()?
                    .labels
                    .as_ref()?
                    .get(COMPONENT_LABEL)
                    .cloned()
            })
            .collect();
        let want: BTreeSet<String> = from
            .iter()
            .map(|s| s.to_string())
            .filter(|c| present.contains(c))
            .collect();
        if admitted != want {
            out.push(format!(
                "{at}: admits {admitted:?} of this test's pods, want {want:?}"
            ));
        }
        out
    }
}

/// `app.kubernetes.io/component`.
const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// Whether a selector selects `labels`; expressions are refused (the operator renders none, and
/// a check that guessed their meaning would prove nothing).
fn selects(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> Result<bool, String> {
    if sel
        .match_expressions
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        return Err("matchExpressions are not checked".into());
    }
    Ok(sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v)))
}

/// The `Kind/name` set a PressureTest named `pt` should own once its clients exist.
pub fn expected(
    pt: &str,
    tenants: &[&str],
    hpa: bool,
    observability: bool,
    setup: bool,
) -> BTreeSet<String> {
    let mut s: BTreeSet<String> = [
        format!("Secret/{pt}-credentials"),
        format!("StatefulSet/{pt}-postgres"),
        format!("Service/{pt}-postgres"),
        format!("Deployment/{pt}-sink"),
        format!("Service/{pt}-sink"),
        format!("Deployment/{pt}-proxy"),
        format!("Service/{pt}-proxy"),
        format!("NetworkPolicy/{pt}-postgres-ingress"),
        format!("NetworkPolicy/{pt}-clients-ingress"),
        format!("NetworkPolicy/{pt}-sink-ingress"),
    ]
    .into();
    if hpa {
        s.insert(format!("HorizontalPodAutoscaler/{pt}-proxy"));
    }
    if observability {
        for c in ["prometheus", "grafana"] {
            for kind in ["Deployment", "Service", "ConfigMap"] {
                s.insert(format!("{kind}/{pt}-{c}"));
            }
        }
    }
    if setup {
        s.insert(format!("Job/{pt}-setup"));
    }
    for t in tenants {
        s.insert(format!("Deployment/{pt}-client-{t}"));
        s.insert(format!("Service/{pt}-client-{t}"));
    }
    s
}

fn meta_problems(k: &str, m: &ObjectMeta, pt: &PressureTest) -> Vec<String> {
    let mut out = Vec::new();
    let name = pt.metadata.name.clone().unwrap_or_default();
    let owners = m.owner_references.clone().unwrap_or_default();
    let good_owner = owners.iter().any(|o| {
        o.controller == Some(true)
            && o.kind == "PressureTest"
            && o.api_version == "pressure.mailproxy.dev/v1alpha1"
            && o.name == name
            && Some(&o.uid) == pt.metadata.uid.as_ref()
    });
    if !good_owner {
        out.push(format!(
            "{k}: no controller owner reference to PressureTest {name}: {owners:?}"
        ));
    }
    let labels = m.labels.clone().unwrap_or_default();
    let want = [
        (TEST_LABEL, Some(name.as_str())),
        ("app.kubernetes.io/instance", Some(name.as_str())),
        ("app.kubernetes.io/managed-by", Some("pressure-operator")),
        ("app.kubernetes.io/part-of", Some("pressure-test")),
        ("app.kubernetes.io/component", None),
        ("app.kubernetes.io/name", None),
    ];
    for (label, value) in want {
        match (labels.get(label), value) {
            (None, _) => out.push(format!("{k}: label {label} missing")),
            (Some(v), Some(w)) if v != w => out.push(format!("{k}: label {label}={v}, want {w}")),
            _ => {}
        }
    }
    out
}

fn template_problems(k: &str, t: &PodTemplateSpec, long_running: bool) -> Vec<String> {
    let mut out = Vec::new();
    let labels = t
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if !labels.contains_key(TEST_LABEL) {
        out.push(format!("{k}: pod template lacks the {TEST_LABEL} label"));
    }
    let Some(spec) = &t.spec else {
        return vec![format!("{k}: pod template has no spec")];
    };
    let psc = spec.security_context.clone().unwrap_or_default();
    if psc.run_as_non_root != Some(true) {
        out.push(format!("{k}: pod securityContext.runAsNonRoot is not true"));
    }
    if psc.run_as_user.is_none_or(|u| u == 0) {
        out.push(format!(
            "{k}: pod securityContext.runAsUser is unset or root"
        ));
    }
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let at = format!("{k} container {}", c.name);
        let sc = c.security_context.clone().unwrap_or_default();
        if sc.read_only_root_filesystem != Some(true) {
            out.push(format!("{at}: readOnlyRootFilesystem is not true"));
        }
        if sc.allow_privilege_escalation != Some(false) {
            out.push(format!("{at}: allowPrivilegeEscalation is not false"));
        }
        if sc.privileged == Some(true) {
            out.push(format!("{at}: privileged"));
        }
        let requests = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.clone())
            .unwrap_or_default();
        let limits = c
            .resources
            .as_ref()
            .and_then(|r| r.limits.clone())
            .unwrap_or_default();
        for r in ["cpu", "memory"] {
            if !requests.contains_key(r) {
                out.push(format!("{at}: no {r} request"));
            }
            if !limits.contains_key(r) {
                out.push(format!("{at}: no {r} limit"));
            }
        }
        if long_running && (c.readiness_probe.is_none() || c.liveness_probe.is_none()) {
            out.push(format!("{at}: readiness or liveness probe missing"));
        }
    }
    out
}
