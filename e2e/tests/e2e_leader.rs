//! Leader election with two replicas against the real API server (issue 15, item 15).
//!
//! - A leader whose API connection freezes (a relay between it and the API server stops
//!   forwarding, like a half-dead connection) has its renewal stuck in the call: it must stop
//!   reconciling by the renew deadline, before the other replica may take the lease. Before the
//!   fix the stuck call kept it "leading" for as long as the call hung.
//! - A leader paused (SIGSTOP) past its lease while a reconcile waits on a figure read loses the
//!   lease to the other replica, and after SIGCONT it writes nothing as leader again: the
//!   children keep the new leader's content. The replicas differ only in
//!   `--operator-pod-labels`, which the NetworkPolicies carry, so every write shows who made it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::operator::{DEAD_URL, endpoint_overrides};
use e2e::procs::tail;
use e2e::wait::{poll, wait_pt, wait_until};
use e2e::{Kubectl, Operator, cluster, with_temp_ns};
use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::Api;
use kube::runtime::watcher;
use pressure_crds::{Phase, PressureTest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

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

/// A TCP relay to `upstream` that forwards until frozen: then no byte moves in either direction
/// on any connection, old or new, and every call in flight hangs without an error.
async fn freezable_relay(upstream: String) -> anyhow::Result<(u16, watch::Sender<bool>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (frozen, watch_frozen) = watch::channel(false);
    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut frozen: watch::Receiver<bool>,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if frozen.wait_for(|f| !*f).await.is_err() {
                return;
            }
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if frozen.wait_for(|f| !*f).await.is_err() {
                return;
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, watch_frozen.clone()));
            tokio::spawn(pump(sr, cw, watch_frozen.clone()));
        }
    });
    Ok((port, frozen))
}

/// A copy of the kubeconfig whose server is `127.0.0.1:port` (the relay); the API server's
/// certificate names 127.0.0.1, whatever the port.
fn relayed_kubeconfig(ns: &e2e::TempNs, port: u16) -> anyhow::Result<(std::path::PathBuf, String)> {
    let mut cfg: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(cluster::kubeconfig()?)?)?;
    let mut upstream = None;
    for c in cfg["clusters"].as_sequence_mut().into_iter().flatten() {
        let server = c["cluster"]["server"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("kubeconfig cluster without a server"))?
            .to_string();
        let hostport = server
            .strip_prefix("https://")
            .ok_or_else(|| anyhow::anyhow!("server {server} is not https://"))?
            .trim_end_matches('/')
            .to_string();
        anyhow::ensure!(
            hostport.starts_with("127.0.0.1:"),
            "the relay needs an API server on 127.0.0.1, not {hostport}"
        );
        upstream = Some(hostport);
        c["cluster"]["server"] = format!("https://127.0.0.1:{port}").into();
    }
    let upstream = upstream.ok_or_else(|| anyhow::anyhow!("kubeconfig without clusters"))?;
    let path = ns.dir.join("kubeconfig-relayed");
    std::fs::write(&path, serde_yaml::to_string(&cfg)?)?;
    Ok((path, upstream))
}

#[tokio::test]
async fn a_leader_whose_renewal_hangs_stops_before_another_may_take_the_lease() -> anyhow::Result<()>
{
    with_temp_ns("leader-hang", |client, ns| async move {
        e2e::crd::install_crd(&client).await?;
        let (_, upstream) = relayed_kubeconfig(&ns, 0)?;
        let (port, frozen) = freezable_relay(upstream).await?;
        let (kubeconfig, _) = relayed_kubeconfig(&ns, port)?;
        let overrides = endpoint_overrides(DEAD_URL, DEAD_URL, &[("standard", DEAD_URL)]);
        let args = ["--lease-seconds", LEASE_SECONDS];
        let mut a = Operator::spawn(
            &ns,
            &overrides,
            "operator-a",
            "a",
            &args,
            &[("KUBECONFIG".into(), kubeconfig.display().to_string())],
        )
        .await?;
        let leases: Api<Lease> = Api::namespaced(client.clone(), &ns.name);
        let lease = Operator::lease_name(&ns);
        poll(
            Duration::from_secs(30),
            Duration::from_millis(100),
            "replica a to lead",
            || async { Ok((holder(&leases, &lease).await?.as_deref() == Some("a")).then_some(())) },
        )
        .await?;
        let b = Operator::spawn(&ns, &overrides, "operator-b", "b", &args, &[]).await?;
        // Let a renew a few times through the relay, then freeze every connection it has.
        tokio::time::sleep(Duration::from_secs(5)).await;
        anyhow::ensure!(
            !tail(&a.proc.log, 10_000).contains("Lost the lease"),
            "a lost the lease before the freeze:\n{}",
            tail(&a.proc.log, 40)
        );
        let frozen_at = tokio::time::Instant::now();
        frozen.send_replace(true);

        // Watch both at once: when a says it stopped, and when b holds the lease.
        let mut stopped_at = None;
        let mut taken_at = None;
        while frozen_at.elapsed() < Duration::from_secs(40) && taken_at.is_none() {
            if stopped_at.is_none() && tail(&a.proc.log, 10_000).contains("Lost the lease") {
                stopped_at = Some(frozen_at.elapsed());
            }
            if holder(&leases, &lease).await?.as_deref() == Some("b") {
                taken_at = Some(frozen_at.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // One last look at a's log: a line written in the same instant as b's takeover counts.
        if stopped_at.is_none() && tail(&a.proc.log, 10_000).contains("Lost the lease") {
            stopped_at = taken_at;
        }
        let log = tail(&a.proc.log, 40);
        let taken_at = taken_at.ok_or_else(|| anyhow::anyhow!("b never took the lease"))?;
        let stopped_at = stopped_at.ok_or_else(|| {
            anyhow::anyhow!(
                "b took the lease {taken_at:?} after the freeze while a, its renewal stuck, still \
                 reconciled as the leader:\n{log}"
            )
        })?;
        eprintln!("a stopped {stopped_at:?} after the freeze; b took the lease after {taken_at:?}");
        assert!(
            stopped_at < taken_at,
            "a stopped {stopped_at:?} after the freeze, b took the lease after {taken_at:?}:\n{log}"
        );
        assert!(log.contains("Lease update timed out"), "{log}");
        a.check_alive()?;
        frozen.send_replace(false);
        drop(b);
        Ok(())
    })
    .await
}
