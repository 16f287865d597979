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

/// `operator/rbac.yaml` bound to a ServiceAccount in `ns`, with cluster-wide names unique to it.
fn rbac_for(ns: &str) -> anyhow::Result<(String, String)> {
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
        let (rbac, role) = rbac_for(&ns.name)?;
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

        // ResultsOnly: workloads and their configuration go; the Secret and PostgreSQL (scaled to
        // zero, with its Service and NetworkPolicy) stay.
        let sts: Api<StatefulSet> = Api::namespaced(client.clone(), &ns.name);
        poll(
            Duration::from_secs(60),
            Duration::from_millis(250),
            "the ResultsOnly cleanup",
            || async {
                let left = Children::read(&client, &ns.name, "rbac").await?.names();
                let want = [
                    "NetworkPolicy/rbac-postgres-ingress",
                    "Secret/rbac-credentials",
                    "Service/rbac-postgres",
                    "StatefulSet/rbac-postgres",
                ];
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
