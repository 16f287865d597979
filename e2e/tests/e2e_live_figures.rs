//! Live figures and a real verdict: pods under kwok run nothing, so the real `mailproxy`,
//! `client-sim sink`, one `client-sim serve` per tenant and `client-sim setup` run on 127.0.0.1,
//! configured from the objects the operator created (the clients get the run id and load window
//! from their Deployments), and the operator reads them through `--endpoint-override`. The status
//! shows non-zero sent counts while the load runs, then `Succeeded=True` (ThresholdsPassed) with
//! figures that match the sink's and the clients' own `/stats`, and a report ConfigMap with the
//! same figures, a timeline and a chart.

use std::time::Duration;

use e2e::crd::install_crd;
use e2e::live::LiveStack;
use e2e::plugin::kubectl_pressure;
use e2e::wait::{condition, poll};
use e2e::{Kubectl, Operator, with_temp_ns};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use pressure_crds::report::{Latency, Report};
use pressure_crds::{ConditionStatus, Phase, PressureTest};

const TENANTS: [&str; 2] = ["alpha", "beta"];

/// A 25-second run (5 s warm-up) of two small tenants without attachments over 10 MiB or
/// do-not-disturb pauses, with thresholds such a run meets; the load ramps up over the warm-up
/// and on to 150 % (`stages`, which the clients take from their Deployments).
const SPEC: &str = "apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata:
  name: live
spec:
  durationSeconds: 20
  warmupSeconds: 5
  startDelaySeconds: 8
  tenants:
    - name: alpha
      rates: {messagesPerSync: 3, cacheHitRatePermille: 500, dndProbabilityPermille: 0, largeAttachmentRatePermille: 0}
    - name: beta
      profile: standard
      rates: {messagesPerSync: 2, dndProbabilityPermille: 0, largeAttachmentRatePermille: 0}
  proxy:
    hpa: {enabled: false}
    tuning: {syncIntervalSeconds: 1, sendLoopIntervalMs: 100}
  postgres: {volume: EmptyDir}
  prometheus: {enabled: false}
  grafana: {enabled: false}
  thresholds:
    maxErrorRatePermille: 0
    maxP99LatencyMs: 30000
    minThroughputPerSecond: 1
    minDeliveredRatioPermille: 990
  timeouts: {drainSeconds: 60}
  stages:
    - {durationSeconds: 5, ratePercent: 100}
    - {durationSeconds: 10, ratePercent: 150}
  baseline:
    report: slow-baseline
    tolerance: {throughputDropPercent: 50}
";

#[tokio::test]
async fn live_run_reports_real_figures_and_passes_its_thresholds() -> anyhow::Result<()> {
    with_temp_ns("live", |client, ns| async move {
        install_crd(&client).await?;
        // A baseline any working run beats: half a message a second, a p99 of 100 s, every
        // message in error.
        let mut slow = Report {
            run_id: "slow-run".into(),
            ..Report::default()
        };
        slow.total.throughput_per_second = 0.5;
        slow.total.latency_ms = Some(Latency {
            p99: 100_000.0,
            ..Latency::default()
        });
        slow.figures.error_rate_permille = 1000;
        e2e::report::put_baseline(&client, &ns.name, "slow-baseline", &slow).await?;
        let mut stack = LiveStack::start_sink(&ns, "live", &TENANTS).await?;
        let mut op = Operator::start(&client, &ns, &stack.overrides()).await?;
        let k = Kubectl::new()?;
        k.apply(&ns.name, SPEC).await?;
        let (_, sent_while_running) = stack
            .drive(&client, &mut op, Duration::from_secs(180))
            .await?;
        assert!(
            sent_while_running > 0,
            "the status showed sent messages while Running"
        );
        k.run(&[
            "wait",
            "--for=condition=Complete",
            "pressuretest/live",
            "-n",
            &ns.name,
            "--timeout=30s",
        ])
        .await?
        .ok()?;
        let pts: Api<PressureTest> = Api::namespaced(client.clone(), &ns.name);
        let pt = pts.get("live").await?;
        let s = pt.status.clone().unwrap_or_default();
        eprintln!(
            "e2e live: sent while running {sent_while_running}; final figures {}; thresholds {}",
            serde_json::to_string(&s.figures)?,
            serde_json::to_string(&s.thresholds)?
        );
        check_verdict(&pt)?;
        check_against_sources(&pt, &stack).await?;
        check_report(&client, &pt).await?;
        check_plugin(&client, &ns, &pt).await
    })
    .await
}

/// `kubectl pressure report`, `compare` and `bundle` on the finished run.
async fn check_plugin(
    client: &kube::Client,
    ns: &e2e::TempNs,
    pt: &PressureTest,
) -> anyhow::Result<()> {
    let n = ns.name.as_str();
    let (_, stored) = e2e::report::read(client, pt).await?;
    let dir = ns.dir.join("plugin-report");
    let dir_s = dir.display().to_string();
    let (code, out, err) = kubectl_pressure(n, &["report", "live", "--out", &dir_s]).await?;
    assert_eq!(code, 0, "{out}{err}");
    let written: Report = serde_json::from_str(&std::fs::read_to_string(dir.join("report.json"))?)?;
    assert_eq!(written, stored, "the stored report, written out");
    assert!(std::fs::read_to_string(dir.join("chart.svg"))?.starts_with("<svg"));
    assert!(out.contains("Verdict: PASS (ThresholdsPassed)"), "{out}");
    // Against the slow baseline: within tolerance, exit 0; against a file no run can match:
    // regressed, exit 1.
    let (code, out, err) =
        kubectl_pressure(n, &["compare", "live", "--with", "cm/slow-baseline"]).await?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Baseline: within tolerance"), "{out}");
    let mut fast = stored.clone();
    fast.run_id = "fast-file".into();
    fast.total.throughput_per_second *= 100.0;
    let fast_path = ns.dir.join("fast.json");
    std::fs::write(&fast_path, serde_json::to_string(&fast)?)?;
    let fast_s = fast_path.display().to_string();
    let (code, out, err) = kubectl_pressure(n, &["compare", "live", "--with", &fast_s]).await?;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("FAIL throughputPerSecond") && out.contains("REGRESSED"),
        "{out}"
    );
    // The bundle: spec and status, events, children, logs' place, the report; no secret value.
    let tgz = ns.dir.join("bundle.tar.gz");
    let tgz_s = tgz.display().to_string();
    let (code, out, err) = kubectl_pressure(n, &["bundle", "live", "-o", &tgz_s]).await?;
    assert_eq!(code, 0, "{out}{err}");
    let tar = tokio::process::Command::new("tar")
        .args(["-xzf", &tgz_s, "-C"])
        .arg(&ns.dir)
        .output()
        .await?;
    assert!(
        tar.status.success(),
        "{}",
        String::from_utf8_lossy(&tar.stderr)
    );
    let b = ns.dir.join("bundle");
    for f in [
        "pressuretest.yaml",
        "events.yaml",
        "children/deployment-live-proxy.yaml",
        "children/secret-live-credentials.yaml",
        "report/report.json",
        "report/chart.svg",
    ] {
        assert!(b.join(f).is_file(), "{f} in the bundle");
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), n);
    let creds = secrets.get("live-credentials").await?;
    let mut all = String::new();
    for entry in walk(&b)? {
        all.push_str(&String::from_utf8_lossy(&std::fs::read(entry)?));
    }
    for (key, value) in creds.data.unwrap_or_default() {
        let plain = String::from_utf8_lossy(&value.0).into_owned();
        let encoded = serde_json::to_string(&value)?.trim_matches('"').to_string();
        assert!(
            !all.contains(&plain) && !all.contains(&encoded),
            "the value of {key} is in the bundle"
        );
    }
    // `<redacted>`, base64-encoded as a Secret's data is.
    assert!(all.contains("PHJlZGFjdGVkPg=="), "redacted values");
    Ok(())
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

/// The report ConfigMap holds the local run's document with the status's figures, per-tenant
/// lines, thresholds and verdict, a timeline of the load and its chart. It is owned by the
/// PressureTest (`reportRetention: Delete`) until the retention changes to `Retain`.
async fn check_report(client: &kube::Client, pt: &PressureTest) -> anyhow::Result<()> {
    let s = pt.status.clone().unwrap_or_default();
    let (cm, r) = e2e::report::read(client, pt).await?;
    eprintln!(
        "e2e live: report {} with {} timeline points: {:?}",
        cm.name_any(),
        r.timeline.len(),
        r.timeline
    );
    assert_eq!(Some(r.run_id.clone()), s.run_id);
    assert_eq!((r.verdict.as_str(), r.passed), ("ThresholdsPassed", true));
    assert_eq!(Some(&r.figures), s.figures.as_ref());
    assert_eq!(
        (&r.per_tenant, &r.thresholds),
        (&s.per_tenant, &s.thresholds)
    );
    let f = s.figures.clone().unwrap_or_default();
    assert_eq!(Some(r.total.delivered as i64), f.delivered);
    assert_eq!((r.total.lost, r.total.clients), (0, 2));
    let stages: Vec<(i32, i32)> = r
        .stages
        .iter()
        .map(|s| (s.duration_seconds, s.rate_percent))
        .collect();
    assert_eq!(
        stages,
        vec![(5, 100), (10, 150)],
        "the load's stages, for the chart"
    );
    assert_eq!(
        condition(pt, "Regressed"),
        Some((ConditionStatus::False, "WithinTolerance".into())),
        "{:?}",
        s.comparison
    );
    let c = s.comparison.clone().unwrap_or_default();
    assert_eq!(c.baseline_run_id, "slow-run");
    assert!(c.deltas.iter().all(|d| !d.regressed), "{c:?}");
    let tput = c.deltas.iter().find(|d| d.name == "throughputPerSecond");
    assert_eq!(
        tput.and_then(|d| d.limit),
        Some(0.3),
        "half of 0.5, rounded: {c:?}"
    );
    assert_eq!(r.comparison, s.comparison);
    e2e::report::check_timeline(&r)?;
    assert!(
        r.timeline.iter().any(|p| p.latency_p99_ms.is_some()),
        "the p99 of some interval, from the sink's histogram: {:?}",
        r.timeline
    );
    let data = cm.data.clone().unwrap_or_default();
    let svg = data.get("chart.svg").map_or("", String::as_str);
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    assert!(
        !data.contains_key("timeline.json"),
        "the timeline is in report.json now"
    );
    let owner = |cm: &ConfigMap| {
        cm.owner_references()
            .iter()
            .any(|o| o.controller == Some(true) && Some(&o.uid) == pt.uid().as_ref())
    };
    assert!(owner(&cm), "owned by the PressureTest: {:?}", cm.metadata);
    // Retained after the verdict: the same report, no longer owned.
    let pts: Api<PressureTest> =
        Api::namespaced(client.clone(), &pt.namespace().unwrap_or_default());
    let patch = serde_json::json!({"spec": {"reportRetention": "Retain"}});
    pts.patch("live", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &pt.namespace().unwrap_or_default());
    let retained = poll(
        Duration::from_secs(30),
        Duration::from_millis(200),
        "the report without its owner reference",
        || async {
            let now = cms.get(&cm.name_any()).await?;
            Ok((!owner(&now)).then_some(now))
        },
    )
    .await?;
    assert_eq!(retained.data, cm.data, "the same report");
    Ok(())
}

fn check_verdict(pt: &PressureTest) -> anyhow::Result<()> {
    let s = pt.status.clone().unwrap_or_default();
    assert_eq!(
        condition(pt, "Succeeded"),
        Some((ConditionStatus::True, "ThresholdsPassed".into())),
        "verdict; thresholds {:?}, message {:?}",
        s.thresholds,
        s.message
    );
    assert_eq!(s.phase, Some(Phase::Succeeded));
    assert_eq!(
        s.thresholds.len(),
        7,
        "one line per threshold (loss, duplicates and attachment checks included): {:?}",
        s.thresholds
    );
    assert!(
        s.thresholds
            .iter()
            .all(|t| t.passed && t.observed.is_some()),
        "{:?}",
        s.thresholds
    );
    let f = s.figures.clone().unwrap_or_default();
    assert!(f.sent > 0 && f.generated > 0, "figures {f:?}");
    assert_eq!((f.errors, f.pending), (0, 0), "figures {f:?}");
    assert!(f.rate_per_second >= 1, "rate {f:?}");
    assert!(
        f.latency_p99_ms.is_some_and(|p| p > 0),
        "latency from the sink: {f:?}"
    );
    Ok(())
}

/// The final figures equal what the sink and the clients report themselves.
async fn check_against_sources(pt: &PressureTest, stack: &LiveStack) -> anyhow::Result<()> {
    let s = pt.status.clone().unwrap_or_default();
    let f = s.figures.clone().unwrap_or_default();
    let sink = stack.sink_stats().await?;
    let received = sink.total.received as i64;
    assert_eq!(
        f.delivered,
        Some(received),
        "delivered = sink /stats received"
    );
    assert_eq!(
        f.sent, received,
        "every message the proxy sent reached the sink"
    );
    assert_eq!(f.duplicates, Some(sink.total.duplicates as i64));
    let mut generated = 0;
    for t in TENANTS {
        let c = stack.client_stats(t).await?;
        generated += c.messages_generated as i64;
        let row = s.per_tenant.iter().find(|r| r.name == t);
        let row = row
            .ok_or_else(|| anyhow::anyhow!("no per-tenant figures for {t}: {:?}", s.per_tenant))?;
        let sink_t = sink.tenants.get(t).map_or(0, |x| x.received as i64);
        assert!(row.sent > 0, "tenant {t} sent: {row:?}");
        assert_eq!(row.delivered, Some(sink_t), "tenant {t} delivered = sink");
        assert_eq!(
            row.generated, c.messages_generated as i64,
            "tenant {t} generated = client"
        );
    }
    assert_eq!(
        f.generated, generated,
        "generated = sum of the clients' /stats"
    );
    assert_eq!(
        f.delivered_ratio_permille,
        Some(received * 1000 / generated.max(1))
    );
    Ok(())
}
