//! Leader election with two replicas against the real API server (issue 15, item 15): a leader
//! paused (SIGSTOP) past its lease while a reconcile waits on a figure read loses the lease to the
//! other replica, and after SIGCONT it writes nothing as leader again: the children keep the
//! new leader's content. The replicas differ only in `--operator-pod-labels`, which the
//! NetworkPolicies carry, so every write shows who made it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::operator::{DEAD_URL, endpoint_overrides};
use e2e::procs::tail;
use e2e::wait::{poll, wait_pt, wait_until};
use e2e::{Kubectl, Operator, with_temp_ns};
use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::Api;
use kube::runtime::watcher;
use pressure_crds::{Phase, PressureTest};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const LEASE_SECONDS: &str = "6";

const SPEC: &str = "apiVersion: pressure.mailproxy.dev/v1alpha1
kind: PressureTest
metadata: {name: leader}
spec:
  durationSeconds: 3600
  warmupSeconds: 0
  startDelaySeconds: 5
  tenants: [{name: standard, profile: standard}]
  proxy: {replicas: 1, hpa: {enabled: false}}
  postgres: {volume: EmptyDir}
  prometheus: {enabled: false}
  grafana: {enabled: false}
";

/// A figure endpoint that reads each request, reports it, and never answers: a reconcile of
/// the replica that reads it stays inside `observe` until its HTTP timeout.
async fn hanging_endpoint() -> anyhow::Result<(String, tokio::sync::mpsc::Receiver<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            if sock.read(&mut buf).await.unwrap_or(0) > 0 {
                let _ = tx.try_send(());
            }
            held.push(sock);
        }
    });
    Ok((url, rx))
}

fn signal(pid: u32, sig: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill {sig} {pid} failed");
    Ok(())
}

/// Values of the `e2e-replica` label the operator peers of a policy name.
fn replicas_in(np: &NetworkPolicy) -> BTreeSet<String> {
    np.spec
        .iter()
        .flat_map(|s| s.ingress.iter().flatten())
        .flat_map(|r| r.from.iter().flatten())
        .filter_map(|p| {
            p.pod_selector
                .as_ref()?
                .match_labels
                .as_ref()?
                .get("e2e-replica")
                .cloned()
        })
        .collect()
}

async fn holder(leases: &Api<Lease>, name: &str) -> anyhow::Result<Option<String>> {
    Ok(leases
        .get_opt(name)
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity))
}

#[tokio::test]
async fn a_paused_leader_does_not_reconcile_after_losing_its_lease() -> anyhow::Result<()> {
    with_temp_ns("leader", |client, ns| async move {
        e2e::crd::install_crd(&client).await?;
        let k = Kubectl::new()?;
        let n = ns.name.as_str();
        let (hang, mut asked) = hanging_endpoint().await?;
        let args = |replica: &'static str| -> Vec<&'static str> {
            vec![
                "--lease-seconds",
                LEASE_SECONDS,
                "--operator-pod-labels",
                replica,
            ]
        };
        let mut a = Operator::spawn(
            &ns,
            &endpoint_overrides(&hang, DEAD_URL, &[("standard", DEAD_URL)]),
            "operator-a",
            "a",
            &args("e2e-replica=a"),
            &[],
        )
        .await?;
        let leases: Api<Lease> = Api::namespaced(client.clone(), n);
        let lease = Operator::lease_name(&ns);
        poll(
            Duration::from_secs(30),
            Duration::from_millis(100),
            "replica a to lead",
            || async { Ok((holder(&leases, &lease).await?.as_deref() == Some("a")).then_some(())) },
        )
        .await?;
        let b = Operator::spawn(
            &ns,
            &endpoint_overrides(DEAD_URL, DEAD_URL, &[("standard", DEAD_URL)]),
            "operator-b",
            "b",
            &args("e2e-replica=b"),
            &[],
        )
        .await?;
        k.apply(n, SPEC).await?;
        let pts: Api<PressureTest> = Api::namespaced(client.clone(), n);
        wait_pt(&pts, "leader", Duration::from_secs(120), "Running", |p| {
            p.status.as_ref().and_then(|s| s.phase) == Some(Phase::Running)
        })
        .await?;

        // Replica a reads the proxy's figures: its reconcile now waits inside the read. Pause it.
        while asked.try_recv().is_ok() {}
        tokio::time::timeout(Duration::from_secs(60), asked.recv())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the figure endpoint stopped"))?;
        let pid_a = a
            .proc
            .pid()
            .ok_or_else(|| anyhow::anyhow!("a has no pid"))?;
        signal(pid_a, "-STOP")?;

        // b takes the lease and rewrites the policies with its own labels.
        let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), n);
        poll(
            Duration::from_secs(60),
            Duration::from_millis(100),
            "replica b to take the lease",
            || async { Ok((holder(&leases, &lease).await?.as_deref() == Some("b")).then_some(())) },
        )
        .await?;
        wait_until(
            policies.clone(),
            "leader-clients-ingress",
            Duration::from_secs(60),
            "replica b to reconcile",
            |p: Option<&NetworkPolicy>| p.is_some_and(|p| replicas_in(p).contains("b")),
        )
        .await?;

        // From now on, record the author of every version of every policy.
        let seen = Arc::new(Mutex::new(Vec::<(String, BTreeSet<String>)>::new()));
        let record = seen.clone();
        let watch_cfg = watcher::Config::default().labels("pressure.mailproxy.dev/test=leader");
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let watch = tokio::spawn(async move {
            let mut stream = watcher(policies, watch_cfg).boxed();
            let mut ready = Some(ready_tx);
            while let Some(Ok(ev)) = stream.next().await {
                match ev {
                    watcher::Event::InitDone => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                    watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                        let name = p.metadata.name.clone().unwrap_or_default();
                        record.lock().expect("lock").push((name, replicas_in(&p)));
                    }
                    _ => {}
                }
            }
        });
        let _ = ready_rx.await;
        signal(pid_a, "-CONT")?;

        // a notices it no longer leads; b keeps the lease and keeps reconciling.
        poll(
            Duration::from_secs(60),
            Duration::from_millis(100),
            "replica a to log that it lost the lease",
            || async {
                Ok(tail(&a.proc.log, 10_000)
                    .contains("Lost the lease")
                    .then_some(()))
            },
        )
        .await?;
        a.check_alive()?;
        // Two more renewals by b: a had every chance to write in between.
        let renewed = |l: Option<&Lease>| {
            l.and_then(|l| l.spec.as_ref())
                .and_then(|s| s.renew_time.clone())
        };
        let first = renewed(leases.get(&lease).await.ok().as_ref());
        for _ in 0..2 {
            let last = renewed(leases.get(&lease).await.ok().as_ref());
            wait_until(
                leases.clone(),
                &lease,
                Duration::from_secs(30),
                "another renewal by b",
                move |l: Option<&Lease>| {
                    renewed(l) != last
                        && l.and_then(|l| l.spec.as_ref())
                            .and_then(|s| s.holder_identity.as_deref())
                            == Some("b")
                },
            )
            .await?;
        }
        assert_ne!(first, renewed(leases.get(&lease).await.ok().as_ref()));
        watch.abort();
        let versions = seen.lock().expect("lock").clone();
        let by_a: Vec<_> = versions.iter().filter(|(_, r)| r.contains("a")).collect();
        assert!(
            by_a.is_empty(),
            "the deposed leader wrote after losing its lease: {by_a:?} (all versions {versions:?})"
        );
        assert_eq!(holder(&leases, &lease).await?.as_deref(), Some("b"));
        drop(b);
        Ok(())
    })
    .await
}
