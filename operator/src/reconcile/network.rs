//! NetworkPolicies: only the proxy reaches PostgreSQL; only the proxy (sync and attachment
//! fetches), Prometheus when enabled (scrapes) and the operator (live figures) reach the tenant
//! clients; only the proxy mails the sink (SMTP), and only Prometheus and the operator reach its
//! HTTP port (`/stats`, and `/reset`, which would otherwise let any pod in the namespace zero the
//! counters, or inject mail, and flip the verdict). The proxy, Prometheus and Grafana stay
//! reachable as before: the proxy's API checks a token, and the others carry no secrets.
//! Policies are enforced by the cluster's network plugin (kind's kindnet does since 0.24; a
//! plugin without NetworkPolicy support ignores them).

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pressure_crds::PressureTest;

use super::{
    COMPONENT_LABEL, Child, TEST_LABEL, clients, labels, meta, names, postgres, pt_name, sink,
};
use crate::Result;

/// Label every namespace carries with its own name (Kubernetes 1.22+).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Where the operator's own pods run, so that client policies can admit its figure reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorPeer {
    /// The operator's namespace; `None` admits pods with [`OperatorPeer::pod_labels`] in any
    /// namespace (an operator running outside the cluster has no pod to admit anyway).
    pub namespace: Option<String>,
    /// Labels of the operator's pods (the chart's selector labels).
    pub pod_labels: BTreeMap<String, String>,
}

impl Default for OperatorPeer {
    fn default() -> Self {
        OperatorPeer {
            namespace: None,
            pod_labels: BTreeMap::from([(
                "app.kubernetes.io/name".to_string(),
                "pressure-operator".to_string(),
            )]),
        }
    }
}

/// The PostgreSQL, client and sink policies.
pub fn children(pt: &PressureTest, operator: &OperatorPeer) -> Result<Vec<Child>> {
    let name = pt_name(pt)?;
    let prometheus = pt
        .spec
        .prometheus
        .enabled
        .then(|| component(&name, "prometheus"));
    let database = policy(
        pt,
        &name,
        names::postgres_policy(&name),
        "postgres",
        vec![(postgres::PORT, vec![component(&name, "proxy")])],
    )?;
    let clients = policy(
        pt,
        &name,
        names::clients_policy(&name),
        clients::COMPONENT,
        vec![(
            clients::PORT,
            [
                Some(component(&name, "proxy")),
                prometheus.clone(),
                Some(operator_peer(operator)),
            ]
            .into_iter()
            .flatten()
            .collect(),
        )],
    )?;
    let sink = policy(
        pt,
        &name,
        names::sink_policy(&name),
        sink::COMPONENT,
        vec![
            (sink::SMTP_PORT, vec![component(&name, "proxy")]),
            (
                sink::HTTP_PORT,
                [prometheus, Some(operator_peer(operator))]
                    .into_iter()
                    .flatten()
                    .collect(),
            ),
        ],
    )?;
    Ok(vec![
        Child::NetworkPolicy(database),
        Child::NetworkPolicy(clients),
        Child::NetworkPolicy(sink),
    ])
}

/// Pods of `target` (a component of this test) admit, on each TCP port, only its peers.
fn policy(
    pt: &PressureTest,
    name: &str,
    obj: String,
    target: &str,
    rules: Vec<(i32, Vec<NetworkPolicyPeer>)>,
) -> Result<NetworkPolicy> {
    let ingress = rules
        .into_iter()
        .map(|(port, from)| NetworkPolicyIngressRule {
            from: Some(from),
            ports: Some(vec![NetworkPolicyPort {
                port: Some(IntOrString::Int(port)),
                protocol: Some("TCP".into()),
                ..NetworkPolicyPort::default()
            }]),
        })
        .collect();
    Ok(NetworkPolicy {
        metadata: meta(pt, obj, labels(name, target, "network-policy"))?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pods(name, target)),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(ingress),
            ..NetworkPolicySpec::default()
        }),
    })
}

/// Pods of one component of the test `name`.
fn pods(name: &str, component: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([
            (TEST_LABEL.to_string(), name.to_string()),
            (COMPONENT_LABEL.to_string(), component.to_string()),
        ])),
        ..LabelSelector::default()
    }
}

/// Pods of one component of the test, in the test's namespace.
fn component(name: &str, component: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(pods(name, component)),
        ..NetworkPolicyPeer::default()
    }
}

/// The operator's pods, in its namespace when known.
fn operator_peer(op: &OperatorPeer) -> NetworkPolicyPeer {
    let namespace_selector = LabelSelector {
        match_labels: op
            .namespace
            .as_ref()
            .map(|ns| BTreeMap::from([(NAMESPACE_NAME_LABEL.to_string(), ns.clone())])),
        ..LabelSelector::default()
    };
    NetworkPolicyPeer {
        namespace_selector: Some(namespace_selector),
        pod_selector: Some(LabelSelector {
            match_labels: Some(op.pod_labels.clone()),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    }
}
