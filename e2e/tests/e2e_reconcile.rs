//! The operator against a real API server, controller manager and scheduler (pods are kwok's):
//! `kubectl apply` of an example builds every child with its owner reference, labels, probes,
//! requests and hardening; the status walks through its phases with `observedGeneration`;
//! `kubectl get` prints the printer columns; spec changes allowed during a run are rolled out and
//! optional parts turned off are pruned; deleting the PressureTest garbage-collects the children.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::children::{Children, TEST_LABEL, expected};
use e2e::crd::install_crd;
use e2e::events::events_for;
use e2e::operator::dead_overrides;
use e2e::wait::{poll, wait_pt};
use e2e::{Kubectl, Operator, repo_root, with_temp_ns};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod};
use kube::Client;
use kube::api::{Api, ListParams};
use pressure_crds::{ConditionStatus, Phase, PressureTest};

const MINUTE: Duration = Duration::from_secs(60);

/// The first container of the Deployment `name`.
async fn container_of(client: &Client, ns: &str, name: &str) -> anyhow::Result<Container> {
    let d = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(name)
        .await?;
    d.spec
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers.into_iter().next())
        .ok_or_else(|| anyhow::anyhow!("Deployment {name} has no container"))
}

/// Literal environment variables of a container.
fn literal_env(c: &Container) -> BTreeMap<String, String> {
    c.env
        .iter()
        .flatten()
        .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
        .collect()
}

/// The rollout revision of a Deployment: "1" as long as its pod template never changed.
async fn revision(client: &Client, ns: &str, name: &str) -> anyhow::Result<Option<String>> {
    let d = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(name)
        .await?;
    Ok(d.metadata
        .annotations
        .and_then(|a| a.get("deployment.kubernetes.io/revision").cloned()))
}

fn observed_current(pt: &PressureTest) -> bool {
    pt.status.as_ref().and_then(|s| s.observed_generation) == pt.metadata.generation
}

fn phase(pt: &PressureTest) -> Option<Phase> {
    pt.status.as_ref().and_then(|s| s.phase)
}

#[tokio::test]
async fn smoke_example_runs_rolls_out_changes_and_is_garbage_collected() -> anyhow::Result<()> {
    with_temp_ns("reconcile-smoke", |client, ns| async move {
        install_crd(&client).await?;
        let _op = Operator::start(&client, &ns, &dead_overrides(&["standard"])).await?;
        let k = Kubectl::new()?;
        let n = ns.name.as_str();
        let example = repo_root().join("deploy/examples/smoke.yaml");
        k.run(&["apply", "-n", n, "-f", &example.display().to_string()])
            .await?
            .ok()?;
        let pts: Api<PressureTest> = Api::namespaced(client.clone(), n);
        let pt = wait_pt(&pts, "smoke", 2 * MINUTE, "phase Running", |pt| {
            phase(pt) == Some(Phase::Running) && observed_current(pt)
        })
        .await?;
        check_running_status(&pt);
        let reasons: Vec<String> = events_for(&client, n, "smoke")
            .await?
            .into_iter()
            .map(|e| e.reason)
            .collect();
        let walk = ["Provisioning", "EnvironmentReady", "LoadStarted"];
        assert!(
            reasons
                .iter()
                .filter(|r| walk.contains(&r.as_str()))
                .eq(walk.iter()),
            "phase events in order {walk:?}: {reasons:?}"
        );

        let children = Children::read(&client, n, "smoke").await?;
        let want = expected("smoke", &["standard"], false, false, true);
        assert_eq!(children.names(), want, "children of the smoke example");
        let problems = children.problems(&pt);
        assert!(
            problems.is_empty(),
            "child problems:\n{}",
            problems.join("\n")
        );
        check_printer_columns(&k, n, &pt).await?;
        // The clients got one load window and were never restarted with another.
        let rev = revision(&client, n, "smoke-client-standard").await?;
        assert_eq!(rev.as_deref(), Some("1"), "client rollouts");

        // A tuning change during the run reaches the proxy Deployment.
        let tuning = r#"{"spec":{"proxy":{"tuning":{"poolSize":33}}}}"#;
        k.run(&[
            "patch", "pt", "smoke", "-n", n, "--type", "merge", "-p", tuning,
        ])
        .await?
        .ok()?;
        poll(
            MINUTE,
            Duration::from_millis(250),
            "GMP_POOL_SIZE=33 on the proxy",
            || async {
                let c = container_of(&client, n, "smoke-proxy").await?;
                Ok(
                    (literal_env(&c).get("GMP_POOL_SIZE").map(String::as_str) == Some("33"))
                        .then_some(()),
                )
            },
        )
        .await?;
        let pt = wait_pt(&pts, "smoke", MINUTE, "observedGeneration 2", |pt| {
            pt.metadata.generation == Some(2) && observed_current(pt)
        })
        .await?;
        assert_eq!(
            phase(&pt),
            Some(Phase::Running),
            "a tuning change does not restart the run"
        );
        // The run's definition is locked while it runs.
        let refused = k
            .run(&[
                "patch",
                "pt",
                "smoke",
                "-n",
                n,
                "--type",
                "merge",
                "-p",
                r#"{"spec":{"durationSeconds":600}}"#,
            ])
            .await?
            .err()?;
        assert!(
            refused.contains("cannot change while the run is active"),
            "{refused}"
        );

        // Deleting the PressureTest lets the garbage collector remove every child and pod.
        k.run(&["delete", "pt", "smoke", "-n", n, "--timeout=60s"])
            .await?
            .ok()?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), n);
        poll(
            2 * MINUTE,
            Duration::from_millis(500),
            "children and pods to be collected",
            || async {
                let left = Children::read(&client, n, "smoke").await?.names();
                let lp = ListParams::default().labels(&format!("{TEST_LABEL}=smoke"));
                let pods_left = pods.list(&lp).await?.items.len();
                if left.is_empty() && pods_left == 0 {
                    return Ok(Some(()));
                }
                anyhow::bail!("still there: {left:?} and {pods_left} pods")
            },
        )
        .await
    })
    .await
}

/// Conditions, run id and load window of a run that has just started its load.
fn check_running_status(pt: &PressureTest) {
    let s = pt.status.clone().unwrap_or_default();
    let cond = |t: &str| s.condition(t).map(|c| (c.status, c.reason.clone()));
    assert_eq!(
        cond("EnvironmentReady").map(|c| c.0),
        Some(ConditionStatus::True)
    );
    assert_eq!(
        cond("PodsHealthy").map(|c| c.0),
        Some(ConditionStatus::True)
    );
    assert_eq!(
        cond("Complete"),
        Some((ConditionStatus::False, "InProgress".into()))
    );
    assert_eq!(
        cond("Succeeded").map(|c| c.0),
        Some(ConditionStatus::Unknown)
    );
    assert!(
        s.conditions
            .iter()
            .all(|c| c.observed_generation == pt.metadata.generation)
    );
    assert!(
        s.run_id.as_deref().is_some_and(|r| r.starts_with("smoke-")),
        "run id {:?}",
        s.run_id
    );
    assert!(s.start_time.is_some());
    assert_eq!(s.tenants, Some(1));
    let (start, stop) = (s.load_start_at.unwrap_or(0), s.load_stop_at.unwrap_or(0));
    assert_eq!(stop - start, 10 + 60, "load window = warmup + duration");
}

/// `kubectl get pressuretests` (and `pt`, and the `pressure` category) show the columns.
async fn check_printer_columns(k: &Kubectl, n: &str, pt: &PressureTest) -> anyhow::Result<()> {
    let out = k.run(&["get", "pressuretests", "-n", n]).await?.ok()?;
    let mut lines = out.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME", "PHASE", "VERDICT", "TENANTS", "SENT", "MSG/S", "P99(MS)", "ERR‰", "AGE"
        ],
        "{out}"
    );
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row.get(..4),
        Some(&["smoke", "Running", "InProgress", "1"][..]),
        "{out}"
    );
    let wide = k.run(&["get", "pt", "-n", n, "-o", "wide"]).await?.ok()?;
    let run_id = pt
        .status
        .as_ref()
        .and_then(|s| s.run_id.clone())
        .unwrap_or_default();
    assert!(
        wide.lines()
            .next()
            .is_some_and(|h| h.contains("DURATION") && h.contains("RUNID")),
        "{wide}"
    );
    assert!(wide.contains(&run_id) && wide.contains(" 60 "), "{wide}");
    let by_category = k.run(&["get", "pressure", "-n", n]).await?.ok()?;
    assert!(by_category.contains("smoke"), "{by_category}");
    Ok(())
}

/// The seed's four-tenant example on an emptyDir.
fn seed_example() -> anyhow::Result<String> {
    let path = repo_root().join("deploy/examples/seed-four-tenants.yaml");
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(path)?)?;
    doc["spec"]["postgres"]["volume"] = "EmptyDir".into();
    Ok(serde_yaml::to_string(&doc)?)
}

#[tokio::test]
async fn full_environment_children_carry_the_spec_and_optional_parts_are_pruned()
-> anyhow::Result<()> {
    let tenants = ["high-volume", "standard", "newsletter", "documents"];
    with_temp_ns("reconcile-full", |client, ns| async move {
        install_crd(&client).await?;
        let _op = Operator::start(&client, &ns, &dead_overrides(&tenants)).await?;
        let k = Kubectl::new()?;
        let n = ns.name.as_str();
        let name = "seed-four-tenants";
        k.apply(n, &seed_example()?).await?;
        let pts: Api<PressureTest> = Api::namespaced(client.clone(), n);
        let pt = wait_pt(&pts, name, 2 * MINUTE, "the load window (clients created)", |pt| {
            pt.status.as_ref().is_some_and(|s| s.load_start_at.is_some()) && observed_current(pt)
        })
        .await?;
        let children = poll(MINUTE, Duration::from_millis(250), "every child", || async {
            let c = Children::read(&client, n, name).await?;
            Ok((c.names() == expected(name, &tenants, true, true, true)).then_some(c))
        })
        .await?;
        let problems = children.problems(&pt);
        assert!(problems.is_empty(), "child problems:\n{}", problems.join("\n"));
        check_spec_in_children(&client, n, &pt).await?;
        for t in tenants {
            let rev = revision(&client, n, &format!("{name}-client-{t}")).await?;
            assert_eq!(rev.as_deref(), Some("1"), "client {t} started once");
        }

        // Turning Grafana and the HPA off prunes them; fixed replicas are rolled out.
        let off = r#"{"spec":{"grafana":{"enabled":false},"proxy":{"hpa":{"enabled":false},"replicas":2}}}"#;
        k.run(&["patch", "pt", name, "-n", n, "--type", "merge", "-p", off]).await?.ok()?;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), n);
        poll(MINUTE, Duration::from_millis(250), "Grafana and the HPA pruned, 2 proxies ready", || async {
            let names = Children::read(&client, n, name).await?.names();
            let gone = !names.iter().any(|c| c.contains("grafana") || c.starts_with("HorizontalPodAutoscaler/"));
            let proxy = deployments.get(&format!("{name}-proxy")).await?;
            let replicas = proxy.spec.and_then(|s| s.replicas);
            let ready = proxy.status.and_then(|s| s.ready_replicas);
            Ok((gone && replicas == Some(2) && ready == Some(2)).then_some(()))
        })
        .await?;
        assert!(
            Children::read(&client, n, name).await?.names().contains(&format!("Deployment/{name}-prometheus")),
            "Prometheus stays"
        );
        Ok(())
    })
    .await
}

/// The spec's values, as the workloads see them.
async fn check_spec_in_children(client: &Client, n: &str, pt: &PressureTest) -> anyhow::Result<()> {
    let name = pt.metadata.name.clone().unwrap_or_default();
    let hpa = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), n)
        .get(&format!("{name}-proxy"))
        .await?;
    assert_eq!(hpa.spec.scale_target_ref.name, format!("{name}-proxy"));
    assert_eq!((hpa.spec.min_replicas, hpa.spec.max_replicas), (Some(1), 4));
    let target = hpa
        .spec
        .metrics
        .iter()
        .flatten()
        .find_map(|m| m.resource.as_ref());
    assert_eq!(
        target.map(|r| (r.name.as_str(), r.target.average_utilization)),
        Some(("cpu", Some(70)))
    );

    let proxy = container_of(client, n, &format!("{name}-proxy")).await?;
    let env = literal_env(&proxy);
    for (k, v) in [
        ("GMP_SEND_LOOP_INTERVAL", "1"),
        ("GMP_BATCH_SIZE_PER_ACCOUNT", "50"),
        ("GMP_POOL_SIZE", "20"),
        ("GMP_SYNC_INTERVAL", "5"),
        ("GMP_LOG_LEVEL", "WARNING"),
    ] {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "proxy {k}");
    }
    for secret in [
        "GMP_API_TOKEN",
        "MAIL_PROXY_ENCRYPTION_KEY",
        "GMP_DB_PASSWORD",
    ] {
        let from_secret = proxy.env.iter().flatten().any(|e| {
            e.name == secret
                && e.value.is_none()
                && e.value_from
                    .as_ref()
                    .is_some_and(|f| f.secret_key_ref.is_some())
        });
        assert!(
            from_secret,
            "{secret} comes from the Secret, never a literal"
        );
    }
    let limits = proxy.resources.and_then(|r| r.limits).unwrap_or_default();
    assert_eq!(limits.get("memory").map(|q| q.0.as_str()), Some("512Mi"));

    let sts = Api::<StatefulSet>::namespaced(client.clone(), n)
        .get(&format!("{name}-postgres"))
        .await?;
    let spec = sts.spec.unwrap_or_default();
    let args = spec
        .template
        .spec
        .as_ref()
        .and_then(|p| p.containers.first())
        .and_then(|c| c.args.clone());
    let args = args.unwrap_or_default().join(" ");
    for want in [
        "max_connections=200",
        "shared_buffers=256MB",
        "synchronous_commit=off",
    ] {
        assert!(args.contains(want), "postgres args {args}");
    }
    assert!(
        spec.volume_claim_templates.is_none(),
        "emptyDir: no volume claim"
    );
    assert_eq!(
        spec.service_name.as_deref(),
        Some(format!("{name}-postgres").as_str())
    );

    let s = pt.status.clone().unwrap_or_default();
    let client_env =
        literal_env(&container_of(client, n, &format!("{name}-client-newsletter")).await?);
    for (k, v) in [
        ("TENANT_ID", "newsletter".to_string()),
        ("RUN_ID", s.run_id.unwrap_or_default()),
        ("START_AT", s.load_start_at.unwrap_or_default().to_string()),
        ("STOP_AT", s.load_stop_at.unwrap_or_default().to_string()),
    ] {
        assert_eq!(client_env.get(k), Some(&v), "client {k}");
    }

    let prom = Api::<ConfigMap>::namespaced(client.clone(), n)
        .get(&format!("{name}-prometheus"))
        .await?;
    let config = prom
        .data
        .unwrap_or_default()
        .get("prometheus.yml")
        .cloned()
        .unwrap_or_default();
    assert!(
        config.contains(&format!("{name}-proxy")),
        "scrape config names the proxy:\n{config}"
    );
    Ok(())
}
