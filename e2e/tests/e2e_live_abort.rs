//! `spec.abort` on a running PressureTest (set with `kubectl pressure abort`), with the real `mailproxy`, sink, clients and setup on
//! 127.0.0.1 standing in for the pods (as in `e2e_live_figures`): the operator tells the clients
//! to stop (`POST /stop`), the queue drains, and the run ends `Complete=True`,
//! `Succeeded=False`, reason `Aborted`, long before its hour of load, with the partial figures
//! and every threshold's outcome. Its report (retained: `reportRetention: Retain`) holds the
//! timeline while the load runs, says `Aborted` at the end and outlives the PressureTest.

use std::time::Duration;

use e2e::crd::install_crd;
use e2e::live::LiveStack;
use e2e::plugin::kubectl_pressure;
use e2e::wait::{condition, poll};
use e2e::{Kubectl, Operator, with_temp_ns};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use pressure_crds::report::Point;
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
  reportRetention: Retain
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
            let ns_name = ns.name.clone();
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
                // While the load runs, the report ConfigMap holds the timeline so far.
                let cms: Api<ConfigMap> = Api::namespaced(pts.clone().into_client(), &ns_name);
                poll(
                    Duration::from_secs(40),
                    Duration::from_millis(500),
                    "a timeline point in the report ConfigMap",
                    || async {
                        let pt = pts.get("aborted").await?;
                        let Some(name) = pt.status.and_then(|s| s.report) else {
                            return Ok(None);
                        };
                        let cm = cms.get_opt(&name).await?;
                        let points = cm
                            .and_then(|c| c.data)
                            .and_then(|d| d.get("timeline.json").cloned())
                            .map(|t| serde_json::from_str::<Vec<Point>>(&t))
                            .transpose()?
                            .unwrap_or_default();
                        Ok((!points.is_empty()).then_some(()))
                    },
                )
                .await?;
                let (code, out, err) = kubectl_pressure(&ns_name, &["abort", "aborted"]).await?;
                anyhow::ensure!(code == 0, "kubectl pressure abort: {out}{err}");
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
        check_retained_report(&client, &pt).await
    })
    .await
}

/// The report of the aborted run says so, with its partial figures; with
/// `reportRetention: Retain` it has no owner and outlives the PressureTest, whose owned objects
/// the garbage collector removes.
async fn check_retained_report(client: &kube::Client, pt: &PressureTest) -> anyhow::Result<()> {
    let ns = pt.namespace().unwrap_or_default();
    let s = pt.status.clone().unwrap_or_default();
    let (cm, r) = e2e::report::read(client, pt).await?;
    assert_eq!(
        (r.verdict.as_str(), r.interrupted, r.passed),
        ("Aborted", true, false)
    );
    assert_eq!(Some(&r.figures), s.figures.as_ref());
    e2e::report::check_timeline(&r)?;
    assert!(
        r.measured_seconds < 300.0,
        "measured up to the abort, not the planned hour: {}",
        r.measured_seconds
    );
    assert!(cm.owner_references().is_empty(), "{:?}", cm.metadata);
    assert_eq!(
        cm.annotations()
            .get("pressure.mailproxy.dev/pressuretest-uid"),
        pt.uid().as_ref()
    );
    let pts: Api<PressureTest> = Api::namespaced(client.clone(), &ns);
    pts.delete("aborted", &DeleteParams::background()).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    poll(
        Duration::from_secs(60),
        Duration::from_millis(250),
        "the PressureTest and its Secret gone",
        || async {
            let gone = pts.get_opt("aborted").await?.is_none()
                && secrets.get_opt("aborted-credentials").await?.is_none();
            Ok(gone.then_some(()))
        },
    )
    .await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let kept = cms.get_opt(&cm.name_any()).await?;
    assert_eq!(
        kept.and_then(|c| c.data),
        cm.data,
        "the retained report outlives its PressureTest"
    );
    Ok(())
}
