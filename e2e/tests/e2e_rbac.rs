//! The least-privilege RBAC of `operator/rbac.yaml` is enough for a whole run: the operator runs
//! as its ServiceAccount (kubeconfig impersonation) through provisioning, setup, the load window,
//! the verdict and the `ResultsOnly` cleanup, and the API server never answers "forbidden".

use std::time::Duration;

use e2e::children::Children;
use e2e::crd::install_crd;
use e2e::operator::dead_overrides;
use e2e::procs::tail;
use e2e::wait::{condition, poll};
use e2e::{Kubectl, Operator, TempNs, cluster, repo_root, with_temp_ns};
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::Api;
use pressure_crds::{ConditionStatus, PressureTest};
use serde::Deserialize;
use serde_yaml::Value;

const SA: &str = "pressure-operator";

/// `operator/rbac.yaml` bound to a ServiceAccount in `ns`, with cluster-wide names unique to it;
/// its Lease Role moves to `ns` and names the Lease `lease` (the one the test's operator uses).
fn rbac_for(ns: &str, lease: &str) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join("operator/rbac.yaml"))?;
    let role = format!("{ns}-{SA}");
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let mut v = Value::deserialize(doc)?;
        match v["kind"].as_str().unwrap_or_default() {
            "ServiceAccount" => v["metadata"]["namespace"] = ns.into(),
            "ClusterRole" => v["metadata"]["name"] = role.clone().into(),
            "ClusterRoleBinding" => {
                v["metadata"]["name"] = role.clone().into();
                v["roleRef"]["name"] = role.clone().into();
                v["subjects"][0]["namespace"] = ns.into();
            }
            "Role" => {
                v["metadata"]["namespace"] = ns.into();
                for rule in v["rules"].as_sequence_mut().into_iter().flatten() {
                    if rule.get("resourceNames").is_some() {
                        rule["resourceNames"] = vec![Value::from(lease)].into();
                    }
                }
            }
            "RoleBinding" => {
                v["metadata"]["namespace"] = ns.into();
                v["subjects"][0]["namespace"] = ns.into();
            }
            other => anyhow::bail!("unexpected kind {other} in operator/rbac.yaml"),
        }
        docs.push(serde_yaml::to_string(&v)?);
    }
    Ok((docs.join("---\n"), role))
}

/// A copy of the kubeconfig that impersonates the operator's ServiceAccount in `ns`.
fn impersonating_kubeconfig(ns: &TempNs) -> anyhow::Result<std::path::PathBuf> {
    let mut cfg: Value = serde_yaml::from_str(&std::fs::read_to_string(cluster::kubeconfig()?)?)?;
    let user = format!("system:serviceaccount:{}:{SA}", ns.name);
    for u in cfg["users"].as_sequence_mut().into_iter().flatten() {
        u["user"]["as"] = user.clone().into();
    }
    let path = ns.dir.join("kubeconfig-operator");
    std::fs::write(&path, serde_yaml::to_string(&cfg)?)?;
    Ok(path)
}

const SPEC: &str = "apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata:
  name: rbac
spec:
  durationSeconds: 10
  warmupSeconds: 0
  startDelaySeconds: 5
  tenants: [{name: standard, profile: standard}]
  postgres: {volume: EmptyDir}
  timeouts: {drainSeconds: 0}
  keepOnFinish: ResultsOnly
";

#[tokio::test]
async fn the_shipped_rbac_is_enough_for_a_whole_run() -> anyhow::Result<()> {
    with_temp_ns("rbac", |client, ns| async move {
        install_crd(&client).await?;
        let k = Kubectl::new()?;
        let (rbac, role) = rbac_for(&ns.name, &Operator::lease_name(&ns))?;
        k.apply(&ns.name, &rbac).await?;
        let who = format!("system:serviceaccount:{}:{SA}", ns.name);
        let can = k
            .run(&[
                "auth",
                "can-i",
                "patch",
                "deployments",
                "-n",
                &ns.name,
                "--as",
                &who,
            ])
            .await?;
        assert_eq!(
            can.stdout.trim(),
            "yes",
            "the binding is in effect: {can:?}"
        );
        let kubeconfig = impersonating_kubeconfig(&ns)?;
        let path = kubeconfig.display().to_string();
        // The operator's kubeconfig really is the ServiceAccount: it may not create namespaces.
        let cannot = k
            .run(&[
                "--kubeconfig",
                &path,
                "auth",
                "can-i",
                "create",
                "namespaces",
            ])
            .await?;
        assert_eq!(
            cannot.stdout.trim(),
            "no",
            "impersonation in effect: {cannot:?}"
        );
        let env = [("KUBECONFIG".to_string(), path)];
        let op =
            Operator::start_with_env(&client, &ns, &dead_overrides(&["standard"]), &env).await?;
        k.apply(&ns.name, SPEC).await?;
        // Without figures the verdict is ThresholdBreached; what matters is that every step ran.
        k.run(&[
            "wait",
            "--for=condition=Complete",
            "pressuretest/rbac",
            "-n",
            &ns.name,
            "--timeout=120s",
        ])
        .await?
        .ok()?;
        let pt = Api::<PressureTest>::namespaced(client.clone(), &ns.name)
            .get("rbac")
            .await?;
        let message = pt
            .status
            .as_ref()
            .and_then(|s| s.message.clone())
            .unwrap_or_default();
        assert_eq!(
            condition(&pt, "Succeeded"),
            Some((ConditionStatus::False, "ThresholdBreached".into())),
            "{message}"
        );
        assert!(message.contains("no figures"), "{message}");

        // ResultsOnly: workloads and their configuration go; the Secret, PostgreSQL (scaled to
        // zero, with its Service and NetworkPolicy) and the run's report stay.
        let report = pt
            .status
            .as_ref()
            .and_then(|s| s.report.clone())
            .ok_or_else(|| anyhow::anyhow!("no status.report: {:?}", pt.status))?;
        let sts: Api<StatefulSet> = Api::namespaced(client.clone(), &ns.name);
        poll(
            Duration::from_secs(60),
            Duration::from_millis(250),
            "the ResultsOnly cleanup",
            || async {
                let left = Children::read(&client, &ns.name, "rbac").await?.names();
                let want: std::collections::BTreeSet<String> = [
                    format!("ConfigMap/{report}"),
                    "NetworkPolicy/rbac-postgres-ingress".into(),
                    "Secret/rbac-credentials".into(),
                    "Service/rbac-postgres".into(),
                    "StatefulSet/rbac-postgres".into(),
                ]
                .into();
                let replicas = sts
                    .get("rbac-postgres")
                    .await?
                    .spec
                    .and_then(|s| s.replicas);
                if left.iter().eq(want.iter()) && replicas == Some(0) {
                    return Ok(Some(()));
                }
                anyhow::bail!("left {left:?}, postgres replicas {replicas:?}")
            },
        )
        .await?;

        let log = tail(&op.proc.log, 10_000);
        let denied: Vec<&str> = log
            .lines()
            .filter(|l| l.to_lowercase().contains("forbidden"))
            .collect();
        assert!(
            denied.is_empty(),
            "the operator was refused:\n{}",
            denied.join("\n")
        );
        let metrics = op.metrics().await?;
        assert!(
            metrics.contains("pressuretest_runs_total{verdict=\"ThresholdBreached\"} 1"),
            "{metrics}"
        );
        drop(op);
        k.run(&["delete", "clusterrolebinding,clusterrole", &role])
            .await?
            .ok()?;
        Ok(())
    })
    .await
}

/// Verbs asked about for every resource.
const VERBS: [&str; 8] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// Subresources the questions name as `resource/subresource`; anything else after a `/` is an
/// object name.
const SUBRESOURCES: [&str; 4] = ["status", "exec", "log", "finalizers"];

/// `kubectl auth can-i VERB WHAT -n NS --as WHO`: true for "yes".
async fn can_i(k: &Kubectl, who: &str, ns: &str, verb: &str, what: &str) -> anyhow::Result<bool> {
    let (resource, sub) = match what.split_once('/') {
        Some((r, s)) if SUBRESOURCES.contains(&s) => {
            (r.to_string(), Some(format!("--subresource={s}")))
        }
        _ => (what.to_string(), None),
    };
    let mut args = vec![
        "auth",
        "can-i",
        verb,
        resource.as_str(),
        "-n",
        ns,
        "--as",
        who,
    ];
    if let Some(sub) = &sub {
        args.push(sub);
    }
    let out = k.run(&args).await?;
    match out.stdout.trim() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => anyhow::bail!("`{}`: {}{}", out.command, out.stdout, out.stderr),
    }
}

#[tokio::test]
async fn the_shipped_rbac_allows_what_the_code_calls_and_nothing_else() -> anyhow::Result<()> {
    use futures_util::{StreamExt, TryStreamExt};
    use pressure_operator::rbac::{GRANTS, Scope};
    with_temp_ns("rbac-can-i", |_client, ns| async move {
        let k = Kubectl::new()?;
        let lease = Operator::lease_name(&ns);
        let (rbac, role) = rbac_for(&ns.name, &lease)?;
        k.apply(&ns.name, &rbac).await?;
        let who = format!("system:serviceaccount:{}:{SA}", ns.name);
        let wanted = |scope: Scope, resource: &str, verb: &str, own_lease: bool| {
            GRANTS.iter().any(|g| {
                let qualified = if g.group.is_empty() {
                    g.resource.to_string()
                } else {
                    match g.resource.split_once('/') {
                        Some((r, sub)) => format!("{r}.{}/{sub}", g.group),
                        None => format!("{}.{}", g.resource, g.group),
                    }
                };
                g.scope == scope
                    && qualified == resource
                    && g.verbs.contains(&verb)
                    && g.own_lease_only == own_lease
            })
        };
        // (namespace, resource as kubectl names it, verb, expected answer).
        let mut questions: Vec<(String, String, &str, bool)> = Vec::new();
        let mut resources: Vec<String> = GRANTS
            .iter()
            .filter(|g| g.scope == Scope::Watched)
            .map(|g| {
                if g.group.is_empty() {
                    g.resource.to_string()
                } else {
                    match g.resource.split_once('/') {
                        Some((r, sub)) => format!("{r}.{}/{sub}", g.group),
                        None => format!("{}.{}", g.resource, g.group),
                    }
                }
            })
            .collect();
        // What the operator must never touch.
        resources.extend(
            [
                "pods/exec",
                "pods/log",
                "events",
                "serviceaccounts",
                "persistentvolumeclaims",
                "replicasets.apps",
                "roles.rbac.authorization.k8s.io",
                "rolebindings.rbac.authorization.k8s.io",
                "pressuretests.pressure.mailproxy.dev/finalizers",
            ]
            .map(String::from),
        );
        for resource in &resources {
            for verb in VERBS {
                if resource.contains('/')
                    && !resource.ends_with("/status")
                    && !["create", "get", "update"].contains(&verb)
                {
                    continue; // exec, log, finalizers: only these verbs mean something
                }
                let want = wanted(Scope::Watched, resource, verb, false);
                questions.push((ns.name.clone(), resource.clone(), verb, want));
            }
        }
        let own = format!("leases.coordination.k8s.io/{lease}");
        for verb in VERBS {
            // The operator's own Lease, by name; any other Lease; Leases in another namespace.
            let by_name =
                verb != "create" && verb != "list" && verb != "watch" && verb != "deletecollection";
            if by_name {
                let want = wanted(
                    Scope::OwnNamespace,
                    "leases.coordination.k8s.io",
                    verb,
                    true,
                );
                questions.push((ns.name.clone(), own.clone(), verb, want));
                questions.push((
                    ns.name.clone(),
                    "leases.coordination.k8s.io/other".into(),
                    verb,
                    false,
                ));
            }
            let want = wanted(
                Scope::OwnNamespace,
                "leases.coordination.k8s.io",
                verb,
                false,
            );
            questions.push((
                ns.name.clone(),
                "leases.coordination.k8s.io".into(),
                verb,
                want,
            ));
            questions.push((
                "default".into(),
                "leases.coordination.k8s.io".into(),
                verb,
                false,
            ));
        }
        for (verb, what) in [
            ("get", "nodes"),
            ("list", "namespaces"),
            ("create", "clusterroles.rbac.authorization.k8s.io"),
            ("escalate", "roles.rbac.authorization.k8s.io"),
            ("impersonate", "serviceaccounts"),
            ("update", "customresourcedefinitions.apiextensions.k8s.io"),
        ] {
            questions.push((ns.name.clone(), what.into(), verb, false));
        }
        let k = &k;
        let who = &who;
        let answers: Vec<(String, String, &str, bool, bool)> =
            futures_util::stream::iter(questions)
                .map(|(n, what, verb, want)| async move {
                    let got = can_i(k, who, &n, verb, &what).await?;
                    anyhow::Ok((n, what, verb, want, got))
                })
                .buffer_unordered(8)
                .try_collect()
                .await?;
        let wrong: Vec<String> = answers
            .iter()
            .filter(|(_, _, _, want, got)| want != got)
            .map(|(n, what, verb, want, _)| {
                let should = if *want { "be allowed" } else { "be denied" };
                format!("{verb} {what} -n {n} should {should}")
            })
            .collect();
        let allowed = answers.iter().filter(|a| a.4).count();
        let expected_yes = GRANTS.iter().map(|g| g.verbs.len()).sum::<usize>();
        k.run(&["delete", "clusterrolebinding,clusterrole", &role])
            .await?
            .ok()?;
        assert!(
            wrong.is_empty(),
            "RBAC differs from what the code calls:\n{}",
            wrong.join("\n")
        );
        assert_eq!(allowed, expected_yes, "every grant was asked about once");
        Ok(())
    })
    .await
}
