//! The operator touches only objects its PressureTest controls (issue 15, item 12): an unrelated
//! object that happens to carry a child's name is neither deleted nor adopted. A wanted child's
//! name held by another object stops the run with a condition and a Warning event; an object left
//! alone by the prune gets a Warning event.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::events::events_for;
use e2e::operator::dead_overrides;
use e2e::wait::{condition, poll, wait_pt};
use e2e::{Kubectl, Operator, with_temp_ns};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::Api;
use kube::{Resource, ResourceExt};
use pressure_crds::{ConditionStatus, Phase, PressureTest};

/// A Deployment, Service and ConfigMap of another team, named like the optional Prometheus of a
/// PressureTest `metrics`.
const THEIR_PROMETHEUS: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: metrics-prometheus, labels: {team: observability}}
spec:
  replicas: 1
  selector: {matchLabels: {team: observability}}
  template:
    metadata: {labels: {team: observability}}
    spec: {containers: [{name: prometheus, image: prom/prometheus}]}
---
apiVersion: v1
kind: Service
metadata: {name: metrics-prometheus}
spec: {selector: {team: observability}, ports: [{port: 9090}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: metrics-prometheus}
data: {prometheus.yml: 'scrape_configs: []'}
";

fn pt(name: &str, prometheus: bool) -> String {
    format!(
        "apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata: {{name: {name}}}
spec:
  durationSeconds: 60
  tenants: [{{name: standard, profile: standard}}]
  postgres: {{volume: EmptyDir}}
  prometheus: {{enabled: {prometheus}}}
  grafana: {{enabled: false}}
"
    )
}

/// What the operator would change by touching an object: its UID (deleted and re-created), its
/// generation (spec written), its owner references (adopted) and the managers of its fields
/// outside the status (a forced apply adds the operator's). Not the resourceVersion: the
/// Deployment controller updates the status of the other team's Deployment on its own while its
/// (kwok) pod starts, which made the test flaky.
type Marks = (Option<String>, Option<i64>, Vec<String>, BTreeSet<String>);

fn version<K: Resource>(o: &K) -> Marks {
    let m = o.meta();
    (
        m.uid.clone(),
        m.generation,
        m.owner_references
            .iter()
            .flatten()
            .map(|r| r.uid.clone())
            .collect(),
        m.managed_fields
            .iter()
            .flatten()
            .filter(|f| f.subresource.as_deref() != Some("status"))
            .filter_map(|f| f.manager.clone())
            .collect(),
    )
}

#[tokio::test]
async fn a_test_named_metrics_does_not_delete_another_teams_metrics_prometheus()
-> anyhow::Result<()> {
    with_temp_ns("own-prune", |client, ns| async move {
        e2e::crd::install_crd(&client).await?;
        let k = Kubectl::new()?;
        let n = ns.name.as_str();
        k.apply(n, THEIR_PROMETHEUS).await?;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), n);
        let services: Api<Service> = Api::namespaced(client.clone(), n);
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), n);
        let before = (
            version(&deployments.get("metrics-prometheus").await?),
            version(&services.get("metrics-prometheus").await?),
            version(&maps.get("metrics-prometheus").await?),
        );
        let _op = Operator::start(&client, &ns, &dead_overrides(&["standard"])).await?;
        k.apply(n, &pt("metrics", false)).await?;
        // The first reconcile prunes the optional parts the spec turns off, then writes the
        // status: once observedGeneration is 1, the prune has run.
        let pts: Api<PressureTest> = Api::namespaced(client.clone(), n);
        wait_pt(
            &pts,
            "metrics",
            Duration::from_secs(60),
            "the first reconcile (observedGeneration 1)",
            |p| {
                p.status
                    .as_ref()
                    .is_some_and(|s| s.observed_generation == Some(1) && s.phase.is_some())
            },
        )
        .await?;
        let after = (
            version(&deployments.get("metrics-prometheus").await?),
            version(&services.get("metrics-prometheus").await?),
            version(&maps.get("metrics-prometheus").await?),
        );
        assert_eq!(
            before, after,
            "another team's metrics-prometheus objects are untouched"
        );
        // The test's own children exist: the operator did its job otherwise.
        deployments.get("metrics-proxy").await?;
        // And it says what it left alone: one Warning event naming the three objects.
        let events = poll(
            Duration::from_secs(30),
            Duration::from_millis(250),
            "the ForeignObject Warning event of the prune",
            || async {
                let e = events_for(&client, n, "metrics").await?;
                Ok(e.iter()
                    .any(|e| e.type_ == "Warning" && e.reason == "ForeignObject")
                    .then_some(e))
            },
        )
        .await?;
        let warning = events
            .iter()
            .find(|e| e.reason == "ForeignObject")
            .expect("event");
        for what in [
            "Deployment/metrics-prometheus",
            "Service/metrics-prometheus",
            "ConfigMap/metrics-prometheus",
        ] {
            assert!(warning.note.contains(what), "{what}: {}", warning.note);
        }
        assert!(
            warning.note.contains("did not delete them"),
            "{}",
            warning.note
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_test_named_db_does_not_adopt_another_teams_db_credentials() -> anyhow::Result<()> {
    with_temp_ns("own-adopt", |client, ns| async move {
        e2e::crd::install_crd(&client).await?;
        let k = Kubectl::new()?;
        let n = ns.name.as_str();
        k.apply(
            n,
            "apiVersion: v1
kind: Secret
metadata: {name: db-credentials, labels: {team: billing}}
stringData: {password: their-password}
",
        )
        .await?;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), n);
        let theirs = secrets.get("db-credentials").await?;
        let _op = Operator::start(&client, &ns, &dead_overrides(&["standard"])).await?;
        k.apply(n, &pt("db", false)).await?;
        let pts: Api<PressureTest> = Api::namespaced(client.clone(), n);
        let refused = wait_pt(
            &pts,
            "db",
            Duration::from_secs(60),
            "the ChildrenOwned=False condition",
            |p| condition(p, "ChildrenOwned").is_some_and(|(s, _)| s == ConditionStatus::False),
        )
        .await?;
        let cond = refused
            .status
            .as_ref()
            .and_then(|s| s.condition("ChildrenOwned"))
            .cloned()
            .expect("condition");
        assert_eq!(cond.reason, "ForeignObject");
        assert!(
            cond.message.contains("Secret/db-credentials"),
            "{}",
            cond.message
        );
        let events = poll(
            Duration::from_secs(30),
            Duration::from_millis(250),
            "the ForeignObject Warning event",
            || async {
                let e = events_for(&client, n, "db").await?;
                Ok(e.iter()
                    .any(|e| e.type_ == "Warning" && e.reason == "ForeignObject")
                    .then_some(e))
            },
        )
        .await?;
        let warning = events
            .iter()
            .find(|e| e.reason == "ForeignObject")
            .expect("event");
        assert!(
            warning.note.contains("Secret/db-credentials"),
            "{}",
            warning.note
        );
        let now = secrets.get("db-credentials").await?;
        assert_eq!(
            version(&now),
            version(&theirs),
            "the Secret was not written"
        );
        assert!(
            now.owner_references().is_empty(),
            "{:?}",
            now.owner_references()
        );
        assert_eq!(now.data, theirs.data);
        // The run does not start on a Secret it does not control: nothing is applied (the proxy
        // would otherwise read the other team's password), the phase does not move.
        assert_eq!(
            refused.status.as_ref().and_then(|s| s.phase),
            Some(Phase::Pending)
        );
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), n);
        assert!(deployments.get_opt("db-proxy").await?.is_none());

        // Once the other object is out of the way, the run starts.
        k.run(&["delete", "secret", "db-credentials", "-n", n])
            .await?
            .ok()?;
        let started = wait_pt(
            &pts,
            "db",
            Duration::from_secs(60),
            "ChildrenOwned=True and the run started",
            |p| {
                condition(p, "ChildrenOwned").is_some_and(|(s, _)| s == ConditionStatus::True)
                    && p.status.as_ref().and_then(|s| s.phase) != Some(Phase::Pending)
            },
        )
        .await?;
        let ours = secrets.get("db-credentials").await?;
        assert_eq!(
            ours.owner_references().first().map(|o| o.uid.clone()),
            started.uid()
        );
        Ok(())
    })
    .await
}
