//! The CRD against a real API server: it installs from the chart and is Established with the
//! names, subresource and printer columns users rely on; the shipped examples pass a server-side
//! dry run; invalid PressureTests are refused by the API server itself with a message that says
//! what to fix; the definition of a run is locked while it is active.

use std::time::Duration;

use e2e::crd::install_crd;
use e2e::wait::poll;
use e2e::{Kubectl, repo_root, with_temp_ns};

const GROUP_VERSION: &str = "pressure.mailproxy.dev/v1alpha1";

#[tokio::test]
async fn crd_installs_from_the_chart_and_is_established() -> anyhow::Result<()> {
    let client = e2e::client().await?;
    let crd = install_crd(&client).await?;
    let spec = &crd.spec;
    assert_eq!(spec.names.kind, "PressureTest");
    assert_eq!(spec.scope, "Namespaced");
    assert!(
        spec.names.short_names.iter().flatten().any(|s| s == "pt"),
        "short name pt"
    );
    assert!(
        spec.names
            .categories
            .iter()
            .flatten()
            .any(|s| s == "pressure"),
        "category pressure"
    );
    let v = spec
        .versions
        .iter()
        .find(|v| v.name == "v1alpha1")
        .expect("version v1alpha1");
    assert!(v.served && v.storage);
    assert!(
        v.subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some(),
        "status subresource"
    );
    let columns: Vec<&str> = v
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    for want in [
        "Phase", "Verdict", "Tenants", "Sent", "Msg/s", "P99(ms)", "Err‰", "Age",
    ] {
        assert!(
            columns.contains(&want),
            "printer column {want} in {columns:?}"
        );
    }
    // The published schema is what `kubectl explain` shows users.
    let k = Kubectl::new()?;
    // The OpenAPI document is published a moment after the CRD is Established.
    let explain = poll(
        Duration::from_secs(60),
        Duration::from_millis(500),
        "kubectl explain to know PressureTest",
        || async {
            let args = [
                "explain",
                "pressuretests.spec.tenants",
                "--api-version",
                GROUP_VERSION,
            ];
            k.run(&args).await?.ok().map(Some)
        },
    )
    .await?;
    assert!(
        explain.contains("Simulated tenants"),
        "kubectl explain: {explain}"
    );
    Ok(())
}

#[tokio::test]
async fn shipped_examples_pass_a_server_side_dry_run() -> anyhow::Result<()> {
    with_temp_ns("crd-examples", |client, ns| async move {
        install_crd(&client).await?;
        let k = Kubectl::new()?;
        let dir = repo_root().join("deploy/examples");
        let mut files: Vec<_> = std::fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        assert!(files.len() >= 3, "examples in {}: {files:?}", dir.display());
        for f in files {
            let path = f.display().to_string();
            let out = k
                .run(&["apply", "--dry-run=server", "-n", &ns.name, "-f", &path])
                .await?
                .ok()?;
            assert!(out.contains("(server dry run)"), "{path}: {out}");
        }
        Ok(())
    })
    .await
}

/// A PressureTest named `name` with this spec body (YAML, indented under `spec:`).
fn pt_yaml(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: {GROUP_VERSION}\nkind: PressureTest\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

#[tokio::test]
async fn invalid_pressuretests_are_rejected_with_a_clear_message() -> anyhow::Result<()> {
    let tenant = "  tenants: [{name: standard, profile: standard}]\n";
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "hpa min above max",
            pt_yaml(
                "bad",
                &format!("{tenant}  proxy: {{hpa: {{minReplicas: 5, maxReplicas: 2}}}}\n"),
            ),
            vec!["hpa.minReplicas must not exceed hpa.maxReplicas"],
        ),
        (
            "no tenants",
            pt_yaml("bad", "  tenants: []\n"),
            vec!["spec.tenants", "should have at least 1 items"],
        ),
        (
            "a rate out of range",
            pt_yaml(
                "bad",
                "  tenants: [{name: a, profile: standard, rates: {cacheHitRatePermille: 1500}}]\n",
            ),
            vec![
                "cacheHitRatePermille",
                "should be less than or equal to 1000",
            ],
        ),
        (
            "an unknown profile",
            pt_yaml("bad", "  tenants: [{name: a, profile: turbo}]\n"),
            vec![
                "spec.tenants[0].profile",
                "Unsupported value: \"turbo\"",
                "\"high-volume\"",
            ],
        ),
        (
            "a name too long for the children's names",
            pt_yaml("a-name-far-too-long-for-children", tenant),
            vec!["metadata.name: Too long", "24"],
        ),
        (
            "grafana without prometheus",
            pt_yaml(
                "bad",
                &format!(
                    "{tenant}  prometheus: {{enabled: false}}\n  grafana: {{enabled: true}}\n"
                ),
            ),
            vec!["grafana.enabled needs prometheus.enabled"],
        ),
        (
            "a tenant with neither profile nor all rates",
            pt_yaml(
                "bad",
                "  tenants: [{name: a, rates: {messagesPerSync: 3}}]\n",
            ),
            vec!["set a profile, or all four rates"],
        ),
        (
            "a tenant name that is not a DNS label",
            pt_yaml("bad", "  tenants: [{name: Std_1, profile: standard}]\n"),
            vec!["spec.tenants[0].name", "should match"],
        ),
        (
            "a duration below the minimum",
            pt_yaml("bad", &format!("{tenant}  durationSeconds: 1\n")),
            vec![
                "spec.durationSeconds",
                "should be greater than or equal to 10",
            ],
        ),
        (
            "a pod label key the operator selects by",
            pt_yaml(
                "bad",
                &format!(
                    "{tenant}  placement: {{podLabels: {{app.kubernetes.io/component: x}}}}\n"
                ),
            ),
            vec!["podLabels may not use the keys app.kubernetes.io/*"],
        ),
        (
            "a toleration with a word for its seconds",
            pt_yaml(
                "bad",
                &format!(
                    "{tenant}  proxy: {{placement: {{tolerations: [{{key: a, tolerationSeconds: soon}}]}}}}\n"
                ),
            ),
            vec![
                "spec.proxy.placement.tolerations[0].tolerationSeconds",
                "must be of type integer",
            ],
        ),
        (
            "a proxy setting out of its range",
            pt_yaml(
                "bad",
                &format!("{tenant}  proxy: {{settings: {{dispatch: {{claimBatchSize: 0}}}}}}\n"),
            ),
            vec![
                "spec.proxy.settings.dispatch.claimBatchSize",
                "should be greater than or equal to 1",
            ],
        ),
        (
            "a negative retry delay",
            pt_yaml(
                "bad",
                &format!(
                    "{tenant}  proxy: {{settings: {{dispatch: {{retryDelaysSeconds: [60, -5]}}}}}}\n"
                ),
            ),
            vec!["each delay must be between 0 and 86400 seconds"],
        ),
        (
            "memory budgets beyond the proxy's memory limit",
            pt_yaml(
                "bad",
                &format!(
                    "{tenant}  proxy:\n    resources: {{memoryLimit: 1Gi}}\n    settings: {{attachments: {{memoryBudgetMb: 600}}, cache: {{memoryMaxMb: 200}}}}\n"
                ),
            ),
            vec!["must together stay within three quarters of resources.memoryLimit"],
        ),
        (
            "more proxy database connections than PostgreSQL allows",
            pt_yaml(
                "bad",
                &format!(
                    "{tenant}  proxy: {{hpa: {{maxReplicas: 4}}, settings: {{database: {{maxConnections: 50}}}}}}\n"
                ),
            ),
            vec!["must not exceed postgres.tuning.maxConnections"],
        ),
        (
            "an unknown field",
            pt_yaml("bad", &format!("{tenant}  durationSecs: 60\n")),
            vec!["unknown field \"spec.durationSecs\""],
        ),
    ];
    with_temp_ns("crd-invalid", |client, ns| async move {
        install_crd(&client).await?;
        let k = Kubectl::new()?;
        for (what, yaml, wants) in cases {
            let out = k
                .run_with_input(
                    &["apply", "--dry-run=server", "-n", &ns.name, "-f", "-"],
                    Some(&yaml),
                )
                .await?;
            let message = out.err().map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
            for want in wants {
                assert!(
                    message.contains(want),
                    "{what}: expected {want:?} in:\n{message}"
                );
            }
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn the_run_definition_is_locked_while_the_run_is_active() -> anyhow::Result<()> {
    with_temp_ns("crd-lock", |client, ns| async move {
        install_crd(&client).await?;
        let k = Kubectl::new()?;
        let n = ns.name.as_str();
        let yaml = pt_yaml(
            "locked",
            "  tenants: [{name: standard, profile: standard}]\n",
        );
        k.apply(n, &yaml).await?;
        let set_phase =
            |phase: &str| format!(r#"{{"status":{{"phase":"{phase}","conditions":[]}}}}"#);
        let patch = |body: String| {
            let k = k.clone();
            async move {
                k.run(&[
                    "patch",
                    "pressuretest",
                    "locked",
                    "-n",
                    n,
                    "--type",
                    "merge",
                    "-p",
                    &body,
                ])
                .await
            }
        };
        let status = |phase: &str| {
            let (k, body) = (k.clone(), set_phase(phase));
            async move {
                k.run(&[
                    "patch",
                    "pressuretest",
                    "locked",
                    "-n",
                    n,
                    "--subresource=status",
                    "--type",
                    "merge",
                    "-p",
                    &body,
                ])
                .await?
                .ok()
            }
        };
        // Before a run starts, anything may change.
        patch(r#"{"spec":{"durationSeconds":120}}"#.into())
            .await?
            .ok()?;
        status("Running").await?;
        let refused = patch(r#"{"spec":{"durationSeconds":240}}"#.into())
            .await?
            .err()?;
        assert!(
            refused.contains("cannot change while the run is active"),
            "duration change while running: {refused}"
        );
        let tenants = r#"{"spec":{"tenants":[{"name":"other","profile":"standard"}]}}"#;
        let refused = patch(tenants.into()).await?.err()?;
        assert!(
            refused.contains("cannot change while the run is active"),
            "{refused}"
        );
        // The spec-wide placement moves the clients too: locked.
        let placement = r#"{"spec":{"placement":{"nodeSelector":{"pool":"other"}}}}"#;
        let refused = patch(placement.into()).await?.err()?;
        assert!(
            refused.contains("cannot change while the run is active"),
            "{refused}"
        );
        // The load's shape is part of the run.
        let stages = r#"{"spec":{"stages":[{"durationSeconds":10,"ratePercent":50}]}}"#;
        let refused = patch(stages.into()).await?.err()?;
        assert!(
            refused.contains("cannot change while the run is active"),
            "{refused}"
        );
        // A new run waits for this one to end.
        let refused = patch(r#"{"spec":{"runNumber":1}}"#.into()).await?.err()?;
        assert!(
            refused.contains("cannot change while the run is active"),
            "{refused}"
        );
        // Tuning and a component's placement may change during a run: the operator rolls them out.
        patch(r#"{"spec":{"proxy":{"tuning":{"poolSize":7}}}}"#.into())
            .await?
            .ok()?;
        patch(r#"{"spec":{"proxy":{"placement":{"nodeSelector":{"pool":"p"}}}}}"#.into())
            .await?
            .ok()?;
        // Once the run has a verdict, the definition is free again.
        status("Succeeded").await?;
        patch(r#"{"spec":{"durationSeconds":240}}"#.into())
            .await?
            .ok()?;
        // An aborted run's `abort` must go with the change that asks for a new run.
        patch(r#"{"spec":{"abort":true}}"#.into()).await?.ok()?;
        let refused = patch(r#"{"spec":{"runNumber":1}}"#.into()).await?.err()?;
        assert!(refused.contains("would start aborted"), "{refused}");
        patch(r#"{"spec":{"runNumber":1,"abort":false}}"#.into())
            .await?
            .ok()?;
        Ok(())
    })
    .await
}
