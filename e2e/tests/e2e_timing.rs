//! How fast the operator builds an environment (issue 9 asks for this figure; the aim is under
//! 2 s): the time from `kubectl apply` to every child of the first reconcile existing, and to the
//! full set (the setup Job and the client Deployments, which wait for ready pods and the setup
//! under kwok). Printed, not asserted: the median of 5 runs after one warm-up run. The test
//! fails only if an environment is not built at all within its deadline.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use e2e::children::{Children, expected};
use e2e::crd::install_crd;
use e2e::operator::dead_overrides;
use e2e::wait::poll;
use e2e::{Kubectl, Operator, with_temp_ns};
use kube::Client;

const RUNS: usize = 5;

fn spec(name: &str) -> String {
    format!(
        "apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata:
  name: {name}
spec:
  durationSeconds: 3600
  tenants: [{{name: standard, profile: standard}}]
  postgres: {{volume: EmptyDir}}
"
    )
}

/// Polls the children every 20 ms until `all` exist (at most 90 s); returns when `infra` and
/// `all` were first complete.
async fn measure(
    client: &Client,
    ns: &str,
    name: &str,
    started: Instant,
    infra: &BTreeSet<String>,
    all: &BTreeSet<String>,
) -> anyhow::Result<(Duration, Duration)> {
    let mut infra_at = None;
    loop {
        let names = Children::read(client, ns, name).await?.names();
        let now = started.elapsed();
        if infra_at.is_none() && infra.is_subset(&names) {
            infra_at = Some(now);
        }
        if &names == all {
            return Ok((infra_at.unwrap_or(now), now));
        }
        anyhow::ensure!(
            now < Duration::from_secs(90),
            "{name}: children incomplete after 90 s: have {names:?}, want {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn time_from_apply_to_children() -> anyhow::Result<()> {
    with_temp_ns("timing", |client, ns| async move {
        install_crd(&client).await?;
        let _op = Operator::start(&client, &ns, &dead_overrides(&["standard"])).await?;
        let k = Kubectl::new()?;
        let (mut first, mut full, mut kubectl) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..=RUNS {
            let name = format!("timing-{i}");
            let all = expected(&name, &["standard"], true, true, true);
            let infra = expected(&name, &[], true, true, false);
            let started = Instant::now();
            k.apply(&ns.name, &spec(&name)).await?;
            let applied = started.elapsed();
            let (infra_at, all_at) = measure(&client, &ns.name, &name, started, &infra, &all).await?;
            if i > 0 {
                kubectl.push(applied);
                first.push(infra_at);
                full.push(all_at);
            }
            // The next run starts on a quiet cluster: this one's children are collected first.
            k.run(&["delete", "pt", &name, "-n", &ns.name]).await?.ok()?;
            let what = format!("the children of {name} to be collected");
            poll(Duration::from_secs(90), Duration::from_millis(200), &what, || async {
                Ok(Children::read(&client, &ns.name, &name).await?.names().is_empty().then_some(()))
            })
            .await?;
        }
        let ms = |v: &[Duration]| v.iter().map(|d| d.as_millis().to_string()).collect::<Vec<_>>().join(", ");
        eprintln!(
            "e2e timing: kubectl apply -> first-reconcile children (Secret, PostgreSQL, sink, proxy + HPA, \
             Prometheus, Grafana): median {} ms over {RUNS} runs [{}]",
            median(first.clone()).as_millis(),
            ms(&first)
        );
        eprintln!(
            "e2e timing: of which `kubectl apply` itself (until it exits): median {} ms [{}]",
            median(kubectl.clone()).as_millis(),
            ms(&kubectl)
        );
        eprintln!(
            "e2e timing: kubectl apply -> every child incl. setup Job and clients (waits for kwok pods and the \
             Job): median {} ms [{}]",
            median(full.clone()).as_millis(),
            ms(&full)
        );
        Ok(())
    })
    .await
}
