//! `ttlSecondsAfterFinished`: a finished run is deleted when its TTL runs out, and its children go
//! with it (garbage collection through the owner references); with `ttlAppliesTo: OnSuccess` a
//! failed run stays. The runs fail fast on purpose: a quota allows no pod, so provisioning hits
//! its 10 s deadline.

use std::time::Duration;

use e2e::crd::install_crd;
use e2e::events::events_for;
use e2e::operator::dead_overrides;
use e2e::wait::{condition, is_complete, poll, wait_pt};
use e2e::{Kubectl, Operator, with_temp_ns};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use pressure_crds::{ConditionStatus, PressureTest};

const NO_PODS: &str =
    "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: no-pods}\nspec: {hard: {pods: \"0\"}}\n";

fn spec(name: &str, ttl: &str) -> String {
    format!(
        "apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata:
  name: {name}
spec:
  tenants: [{{name: standard, profile: standard}}]
  proxy: {{hpa: {{enabled: false}}}}
  postgres: {{volume: EmptyDir}}
  prometheus: {{enabled: false}}
  grafana: {{enabled: false}}
  timeouts: {{provisioningSeconds: 10}}
{ttl}"
    )
}

#[tokio::test]
async fn a_finished_run_is_deleted_with_its_children_when_its_ttl_runs_out() -> anyhow::Result<()> {
    with_temp_ns("ttl", |client, ns| async move {
        install_crd(&client).await?;
        let k = Kubectl::new()?;
        k.apply(&ns.name, NO_PODS).await?;
        let _op = Operator::start(&client, &ns, &dead_overrides(&["standard"])).await?;
        k.apply(
            &ns.name,
            &spec("expiring", "  ttlSecondsAfterFinished: 5\n"),
        )
        .await?;
        let pts: Api<PressureTest> = Api::namespaced(client.clone(), &ns.name);
        let done = wait_pt(
            &pts,
            "expiring",
            Duration::from_secs(90),
            "the verdict",
            is_complete,
        )
        .await?;
        let finished = tokio::time::Instant::now();
        assert_eq!(
            condition(&done, "Succeeded"),
            Some((ConditionStatus::False, "DeadlineExceeded".into()))
        );
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
        assert!(secrets.get_opt("expiring-credentials").await?.is_some());
        // The event comes before the delete; read it while the object still exists.
        let events = poll(
            Duration::from_secs(30),
            Duration::from_millis(200),
            "the Expired event",
            || async {
                let e = events_for(&client, &ns.name, "expiring").await?;
                Ok(e.iter().any(|e| e.reason == "Expired").then_some(e))
            },
        )
        .await?;
        let expired = events
            .iter()
            .find(|e| e.reason == "Expired")
            .expect("found");
        assert!(
            expired.note.contains("ttlSecondsAfterFinished (5 s)"),
            "{expired:?}"
        );
        poll(
            Duration::from_secs(30),
            Duration::from_millis(200),
            "the PressureTest gone",
            || async { Ok(pts.get_opt("expiring").await?.is_none().then_some(())) },
        )
        .await?;
        let waited = finished.elapsed();
        assert!(
            waited >= Duration::from_secs(3),
            "deleted after its TTL, not before: {waited:?}"
        );
        poll(
            Duration::from_secs(60),
            Duration::from_millis(500),
            "its Secret collected",
            || async {
                Ok(secrets
                    .get_opt("expiring-credentials")
                    .await?
                    .is_none()
                    .then_some(()))
            },
        )
        .await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_failed_run_stays_when_the_ttl_applies_on_success_only() -> anyhow::Result<()> {
    with_temp_ns("ttl-success", |client, ns| async move {
        install_crd(&client).await?;
        let k = Kubectl::new()?;
        k.apply(&ns.name, NO_PODS).await?;
        let _op = Operator::start(&client, &ns, &dead_overrides(&["standard"])).await?;
        let ttl = "  ttlSecondsAfterFinished: 1\n  ttlAppliesTo: OnSuccess\n";
        k.apply(&ns.name, &spec("kept", ttl)).await?;
        let pts: Api<PressureTest> = Api::namespaced(client.clone(), &ns.name);
        wait_pt(
            &pts,
            "kept",
            Duration::from_secs(90),
            "the verdict",
            is_complete,
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(8)).await;
        let pt = pts.get_opt("kept").await?;
        assert!(pt.is_some(), "a failed run outlives an OnSuccess TTL");
        Ok(())
    })
    .await
}
