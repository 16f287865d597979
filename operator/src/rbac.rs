//! Every Kubernetes API call the operator makes, as RBAC grants: the one list that
//! `operator/rbac.yaml` must match rule for rule (a unit test here), that the chart must match
//! (`scripts/check-packaging.sh`), and that the e2e suite asks the API server's authorizer about
//! (`kubectl auth can-i` answers yes to these and no to every other verb). When the code starts
//! calling something new, add it here first; the tests then say which manifest to update.

/// Where a grant applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Every namespace the operator watches (a ClusterRole, or a Role with `--watch-namespace`).
    Watched,
    /// Only the operator's own namespace, where its Lease lives (a Role).
    OwnNamespace,
}

/// One rule: these verbs on one resource (or subresource) of one API group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// Plural resource, `resource/subresource` for a subresource.
    pub resource: &'static str,
    /// Verbs, in the order the manifests list them.
    pub verbs: &'static [&'static str],
    /// Restricted to the operator's own Lease (`resourceNames`).
    pub own_lease_only: bool,
    /// Where it applies.
    pub scope: Scope,
}

const fn watched(
    group: &'static str,
    resource: &'static str,
    verbs: &'static [&'static str],
) -> Grant {
    Grant {
        group,
        resource,
        verbs,
        own_lease_only: false,
        scope: Scope::Watched,
    }
}

/// What the code calls, and why.
pub const GRANTS: &[Grant] = &[
    // The watcher (list, watch), the fresh read at the start of each reconcile (get), and
    // `ttlSecondsAfterFinished` (delete, guarded by the object's UID).
    watched(
        "pressure.mailproxy.dev",
        "pressuretests",
        &["get", "list", "watch", "delete"],
    ),
    // The status, server-side applied.
    watched("pressure.mailproxy.dev", "pressuretests/status", &["patch"]),
    // Events on each phase change; the recorder patches a repeated event.
    watched("events.k8s.io", "events", &["create", "patch"]),
    // Children: read back before each apply or delete (is it ours?), server-side applied (patch,
    // authorised as create when the object is new), deleted by prune and cleanup.
    watched("", "secrets", &["get", "create", "patch"]),
    watched("", "configmaps", &["get", "create", "patch", "delete"]),
    watched("", "services", &["get", "create", "patch", "delete"]),
    // Pod health and pod IPs for live figures.
    watched("", "pods", &["list"]),
    // Owned workloads are also watched, so that their changes trigger a reconcile.
    watched(
        "apps",
        "deployments",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    // PostgreSQL is scaled to zero at the end, never deleted by the operator.
    watched(
        "apps",
        "statefulsets",
        &["get", "list", "watch", "create", "patch"],
    ),
    watched(
        "batch",
        "jobs",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    watched(
        "autoscaling",
        "horizontalpodautoscalers",
        &["get", "create", "patch", "delete"],
    ),
    watched(
        "networking.k8s.io",
        "networkpolicies",
        &["get", "create", "patch", "delete"],
    ),
    // Leader election: creating the Lease cannot be limited by name; reading and renewing can.
    Grant {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["create"],
        own_lease_only: false,
        scope: Scope::OwnNamespace,
    },
    Grant {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["get", "update"],
        own_lease_only: true,
        scope: Scope::OwnNamespace,
    },
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde::Deserialize;

    use super::*;

    /// (scope, group, resource, verb, own lease only) of every grant.
    type Row = (Scope, String, String, String, bool);

    fn rows_of_code() -> BTreeSet<Row> {
        GRANTS
            .iter()
            .flat_map(|g| {
                g.verbs.iter().map(|v| {
                    (
                        g.scope,
                        g.group.to_string(),
                        g.resource.to_string(),
                        v.to_string(),
                        g.own_lease_only,
                    )
                })
            })
            .collect()
    }

    #[derive(Deserialize)]
    struct Rule {
        #[serde(rename = "apiGroups")]
        groups: Vec<String>,
        resources: Vec<String>,
        verbs: Vec<String>,
        #[serde(rename = "resourceNames", default)]
        names: Vec<String>,
    }

    /// The rules of `operator/rbac.yaml`: its ClusterRole is the watched scope, its Role the
    /// operator's namespace; resourceNames must name the default Lease.
    fn rows_of_manifest() -> BTreeSet<Row> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/rbac.yaml");
        let text = std::fs::read_to_string(path).expect("operator/rbac.yaml");
        let mut rows = BTreeSet::new();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = serde_yaml::Value::deserialize(doc).expect("yaml");
            let scope = match v["kind"].as_str() {
                Some("ClusterRole") => Scope::Watched,
                Some("Role") => Scope::OwnNamespace,
                _ => continue,
            };
            let rules: Vec<Rule> = serde_yaml::from_value(v["rules"].clone()).expect("rules");
            for r in rules {
                let own_lease = match r.names.as_slice() {
                    [] => false,
                    [name] if name == "pressure-operator" => true,
                    other => panic!("unexpected resourceNames {other:?}"),
                };
                for g in &r.groups {
                    for res in &r.resources {
                        for verb in &r.verbs {
                            rows.insert((scope, g.clone(), res.clone(), verb.clone(), own_lease));
                        }
                    }
                }
            }
        }
        rows
    }

    #[test]
    fn the_shipped_rbac_grants_exactly_what_the_code_calls() {
        let code = rows_of_code();
        let manifest = rows_of_manifest();
        let extra: Vec<_> = manifest.difference(&code).collect();
        let missing: Vec<_> = code.difference(&manifest).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "operator/rbac.yaml grants more than the code calls: {extra:?}; \
             and lacks: {missing:?}"
        );
    }
}
