//! The verdict in the cluster is as strict as the local run's: a run that loses mail and a run on
//! a mail catcher both end `Succeeded=False`, each with its reason, on real figures. As in
//! `e2e_live_figures`, the real `mailproxy`, `client-sim sink`, clients and setup run on
//! 127.0.0.1 as stand-ins for the pods kwok does not run. The lossy run is also compared with a
//! baseline report it cannot match (`spec.baseline`): `Regressed=True`.

use std::time::Duration;

use e2e::crd::install_crd;
use e2e::live::LiveStack;
use e2e::wait::condition;
use e2e::{Kubectl, Operator, with_temp_ns};
use pressure_crds::report::Report;
use pressure_crds::{ConditionStatus, PressureTest, ThresholdOutcome, ThresholdResult};

const TENANTS: [&str; 2] = ["alpha", "beta"];

/// A 20-second run of two small tenants; `{sink}` and `{thresholds}` are filled in per test.
fn spec(name: &str, sink: &str, thresholds: &str) -> String {
    format!(
        "apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata:
  name: {name}
spec:
  durationSeconds: 15
  warmupSeconds: 5
  startDelaySeconds: 8
  tenants:
    - name: alpha
      rates: {{messagesPerSync: 3, cacheHitRatePermille: 500, dndProbabilityPermille: 0, largeAttachmentRatePermille: 0}}
    - name: beta
      profile: standard
      rates: {{messagesPerSync: 2, dndProbabilityPermille: 0, largeAttachmentRatePermille: 0}}
  proxy:
    hpa: {{enabled: false}}
    tuning: {{syncIntervalSeconds: 1, sendLoopIntervalMs: 100}}
  postgres: {{volume: EmptyDir}}
  sink: {sink}
  prometheus: {{enabled: false}}
  grafana: {{enabled: false}}
  thresholds: {thresholds}
  timeouts: {{drainSeconds: 60}}
"
    )
}

/// Something done to the sink while the run goes on, given the sink's URL.
type During = Box<dyn Fn(String) -> tokio::task::JoinHandle<anyhow::Result<()>>>;

/// Applies `spec` as `name` and runs it to its end with these sink arguments, running `during`
/// (if any) beside it; its error fails the test.
async fn run(
    client: &kube::Client,
    ns: &e2e::TempNs,
    name: &str,
    spec: &str,
    sink_args: &[&str],
    during: Option<During>,
) -> anyhow::Result<(PressureTest, LiveStack)> {
    install_crd(client).await?;
    let mut stack = LiveStack::start_sink_with(ns, name, &TENANTS, sink_args).await?;
    let task = during.map(|f| f(stack.sink_url()));
    let mut op = Operator::start(client, ns, &stack.overrides()).await?;
    Kubectl::new()?.apply(&ns.name, spec).await?;
    let (pt, _) = stack
        .drive(client, &mut op, Duration::from_secs(180))
        .await?;
    if let Some(task) = task {
        task.await??;
    }
    let s = pt.status.clone().unwrap_or_default();
    eprintln!(
        "e2e {name}: figures {}; thresholds {}; message {:?}",
        serde_json::to_string(&s.figures)?,
        serde_json::to_string(&s.thresholds)?,
        s.message
    );
    Ok((pt, stack))
}

fn line<'a>(pt: &'a PressureTest, name: &str) -> &'a ThresholdResult {
    pt.status
        .as_ref()
        .and_then(|s| s.thresholds.iter().find(|t| t.name == name))
        .unwrap_or_else(|| panic!("no threshold line {name}: {:?}", pt.status))
}

#[tokio::test]
async fn a_run_that_loses_mail_fails_with_the_lost_count_from_the_sink() -> anyhow::Result<()> {
    with_temp_ns("lossy", |client, ns| async move {
        // Mail is lost after the proxy handed it over: the sink forgets everything it had
        // received (`POST /reset`) once a few messages are in. Those messages were sent and
        // reported sent to their clients, and the sink cannot show them. Errors and the delivered
        // ratio are allowed here, so the loss alone must fail the run. (A message the sink
        // refuses is not lost: the proxy reports it to its client as an error.)
        let thresholds = "{maxErrorRatePermille: 1000, maxP99LatencyMs: 30000, \
                          minThroughputPerSecond: 1, minDeliveredRatioPermille: 0}";
        // Compared with a run no loopback stack can match: Regressed=True besides the verdict.
        let spec = spec("lossy", "{kind: Verifying}", thresholds)
            + "  baseline: {report: fast-baseline}\n";
        let mut fast = Report {
            run_id: "fast-run".into(),
            ..Report::default()
        };
        fast.total.throughput_per_second = 1_000_000.0;
        fast.figures.error_rate_permille = 1000;
        e2e::report::put_baseline(&client, &ns.name, "fast-baseline", &fast).await?;
        let forget = forget_after(5);
        let (pt, stack) = run(
            &client,
            &ns,
            "lossy",
            &spec,
            &["--allow-reset"],
            Some(Box::new(forget)),
        )
        .await?;
        assert_eq!(
            condition(&pt, "Succeeded"),
            Some((ConditionStatus::False, "DeliveryMismatch".into())),
            "{:?}",
            pt.status
        );
        let sink = stack.sink_stats().await?;
        let mut generated = 0;
        for t in TENANTS {
            generated += stack.client_stats(t).await?.messages_generated as i64;
        }
        let distinct = (sink.total.received - sink.total.duplicates) as i64;
        let f = pt
            .status
            .as_ref()
            .and_then(|s| s.figures.clone())
            .unwrap_or_default();
        assert_eq!(f.errors, 0, "nothing was refused: {f:?}");
        let lost = line(&pt, "maxLostMessages");
        assert_eq!(lost.outcome, ThresholdOutcome::Breached, "{lost:?}");
        assert_eq!(
            lost.observed,
            Some(generated - distinct),
            "lost = generated by the clients - distinct deliveries at the sink - errors"
        );
        assert!(
            generated - distinct >= 5,
            "the sink forgot at least 5 messages"
        );
        for name in [
            "maxErrorRatePermille",
            "maxDuplicates",
            "minThroughputPerSecond",
        ] {
            let l = line(&pt, name);
            assert_eq!(l.outcome, ThresholdOutcome::Passed, "{l:?}");
        }
        check_regressed(&client, &pt).await
    })
    .await
}

/// Against the unreachable baseline, throughput regressed: the `Regressed` condition,
/// `status.comparison` and the report's `comparison` say so.
async fn check_regressed(client: &kube::Client, pt: &PressureTest) -> anyhow::Result<()> {
    assert_eq!(
        condition(pt, "Regressed"),
        Some((ConditionStatus::True, "Regressed".into())),
        "{:?}",
        pt.status
    );
    let c = pt
        .status
        .as_ref()
        .and_then(|s| s.comparison.clone())
        .ok_or_else(|| anyhow::anyhow!("no status.comparison"))?;
    assert_eq!(
        (c.baseline_run_id.as_str(), c.baseline_source.as_str()),
        ("fast-run", "ConfigMap fast-baseline")
    );
    let regressed: Vec<&str> = c
        .deltas
        .iter()
        .filter(|d| d.regressed)
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(regressed, vec!["throughputPerSecond"], "{c:?}");
    let (_, report) = e2e::report::read(client, pt).await?;
    assert_eq!(report.comparison, Some(c));
    Ok(())
}

/// Once the sink has received `n` messages, `POST /reset` on it (the sink forgets them).
fn forget_after(n: u64) -> impl Fn(String) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    move |sink_url: String| {
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            loop {
                let stats: mailproxy_proto::stats::SinkStatsV1 = http
                    .get(format!("{sink_url}/stats"))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                if stats.total.received >= n {
                    break;
                }
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "the sink received {} messages in 120 s, fewer than {n}",
                    stats.total.received
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            http.post(format!("{sink_url}/reset"))
                .send()
                .await?
                .error_for_status()?;
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_run_on_a_mail_catcher_is_not_measured_and_fails() -> anyhow::Result<()> {
    with_temp_ns("catcher", |client, ns| async move {
        // With `kind: MailHog` (an alias of Mailpit) the operator reads only Mailpit's message
        // count from the sink's address; the verifying sink standing in here has no Mailpit API,
        // so delivery, loss, duplicates, attachments, throughput and latency cannot be measured,
        // and the run cannot pass them.
        let thresholds = "{maxErrorRatePermille: 10}";
        let spec = spec("catcher", "{kind: MailHog}", thresholds);
        let (pt, _stack) = run(&client, &ns, "catcher", &spec, &[], None).await?;
        assert_eq!(
            condition(&pt, "Succeeded"),
            Some((ConditionStatus::False, "NotMeasured".into())),
            "{:?}",
            pt.status
        );
        for name in [
            "minThroughputPerSecond",
            "maxP99LatencyMs",
            "minDeliveredRatioPermille",
            "maxLostMessages",
            "maxDuplicates",
            "maxAttachmentMismatches",
        ] {
            let l = line(&pt, name);
            assert_eq!(
                (l.outcome, l.observed, l.passed),
                (ThresholdOutcome::NotMeasured, None, false),
                "{l:?}"
            );
        }
        let errors = line(&pt, "maxErrorRatePermille");
        assert_eq!(errors.outcome, ThresholdOutcome::Passed, "{errors:?}");
        let f = pt.status.and_then(|s| s.figures).unwrap_or_default();
        assert!(f.sent > 0, "the proxy sent mail: {f:?}");
        assert_eq!(f.delivered, None, "no delivery count from a mail catcher");
        Ok(())
    })
    .await
}
