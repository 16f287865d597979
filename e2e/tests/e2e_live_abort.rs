//! `spec.abort` on a running PressureTest, with the real `mailproxy`, sink, clients and setup on
//! 127.0.0.1 standing in for the pods (as in `e2e_live_figures`): the operator tells the clients
//! to stop (`POST /stop`), the queue drains, and the run ends `Complete=True`,
//! `Succeeded=False`, reason `Aborted`, long before its hour of load, with the partial figures
//! and every threshold's outcome.

use std::time::Duration;

use e2e::crd::install_crd;
use e2e::live::LiveStack;
use e2e::wait::condition;
use e2e::{Kubectl, Operator, with_temp_ns};
use kube::api::{Api, Patch, PatchParams};
use pressure_crds::{ConditionStatus, Phase, PressureTest};

const SPEC: &str = "apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata:
  name: aborted
spec:
  durationSeconds: 3600
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
  timeouts: {drainSeconds: 60}
";

#[tokio::test]
async fn an_aborted_run_stops_its_clients_drains_and_ends_aborted() -> anyhow::Result<()> {
    with_temp_ns("abort", |client, ns| async move {
        install_crd(&client).await?;
        let mut stack = LiveStack::start_sink(&ns, "aborted", &["alpha"]).await?;
        let mut op = Operator::start(&client, &ns, &stack.overrides()).await?;
        Kubectl::new()?.apply(&ns.name, SPEC).await?;
        // Abort once mail flows: a task beside the driver.
        let pts: Api<PressureTest> = Api::namespaced(client.clone(), &ns.name);
        let abort = {
            let pts = pts.clone();
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
                loop {
                    let pt = pts.get("aborted").await?;
                    let s = pt.status.unwrap_or_default();
                    let sent = s.figures.map_or(0, |f| f.sent);
                    if s.phase == Some(Phase::Running) && sent > 0 {
                        break;
                    }
                    anyhow::ensure!(
                        tokio::time::Instant::now() < deadline,
                        "no mail sent in 150 s"
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                let patch = serde_json::json!({"spec": {"abort": true}});
                pts.patch("aborted", &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                anyhow::Ok(tokio::time::Instant::now())
            })
        };
        let (pt, _) = stack
            .drive(&client, &mut op, Duration::from_secs(240))
            .await?;
        let aborted_at = abort.await??;
        let took = aborted_at.elapsed();
        let s = pt.status.clone().unwrap_or_default();
        eprintln!(
            "e2e aborted: {took:?} from abort to verdict; figures {:?}; {:?}",
            s.figures, s.message
        );
        assert_eq!(s.phase, Some(Phase::Failed));
        assert_eq!(
            condition(&pt, "Succeeded"),
            Some((ConditionStatus::False, "Aborted".into()))
        );
        assert_eq!(
            condition(&pt, "Complete").map(|c| c.0),
            Some(ConditionStatus::True)
        );
        assert!(
            took < Duration::from_secs(90),
            "verdict {took:?} after the abort"
        );
        assert!(s.aborted_at.is_some() && s.load_end.is_some(), "{s:?}");
        assert_eq!(
            s.thresholds.len(),
            7,
            "every threshold judged on the partial figures"
        );
        // The client stopped generating, and every message it generated was delivered.
        let before = stack.client_stats("alpha").await?.messages_generated;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = stack.client_stats("alpha").await?.messages_generated;
        assert_eq!(before, after, "no message generated after the abort");
        let f = s.figures.clone().unwrap_or_default();
        assert!(f.sent > 0, "{f:?}");
        assert_eq!(f.generated, after as i64, "{f:?}");
        assert_eq!(
            f.delivered,
            Some(f.generated),
            "drained before the verdict: {f:?}"
        );
        Ok(())
    })
    .await
}
