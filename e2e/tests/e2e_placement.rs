//! Placement reaches every pod and the scheduler: `spec.placement` (node selector, tolerations,
//! pull secrets, pod labels and annotations) and a component's own override land in every pod
//! template the operator creates, the scheduler puts the pods on the node they name, and a
//! component whose node selector matches no node ends the run `PodsUnhealthy` with the
//! scheduler's reason. kwok's nodes carry the pods; the scheduler is the real one.

use std::time::Duration;

use e2e::children::Children;
use e2e::crd::install_crd;
use e2e::operator::dead_overrides;
use e2e::wait::{condition, is_complete, poll, wait_pt};
use e2e::{Kubectl, Operator, with_temp_ns};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, ListParams};
use pressure_crds::{ConditionStatus, PressureTest};

/// A kwok node's `kubernetes.io/hostname` (kwok's nodes are annotated `kwok.x-k8s.io/node=fake`;
/// the real node, if any, is not one of them).
async fn a_kwok_node(client: &Client) -> anyhow::Result<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|n| {
            n.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kwok.x-k8s.io/node"))
                .is_some_and(|v| v == "fake")
        })
        .find_map(|n| n.metadata.labels?.get("kubernetes.io/hostname").cloned())
        .ok_or_else(|| anyhow::anyhow!("no kwok node in the cluster"))
}

fn spec(name: &str, node: &str, postgres_pool: &str) -> String {
    format!(
        "apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata:
  name: {name}
spec:
  durationSeconds: 3600
  startDelaySeconds: 5
  tenants:
    - name: standard
      profile: standard
      placement: {{podLabels: {{team: clients}}}}
  proxy: {{hpa: {{enabled: false}}}}
  postgres: {{volume: EmptyDir{postgres_pool}}}
  prometheus: {{enabled: false}}
  grafana: {{enabled: false}}
  timeouts: {{podStartGraceSeconds: 2, provisioningSeconds: 120}}
  placement:
    nodeSelector: {{kubernetes.io/hostname: {node}}}
    tolerations: [{{key: dedicated, operator: Equal, value: load, effect: NoSchedule}}]
    imagePullSecrets: [{{name: regcred}}]
    podLabels: {{team: mail}}
    podAnnotations: {{example.com/cost-center: \"42\"}}
"
    )
}

#[tokio::test]
async fn placement_reaches_every_pod_template_and_the_scheduler() -> anyhow::Result<()> {
    with_temp_ns("placement", |client, ns| async move {
        install_crd(&client).await?;
        let node = a_kwok_node(&client).await?;
        let _op = Operator::start(&client, &ns, &dead_overrides(&["standard"])).await?;
        Kubectl::new()?
            .apply(&ns.name, &spec("placed", &node, ""))
            .await?;
        // The clients exist once the load window is published: every pod template by then.
        let pts: Api<PressureTest> = Api::namespaced(client.clone(), &ns.name);
        wait_pt(
            &pts,
            "placed",
            Duration::from_secs(120),
            "the load window",
            |pt| {
                pt.status
                    .as_ref()
                    .is_some_and(|s| s.load_start_at.is_some())
            },
        )
        .await?;
        let children = poll(
            Duration::from_secs(30),
            Duration::from_millis(200),
            "the client Deployment",
            || async {
                let c = Children::read(&client, &ns.name, "placed").await?;
                Ok(c.templates
                    .contains_key("Deployment/placed-client-standard")
                    .then_some(c))
            },
        )
        .await?;
        let kinds: Vec<&String> = children.templates.keys().collect();
        assert_eq!(
            kinds,
            [
                "Deployment/placed-client-standard",
                "Deployment/placed-proxy",
                "Deployment/placed-sink",
                "Job/placed-setup",
                "StatefulSet/placed-postgres",
            ],
            "every pod template"
        );
        for (kind, t) in &children.templates {
            let pod = t.spec.clone().unwrap_or_default();
            let selector = pod.node_selector.unwrap_or_default();
            assert_eq!(
                selector.get("kubernetes.io/hostname"),
                Some(&node),
                "{kind}"
            );
            let toleration = pod.tolerations.unwrap_or_default();
            assert_eq!(
                toleration.first().and_then(|t| t.key.as_deref()),
                Some("dedicated"),
                "{kind}"
            );
            let secrets = pod.image_pull_secrets.unwrap_or_default();
            assert_eq!(
                secrets.first().map(|s| s.name.as_str()),
                Some("regcred"),
                "{kind}"
            );
            let meta = t.metadata.clone().unwrap_or_default();
            let team = meta.labels.unwrap_or_default().get("team").cloned();
            let want = if kind.contains("client") {
                "clients"
            } else {
                "mail"
            };
            assert_eq!(team.as_deref(), Some(want), "{kind}");
            let cost = meta
                .annotations
                .unwrap_or_default()
                .get("example.com/cost-center")
                .cloned();
            assert_eq!(cost.as_deref(), Some("42"), "{kind}");
        }
        // The scheduler placed every pod on that node.
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
        let lp = ListParams::default().labels("pressure.mailproxy.dev/test=placed");
        let placed = poll(
            Duration::from_secs(60),
            Duration::from_millis(500),
            "every pod scheduled",
            || async {
                let list = pods.list(&lp).await?.items;
                let components: std::collections::BTreeSet<String> = list
                    .iter()
                    .filter_map(|p| {
                        p.metadata
                            .labels
                            .as_ref()?
                            .get("app.kubernetes.io/component")
                            .cloned()
                    })
                    .collect();
                let all_bound = list
                    .iter()
                    .all(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some()));
                Ok((components.len() == 5 && all_bound).then_some(list))
            },
        )
        .await?;
        for p in placed {
            let on = p.spec.and_then(|s| s.node_name);
            assert_eq!(on.as_ref(), Some(&node), "{:?}", p.metadata.name);
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_component_placed_on_no_node_fails_the_run_with_the_schedulers_reason()
-> anyhow::Result<()> {
    with_temp_ns("placement-none", |client, ns| async move {
        install_crd(&client).await?;
        let node = a_kwok_node(&client).await?;
        let _op = Operator::start(&client, &ns, &dead_overrides(&["standard"])).await?;
        // PostgreSQL's own node selector replaces the spec-wide one and matches no node.
        let nowhere = ", placement: {nodeSelector: {example.com/pool: nowhere}}";
        Kubectl::new()?
            .apply(&ns.name, &spec("unplaced", &node, nowhere))
            .await?;
        let pts: Api<PressureTest> = Api::namespaced(client.clone(), &ns.name);
        let pt = wait_pt(
            &pts,
            "unplaced",
            Duration::from_secs(120),
            "the verdict",
            is_complete,
        )
        .await?;
        assert_eq!(
            condition(&pt, "Succeeded"),
            Some((ConditionStatus::False, "PodsUnhealthy".into()))
        );
        assert_eq!(
            condition(&pt, "PodsHealthy"),
            Some((ConditionStatus::False, "SchedulingError".into()))
        );
        let message = pt.status.and_then(|s| s.message).unwrap_or_default();
        assert!(
            message.contains("unplaced-postgres-0") && message.contains("node affinity/selector"),
            "{message}"
        );
        Ok(())
    })
    .await
}
