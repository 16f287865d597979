//! Placement: puts each pod template's node selector, tolerations, affinity, priority class,
//! image pull secrets and extra labels and annotations, from
//! [`PressureTestSpec::placement_of`]. It runs over the finished [`Child`] list, so every builder
//! stays about its component and no pod template can be forgotten: the component of a template
//! is read from its own `app.kubernetes.io/component` (and tenant) label.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use pressure_crds::{Component, PlacementSpec, PressureTestSpec};

use super::{COMPONENT_LABEL, Child, TENANT_LABEL};

/// Applies the placement of its component to every pod template in `children`.
pub fn place(children: &mut [Child], spec: &PressureTestSpec) {
    for child in children {
        let template = match child {
            Child::Deployment(d) => d.spec.as_mut().map(|s| &mut s.template),
            Child::StatefulSet(s) => s.spec.as_mut().map(|s| &mut s.template),
            Child::Job(j) => j.spec.as_mut().map(|s| &mut s.template),
            _ => None,
        };
        if let Some(template) = template {
            let labels = template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            let component = labels.get(COMPONENT_LABEL).map(String::as_str);
            let tenant = labels.get(TENANT_LABEL).map(String::as_str);
            if let Some(c) = component_of(component, tenant) {
                apply(template, &spec.placement_of(c));
            }
        }
    }
}

/// The component named by a pod template's labels (see each builder's `COMPONENT`).
fn component_of<'a>(component: Option<&str>, tenant: Option<&'a str>) -> Option<Component<'a>> {
    Some(match (component?, tenant) {
        ("proxy", _) => Component::Proxy,
        ("postgres", _) => Component::Postgres,
        ("sink", _) => Component::Sink,
        ("prometheus", _) => Component::Prometheus,
        ("grafana", _) => Component::Grafana,
        ("client", Some(t)) => Component::Clients(t),
        ("setup", _) => Component::Setup,
        _ => return None,
    })
}

/// Writes `p` into one pod template. The operator's own labels win over `podLabels` (the
/// schema refuses those keys; this keeps an object that bypassed it from leaving its Service).
fn apply(template: &mut PodTemplateSpec, p: &PlacementSpec) {
    let meta = template.metadata.get_or_insert_with(Default::default);
    if let Some(extra) = &p.pod_labels {
        let labels = meta.labels.get_or_insert_with(Default::default);
        for (k, v) in extra {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(extra) = &p.pod_annotations {
        let annotations = meta.annotations.get_or_insert_with(Default::default);
        annotations.extend(extra.clone());
    }
    let pod = template.spec.get_or_insert_with(Default::default);
    pod.node_selector = p.node_selector.clone();
    pod.tolerations = p.tolerations.clone();
    pod.affinity = p.affinity.clone();
    pod.priority_class_name = p.priority_class_name.clone();
    pod.image_pull_secrets = p.image_pull_secrets.clone();
}
