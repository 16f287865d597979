//! Runs that cannot work end as `Failed` with the reason, never stuck: a pod kwok makes fail
//! (image pull, OOM kill, crash loop; the `pressure.mailproxy.dev/kwok-fail` label of
//! e2e/README.md, put on the pod once it exists), a pod the scheduler cannot place (an unbound
//! volume claim), and an environment that never gets pods (a quota) hitting its deadline.
//! `kubectl wait --for=condition=Complete` returns for each.

use std::time::Duration;

use e2e::crd::install_crd;
use e2e::events::events_for;
use e2e::operator::dead_overrides;
use e2e::wait::{condition, poll};
use e2e::{Kubectl, Operator, TempNs, with_temp_ns};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use pressure_crds::{ConditionStatus, Phase, PressureTest};

/// A long run that only a failure can end early; `extra` adds spec lines (2-space indent).
fn spec(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata:
  name: {name}
spec:
  durationSeconds: 3600
  startDelaySeconds: 5
  tenants: [{{name: standard, profile: standard}}]
  proxy: {{hpa: {{enabled: false}}}}
  prometheus: {{enabled: false}}
  grafana: {{enabled: false}}
  timeouts: {{podStartGraceSeconds: 2, provisioningSeconds: 10}}
{extra}"
    )
}

const EMPTY_DIR: &str = "  postgres: {volume: EmptyDir}\n";

/// Waits for a pod of `component` of the PressureTest `pt`, then gives it the kwok fail label.
async fn fail_pod(
    client: &Client,
    ns: &str,
    pt: &str,
    component: &str,
    how: &str,
) -> anyhow::Result<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!(
        "pressure.mailproxy.dev/test={pt},app.kubernetes.io/component={component}"
    ));
    let what = format!("a {component} pod");
    let pod = poll(
        Duration::from_secs(90),
        Duration::from_millis(200),
        &what,
        || async {
            Ok(pods
                .list(&lp)
                .await?
                .items
                .into_iter()
                .find_map(|p| p.metadata.name))
        },
    )
    .await?;
    let label = format!("pressure.mailproxy.dev/kwok-fail={how}");
    Kubectl::new()?
        .run(&["label", "pod", &pod, "-n", ns, "--overwrite", &label])
        .await?
        .ok()?;
    Ok(pod)
}

/// `kubectl wait --for=condition=Complete` on the PressureTest, then its state.
async fn wait_complete(client: &Client, ns: &TempNs, name: &str) -> anyhow::Result<PressureTest> {
    let target = format!("pressuretest/{name}");
    Kubectl::new()?
        .run(&[
            "wait",
            "--for=condition=Complete",
            &target,
            "-n",
            &ns.name,
            "--timeout=120s",
        ])
        .await?
        .ok()?;
    Ok(Api::<PressureTest>::namespaced(client.clone(), &ns.name)
        .get(name)
        .await?)
}

/// The run failed with `verdict` (Succeeded=False) and `PodsHealthy` says `pod_reason`.
async fn assert_failed(
    client: &Client,
    ns: &str,
    pt: &PressureTest,
    verdict: &str,
) -> anyhow::Result<()> {
    let s = pt.status.clone().unwrap_or_default();
    assert_eq!(
        s.phase,
        Some(Phase::Failed),
        "phase; message {:?}",
        s.message
    );
    assert_eq!(
        condition(pt, "Succeeded"),
        Some((ConditionStatus::False, verdict.to_string()))
    );
    assert_eq!(
        condition(pt, "Complete").map(|c| c.0),
        Some(ConditionStatus::True)
    );
    assert!(s.completion_time.is_some(), "completionTime set");
    let name = pt.metadata.name.clone().unwrap_or_default();
    let events = events_for(client, ns, &name).await?;
    assert!(
        events
            .iter()
            .any(|e| e.type_ == "Warning" && e.reason == verdict),
        "a Warning event {verdict}: {events:?}"
    );
    let row = Kubectl::new()?
        .run(&["get", "pt", &name, "-n", ns, "--no-headers"])
        .await?
        .ok()?;
    assert!(
        row.contains("Failed") && row.contains(verdict),
        "kubectl get shows the verdict: {row}"
    );
    Ok(())
}

/// A pod labelled to fail with `how` ends the run with `PodsUnhealthy` and `PodsHealthy=reason`.
async fn pod_failure(prefix: &str, component: &str, how: &str, reason: &str) -> anyhow::Result<()> {
    let (component, how, reason) = (component.to_string(), how.to_string(), reason.to_string());
    with_temp_ns(prefix, |client, ns| async move {
        install_crd(&client).await?;
        let _op = Operator::start(&client, &ns, &dead_overrides(&["standard"])).await?;
        Kubectl::new()?
            .apply(&ns.name, &spec("doomed", EMPTY_DIR))
            .await?;
        let pod = fail_pod(&client, &ns.name, "doomed", &component, &how).await?;
        let pt = wait_complete(&client, &ns, "doomed").await?;
        assert_failed(&client, &ns.name, &pt, "PodsUnhealthy").await?;
        let healthy = pt
            .status
            .as_ref()
            .and_then(|s| s.condition("PodsHealthy"))
            .cloned();
        let healthy = healthy.ok_or_else(|| anyhow::anyhow!("no PodsHealthy condition"))?;
        assert_eq!(
            (healthy.status, healthy.reason.as_str()),
            (ConditionStatus::False, reason.as_str())
        );
        assert!(
            healthy.message.contains(&pod),
            "the message names the pod: {}",
            healthy.message
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn an_image_pull_failure_fails_the_run() -> anyhow::Result<()> {
    pod_failure("fail-image", "proxy", "ImagePullBackOff", "ImagePullError").await
}

#[tokio::test]
async fn an_oom_killed_sink_fails_the_run() -> anyhow::Result<()> {
    pod_failure("fail-oom", "sink", "OOMKilled", "OOMKilled").await
}

#[tokio::test]
async fn a_crash_looping_client_fails_the_run() -> anyhow::Result<()> {
    pod_failure(
        "fail-crash",
        "client",
        "CrashLoopBackOff",
        "CrashLoopBackOff",
    )
    .await
}

#[tokio::test]
async fn an_unschedulable_database_fails_the_run() -> anyhow::Result<()> {
    // No storage class, no provisioner: the claim stays unbound and the scheduler refuses the pod.
    with_temp_ns("fail-unschedulable", |client, ns| async move {
        install_crd(&client).await?;
        let _op = Operator::start(&client, &ns, &dead_overrides(&["standard"])).await?;
        Kubectl::new()?
            .apply(&ns.name, &spec("unplaced", ""))
            .await?;
        let pt = wait_complete(&client, &ns, "unplaced").await?;
        assert_failed(&client, &ns.name, &pt, "PodsUnhealthy").await?;
        let healthy = condition(&pt, "PodsHealthy");
        assert_eq!(
            healthy,
            Some((ConditionStatus::False, "SchedulingError".into()))
        );
        let message = pt.status.and_then(|s| s.message).unwrap_or_default();
        assert!(
            message.contains("unplaced-postgres-0") && message.contains("PersistentVolumeClaim"),
            "{message}"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn an_environment_without_pods_hits_the_provisioning_deadline() -> anyhow::Result<()> {
    with_temp_ns("fail-deadline", |client, ns| async move {
        install_crd(&client).await?;
        let quota = "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: no-pods}\nspec: {hard: {pods: \"0\"}}\n";
        let k = Kubectl::new()?;
        k.apply(&ns.name, quota).await?;
        let _op = Operator::start(&client, &ns, &dead_overrides(&["standard"])).await?;
        k.apply(&ns.name, &spec("starved", EMPTY_DIR)).await?;
        let pt = wait_complete(&client, &ns, "starved").await?;
        assert_failed(&client, &ns.name, &pt, "DeadlineExceeded").await?;
        let message = pt.status.and_then(|s| s.message).unwrap_or_default();
        assert!(
            message.contains("not ready after 10s") && message.contains("postgres") && message.contains("proxy"),
            "{message}"
        );
        Ok(())
    })
    .await
}
