//! Where the pods of a run land and how they are marked: node selector, tolerations, affinity,
//! priority class, image pull secrets, extra pod labels and annotations.
//!
//! `spec.placement` is the default of every pod the operator creates; a component's own
//! `placement` (`proxy`, `postgres`, `sink`, `prometheus`, `grafana`, each tenant's clients)
//! replaces it field by field, and [`PlacementSpec::over`] is that one rule. Labels and annotations
//! merge, the component's value winning per key. The setup Job uses the default. The local run
//! (`pressure run`) has no pods and ignores all of it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, LocalObjectReference, Toleration};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Label prefixes the operator owns: its selectors and NetworkPolicies rely on them.
pub const RESERVED_LABEL_PREFIXES: [&str; 2] = ["app.kubernetes.io/", "pressure.mailproxy.dev/"];

/// CEL rule: pod labels may not take the operator's own keys (a pod would leave its Service, its
/// NetworkPolicy or its PressureTest).
const RESERVED_LABELS_RULE: &str = "!has(self.podLabels) || self.podLabels.all(k, \
!k.startsWith('app.kubernetes.io/') && !k.startsWith('pressure.mailproxy.dev/'))";

/// Scheduling, registry access and pod metadata of one component, or the default of all of them.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[x_kube(validation = Rule::new(RESERVED_LABELS_RULE).message("podLabels may not use the keys app.kubernetes.io/* and pressure.mailproxy.dev/*: the operator selects its pods by them"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlacementSpec {
    /// Nodes the pods may run on, by label (the pod's `nodeSelector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 32))]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub tolerations: Option<Vec<Toleration>>,
    /// Node and pod (anti-)affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// PriorityClass of the pods; it must exist in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub priority_class_name: Option<String>,
    /// Secrets (in the PressureTest's namespace) used to pull the images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// Extra labels on the pods (not on their controllers); the operator's own keys are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 32))]
    pub pod_labels: Option<BTreeMap<String, String>>,
    /// Extra annotations on the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 32))]
    pub pod_annotations: Option<BTreeMap<String, String>>,
}

impl PlacementSpec {
    /// This component's placement over the spec-wide `default`: every field set here wins,
    /// every other comes from `default`; labels and annotations are merged, this one's values
    /// winning per key.
    pub fn over(&self, default: &PlacementSpec) -> PlacementSpec {
        fn merged(
            mine: &Option<BTreeMap<String, String>>,
            default: &Option<BTreeMap<String, String>>,
        ) -> Option<BTreeMap<String, String>> {
            match (mine, default) {
                (None, None) => None,
                (m, d) => {
                    let mut out = d.clone().unwrap_or_default();
                    out.extend(m.clone().unwrap_or_default());
                    Some(out)
                }
            }
        }
        PlacementSpec {
            node_selector: self
                .node_selector
                .clone()
                .or_else(|| default.node_selector.clone()),
            tolerations: self
                .tolerations
                .clone()
                .or_else(|| default.tolerations.clone()),
            affinity: self.affinity.clone().or_else(|| default.affinity.clone()),
            priority_class_name: self
                .priority_class_name
                .clone()
                .or_else(|| default.priority_class_name.clone()),
            image_pull_secrets: self
                .image_pull_secrets
                .clone()
                .or_else(|| default.image_pull_secrets.clone()),
            pod_labels: merged(&self.pod_labels, &default.pod_labels),
            pod_annotations: merged(&self.pod_annotations, &default.pod_annotations),
        }
    }

    /// The first pod label key that the operator owns, if any (the CEL rule's check, for the
    /// local validation and for objects that bypassed the schema).
    pub fn reserved_label(&self) -> Option<&str> {
        self.pod_labels.as_ref().and_then(|l| {
            l.keys()
                .map(String::as_str)
                .find(|k| RESERVED_LABEL_PREFIXES.iter().any(|p| k.starts_with(p)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn a_component_replaces_the_default_field_by_field_and_merges_metadata() {
        let default = PlacementSpec {
            node_selector: labels(&[("pool", "load")]),
            priority_class_name: Some("batch".into()),
            pod_labels: labels(&[("team", "mail"), ("cost", "shared")]),
            pod_annotations: labels(&[("a", "1")]),
            ..Default::default()
        };
        let mine = PlacementSpec {
            node_selector: labels(&[("pool", "db")]),
            pod_labels: labels(&[("cost", "db")]),
            ..Default::default()
        };
        let p = mine.over(&default);
        assert_eq!(p.node_selector, labels(&[("pool", "db")]));
        assert_eq!(p.priority_class_name.as_deref(), Some("batch"));
        assert_eq!(p.pod_labels, labels(&[("cost", "db"), ("team", "mail")]));
        assert_eq!(p.pod_annotations, labels(&[("a", "1")]));
        assert_eq!(p.tolerations, None);
        assert_eq!(
            PlacementSpec::default().over(&PlacementSpec::default()),
            PlacementSpec::default()
        );
    }

    #[test]
    fn the_operators_label_keys_are_found() {
        let p = PlacementSpec {
            pod_labels: labels(&[("team", "x"), ("app.kubernetes.io/component", "evil")]),
            ..Default::default()
        };
        assert_eq!(p.reserved_label(), Some("app.kubernetes.io/component"));
        assert_eq!(PlacementSpec::default().reserved_label(), None);
    }
}
