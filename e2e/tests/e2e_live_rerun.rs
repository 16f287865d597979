//! A second run of a finished PressureTest without deleting it (`spec.runNumber` raised), with the
//! real `mailproxy`, sink, clients and setup on 127.0.0.1 standing in for the pods (as in
//! `e2e_live_figures`). The new run gets a new run id and a fresh load window; its figures are
//! its own (the stand-ins restart as the rollout replaces the pods; the proxy keeps its
//! database); the first run's summary is in `status.history` and its report stays. The re-run is
//! asked for with `kubectl pressure rerun`, the first run's report read with
//! `kubectl pressure report --run 0`.

use std::time::Duration;

use e2e::crd::install_crd;
use e2e::events::events_for;
use e2e::live::LiveStack;
use e2e::plugin::kubectl_pressure;
use e2e::wait::condition;
use e2e::{Kubectl, Operator, with_temp_ns};
use pressure_crds::ConditionStatus;

const SPEC: &str = "apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata:
  name: again
spec:
  durationSeconds: 20
  warmupSeconds: 5
  startDelaySeconds: 8
  tenants:
    - name: alpha
      profile: standard
      rates: {messagesPerSync: 3, dndProbabilityPermille: 0, largeAttachmentRatePermille: 0}
  proxy:
    hpa: {enabled: false}
    tuning: {syncIntervalSeconds: 1, sendLoopIntervalMs: 100}
  postgres: {volume: EmptyDir}
  prometheus: {enabled: false}
  grafana: {enabled: false}
  thresholds: {maxP99LatencyMs: 30000, minThroughputPerSecond: 1}
  timeouts: {drainSeconds: 60}
";

#[tokio::test]
async fn raising_run_number_runs_again_and_keeps_the_first_run_in_history() -> anyhow::Result<()> {
    with_temp_ns("rerun", |client, ns| async move {
        Box::pin(rerun(client, ns)).await
    })
    .await
}

async fn rerun(client: kube::Client, ns: e2e::TempNs) -> anyhow::Result<()> {
    install_crd(&client).await?;
    let mut stack = LiveStack::start_sink(&ns, "again", &["alpha"]).await?;
    let mut op = Operator::start(&client, &ns, &stack.overrides()).await?;
    Kubectl::new()?.apply(&ns.name, SPEC).await?;
    let (first, _) = stack
        .drive(&client, &mut op, Duration::from_secs(180))
        .await?;
    let s1 = first.status.clone().unwrap_or_default();
    assert_eq!(
        condition(&first, "Succeeded"),
        Some((ConditionStatus::True, "ThresholdsPassed".into())),
        "{s1:?}"
    );
    let f1 = s1.figures.clone().unwrap_or_default();
    let run1 = s1.run_id.clone().unwrap_or_default();
    // The rollout of a new run replaces the pods: here, the stand-ins start afresh.
    stack.restart(&[]).await?;
    let (code, out, err) = kubectl_pressure(&ns.name, &["rerun", "again"]).await?;
    assert_eq!(code, 0, "kubectl pressure rerun: {out}{err}");
    assert!(out.contains("run 1 requested"), "{out}");
    // Boxed: two drives and their reports make a future too deep for a test thread's stack.
    let (second, _) =
        Box::pin(stack.drive_after(&client, &mut op, Duration::from_secs(180), Some(&run1)))
            .await?;
    let s2 = second.status.clone().unwrap_or_default();
    eprintln!(
        "e2e rerun: run 1 {run1} {}; run 2 {:?} {}; history {}",
        serde_json::to_string(&f1)?,
        s2.run_id,
        serde_json::to_string(&s2.figures)?,
        serde_json::to_string(&s2.history)?
    );
    assert_eq!(
        condition(&second, "Succeeded"),
        Some((ConditionStatus::True, "ThresholdsPassed".into())),
        "{s2:?}"
    );
    assert_eq!(s2.run_number, Some(1));
    assert!(s2.run_id.as_deref().is_some_and(|r| r != run1), "{s2:?}");
    assert!(
        s2.load_start_at > s1.load_stop_at,
        "a new load window after the first"
    );
    // The second run's figures are its own: they equal the fresh processes' counts.
    let f2 = s2.figures.clone().unwrap_or_default();
    let generated = stack.client_stats("alpha").await?.messages_generated as i64;
    let received = stack.sink_stats().await?.total.received as i64;
    assert_eq!((f2.generated, f2.delivered), (generated, Some(received)));
    assert!(f2.sent > 0 && f2.sent == received, "{f2:?}");
    // The first run, summarised, and its report, kept.
    assert_eq!(s2.history.len(), 1, "{:?}", s2.history);
    let h = &s2.history[0];
    assert_eq!((h.run_number, h.run_id.as_str()), (0, run1.as_str()));
    assert_eq!(
        (h.verdict.as_str(), h.succeeded),
        ("ThresholdsPassed", true)
    );
    assert_eq!((h.sent, h.delivered), (f1.sent, f1.delivered));
    assert_eq!(h.report, s1.report);
    let (_, report1) = e2e::report::read(&client, &first).await?;
    assert_eq!(report1.run_id, run1);
    let (_, report2) = e2e::report::read(&client, &second).await?;
    assert_eq!(report2.run_id, s2.run_id.clone().unwrap_or_default());
    assert_ne!(s2.report, s1.report);
    // `kubectl pressure report --run 0` writes the first run's stored report.
    let dir = ns.dir.join("run0");
    let dir_s = dir.display().to_string();
    let (code, out, err) = kubectl_pressure(
        &ns.name,
        &["report", "again", "--run", "0", "--out", &dir_s],
    )
    .await?;
    assert_eq!(code, 0, "{out}{err}");
    let written: pressure_crds::report::Report =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json"))?)?;
    assert_eq!(written, report1);
    assert!(out.contains("Verdict: PASS (ThresholdsPassed)"), "{out}");
    let (code, _, err) = kubectl_pressure(&ns.name, &["report", "again", "--run", "7"]).await?;
    assert_eq!(code, 2);
    assert!(err.contains("has no run 7; its runs: 1, 0"), "{err}");
    let events = events_for(&client, &ns.name, "again").await?;
    assert!(
        events.iter().any(|e| e.reason == "Rerun"),
        "a Rerun event: {:?}",
        events.iter().map(|e| &e.reason).collect::<Vec<_>>()
    );
    Ok(())
}
