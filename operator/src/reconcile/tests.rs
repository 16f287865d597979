//! Unit tests of the pure builders: hardening and ownership of every child, the contracts of the
//! images, and that spec changes change the objects.

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer};
use pressure_crds::{Phase, PressureTest, PressureTestStatus, SinkKind};

use super::*;
use crate::fixtures::TestPt;

fn secrets() -> SecretValues {
    SecretValues {
        db_password: "pw".into(),
        api_token: "tok".into(),
        encryption_key: "a2V5".into(),
        grafana_password: "g".into(),
    }
}

fn running() -> PressureTest {
    let mut pt = PressureTest::test();
    pt.status = Some(PressureTestStatus {
        phase: Some(Phase::SettingUp),
        run_id: Some("t-run".into()),
        load_start_at: Some(1000),
        load_stop_at: Some(1400),
        ..PressureTestStatus::default()
    });
    pt
}

fn pods(children: &[Child]) -> Vec<(String, PodSpec)> {
    children
        .iter()
        .filter_map(|c| {
            let (meta, spec) = match c {
                Child::Deployment(d) => (&d.metadata, d.spec.as_ref()?.template.spec.clone()?),
                Child::StatefulSet(s) => (&s.metadata, s.spec.as_ref()?.template.spec.clone()?),
                Child::Job(j) => (&j.metadata, j.spec.as_ref()?.template.spec.clone()?),
                _ => return None,
            };
            Some((meta.name.clone().unwrap_or_default(), spec))
        })
        .collect()
}

fn container(children: &[Child], name: &str) -> Container {
    pods(children)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.containers[0].clone())
        .expect("workload exists")
}

fn env_of(c: &Container, key: &str) -> Option<String> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == key)
        .and_then(|e| e.value.clone())
}

#[test]
fn every_child_is_owned_and_labelled() {
    let children = desired(&running(), &secrets(), &OperatorPeer::default()).expect("builds");
    // Secret, postgres 2, sink 2, proxy 3, prometheus 3, grafana 3, 3 NetworkPolicies,
    // setup Job, 4 × client 2.
    assert_eq!(children.len(), 26);
    for child in &children {
        let meta = match child {
            Child::Secret(o) => &o.metadata,
            Child::ConfigMap(o) => &o.metadata,
            Child::Service(o) => &o.metadata,
            Child::Deployment(o) => &o.metadata,
            Child::StatefulSet(o) => &o.metadata,
            Child::Job(o) => &o.metadata,
            Child::Hpa(o) => &o.metadata,
            Child::NetworkPolicy(o) => &o.metadata,
        };
        let owner = &meta.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.controller, owner.uid.as_str(), owner.kind.as_str()),
            (Some(true), "uid-1", "PressureTest"),
            "{}",
            child.describe()
        );
        let labels = meta.labels.as_ref().expect("labels");
        for key in [
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
            "app.kubernetes.io/managed-by",
            "app.kubernetes.io/part-of",
            TEST_LABEL,
        ] {
            assert!(labels.contains_key(key), "{} lacks {key}", child.describe());
        }
        assert_eq!(meta.namespace.as_deref(), Some("default"));
    }
}

#[test]
fn every_pod_is_hardened_with_probes_and_resources() {
    let children = desired(&running(), &secrets(), &OperatorPeer::default()).expect("builds");
    let all = pods(&children);
    assert_eq!(
        all.len(),
        1 + 2 + 2 + 4 + 1,
        "postgres, proxy, sink, prom, grafana, 4 clients, setup"
    );
    for (name, pod) in all {
        let psc = pod.security_context.as_ref().expect("pod security");
        assert_eq!(psc.run_as_non_root, Some(true), "{name}");
        assert!(psc.run_as_user.is_some_and(|u| u > 0), "{name}");
        for c in &pod.containers {
            let sc = c.security_context.as_ref().expect("container security");
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{name}");
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{name}");
            let r = c.resources.as_ref().expect("resources");
            assert!(
                r.requests
                    .as_ref()
                    .is_some_and(|m| m.contains_key("cpu") && m.contains_key("memory")),
                "{name}"
            );
            assert!(
                r.limits.as_ref().is_some_and(|m| m.contains_key("memory")),
                "{name}"
            );
            if !name.ends_with("-setup") {
                assert!(
                    c.readiness_probe.is_some() && c.liveness_probe.is_some(),
                    "{name} lacks probes"
                );
            }
        }
    }
}

#[test]
fn proxy_gets_database_url_secrets_and_tuning() {
    let mut pt = running();
    pt.spec.proxy.tuning.send_loop_interval_ms = 1500;
    pt.spec.proxy.tuning.pool_size = 33;
    let children = desired(&pt, &secrets(), &OperatorPeer::default()).expect("builds");
    let c = container(&children, "t-proxy");
    assert_eq!(
        env_of(&c, "GMP_DB_PATH").as_deref(),
        Some("postgresql://mailproxy:$(GMP_DB_PASSWORD)@t-postgres:5432/mailproxy")
    );
    let pw = c
        .env
        .iter()
        .flatten()
        .position(|e| e.name == "GMP_DB_PASSWORD")
        .expect("password var");
    let url = c
        .env
        .iter()
        .flatten()
        .position(|e| e.name == "GMP_DB_PATH")
        .expect("url var");
    assert!(
        pw < url,
        "$(VAR) expansion needs the variable defined first"
    );
    assert_eq!(env_of(&c, "GMP_SEND_LOOP_INTERVAL").as_deref(), Some("1.5"));
    assert_eq!(env_of(&c, "GMP_POOL_SIZE").as_deref(), Some("33"));
    // The client Services resolve to private ClusterIPs, which the proxy refuses unless listed.
    let allowed = env_of(&c, "GMP_ATTACHMENT_ALLOWED_HOSTS").unwrap_or_default();
    let tenants: Vec<String> = pt
        .spec
        .tenants
        .iter()
        .map(|t| format!("t-client-{}", t.name))
        .collect();
    assert_eq!(allowed, tenants.join(","));
    for key in ["GMP_API_TOKEN", "MAIL_PROXY_ENCRYPTION_KEY"] {
        let var = c
            .env
            .iter()
            .flatten()
            .find(|e| e.name == key)
            .expect("present");
        assert!(
            var.value.is_none() && var.value_from.is_some(),
            "{key} must come from the Secret"
        );
    }
    // With the HPA on, the Deployment leaves replicas to it.
    let d = children
        .iter()
        .find_map(|c| match c {
            Child::Deployment(d) if d.metadata.name.as_deref() == Some("t-proxy") => {
                Some(d.clone())
            }
            _ => None,
        })
        .expect("proxy");
    assert_eq!(d.spec.expect("spec").replicas, None);
}

#[test]
fn proxy_memory_settings_follow_its_memory_limit() {
    let budget = |pt: &PressureTest| {
        let children = desired(pt, &secrets(), &OperatorPeer::default()).expect("builds");
        let c = container(&children, "t-proxy");
        let limit = c
            .resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get("memory"))
            .map(|q| q.0.clone());
        (
            limit,
            env_of(&c, "GMP_ATTACHMENT_MEMORY_BUDGET_MB"),
            env_of(&c, "GMP_CACHE_MEMORY_MAX_MB"),
        )
    };
    let mut pt = running();
    let mib = |v: &str| Some(v.to_string());
    assert_eq!(budget(&pt), (mib("512Mi"), mib("204"), mib("51")));
    pt.spec.proxy.resources = Some(pressure_crds::ResourcesSpec {
        memory_limit: Some("2Gi".into()),
        ..Default::default()
    });
    assert_eq!(budget(&pt), (mib("2Gi"), mib("819"), mib("204")));
    pt.spec.proxy.resources = Some(pressure_crds::ResourcesSpec {
        memory_limit: Some("1G".into()),
        ..Default::default()
    });
    assert_eq!(budget(&pt), (mib("1G"), mib("381"), mib("95")));
}

#[test]
fn proxy_settings_reach_its_environment_and_the_disk_cache_gets_a_volume() {
    let proxy_pod = |pt: &PressureTest| {
        let children = desired(pt, &secrets(), &OperatorPeer::default()).expect("builds");
        pods(&children)
            .into_iter()
            .find(|(n, _)| n == "t-proxy")
            .map(|(_, p)| p)
            .expect("proxy pod")
    };
    let plain = proxy_pod(&running());
    let c = &plain.containers[0];
    assert_eq!(env_of(c, "GMP_DB_MAX_CONNECTIONS").as_deref(), Some("10"));
    assert_eq!(
        env_of(c, "GMP_CACHE_DISK_DIR"),
        None,
        "no disk tier unless asked"
    );
    assert_eq!(
        env_of(c, "GMP_CLAIM_BATCH_SIZE"),
        None,
        "unset settings stay unset"
    );

    let mut pt = running();
    pt.spec.proxy.settings = serde_yaml::from_str(
        "dispatch: {claimBatchSize: 400, maxSendsPerAccount: 6, retryDelaysSeconds: [5, 30]}\n\
         cache: {memoryMaxMb: 64}\ndiskCache: {maxMb: 800}\ndatabase: {maxConnections: 20}\n\
         logFormat: Json\n",
    )
    .expect("settings parse");
    let pod = proxy_pod(&pt);
    let c = &pod.containers[0];
    for (key, value) in [
        ("GMP_CLAIM_BATCH_SIZE", "400"),
        ("GMP_MAX_SENDS_PER_ACCOUNT", "6"),
        ("GMP_RETRY_DELAYS", "5,30"),
        ("GMP_CACHE_MEMORY_MAX_MB", "64"),
        ("GMP_ATTACHMENT_MEMORY_BUDGET_MB", "204"),
        ("GMP_CACHE_DISK_MAX_MB", "800"),
        ("GMP_CACHE_DISK_DIR", proxy::CACHE_DIR),
        ("GMP_DB_MAX_CONNECTIONS", "20"),
        ("GMP_LOG_JSON", "true"),
    ] {
        assert_eq!(env_of(c, key).as_deref(), Some(value), "{key}");
    }
    let names: Vec<&str> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
    let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "a variable twice: {names:?}");
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "cache")
        .expect("cache volume");
    let limit = volume.empty_dir.as_ref().and_then(|e| e.size_limit.clone());
    assert_eq!(limit.map(|q| q.0).as_deref(), Some("1616Mi"));
    let mount = c.volume_mounts.iter().flatten().find(|m| m.name == "cache");
    assert_eq!(mount.map(|m| m.mount_path.as_str()), Some(proxy::CACHE_DIR));
}

#[test]
fn spec_changes_change_the_objects() {
    let base = desired(&running(), &secrets(), &OperatorPeer::default()).expect("builds");
    let mut pt = running();
    pt.spec.proxy.hpa.enabled = false;
    pt.spec.proxy.replicas = 3;
    pt.spec.tenants[0].clients = 5;
    let changed = desired(&pt, &secrets(), &OperatorPeer::default()).expect("builds");
    assert!(!changed.iter().any(|c| matches!(c, Child::Hpa(_))));
    assert!(base.iter().any(|c| matches!(c, Child::Hpa(_))));
    let replicas = |cs: &[Child], n: &str| {
        cs.iter().find_map(|c| match c {
            Child::Deployment(d) if d.metadata.name.as_deref() == Some(n) => {
                d.spec.as_ref()?.replicas
            }
            _ => None,
        })
    };
    assert_eq!(replicas(&changed, "t-proxy"), Some(3));
    assert_eq!(replicas(&changed, "t-client-high-volume"), Some(5));
    assert_eq!(replicas(&base, "t-client-high-volume"), Some(1));
}

/// The proxy's HPA, from `desired`.
fn hpa_of(pt: &PressureTest) -> HorizontalPodAutoscaler {
    desired(pt, &secrets(), &OperatorPeer::default())
        .expect("builds")
        .into_iter()
        .find_map(|c| match c {
            Child::Hpa(h) => Some(h),
            _ => None,
        })
        .expect("an HPA")
}

#[test]
fn hpa_scales_on_cpu_and_takes_the_scale_down_window_only_when_set() {
    let mut pt = running();
    let spec = hpa_of(&pt).spec;
    assert_eq!((spec.min_replicas, spec.max_replicas), (Some(1), 4));
    let target = &spec.metrics.as_ref().expect("metrics")[0];
    assert_eq!(
        target.resource.as_ref().map(|r| r.name.as_str()),
        Some("cpu")
    );
    // Unset: no behavior, so Kubernetes' 300 s default applies.
    assert_eq!(spec.behavior, None);

    pt.spec.proxy.hpa.scale_down_stabilization_seconds = Some(30);
    let behavior = hpa_of(&pt).spec.behavior.expect("behavior");
    let down = behavior.scale_down.expect("scaleDown");
    assert_eq!(down.stabilization_window_seconds, Some(30));
    assert_eq!(behavior.scale_up, None, "scale-up keeps its defaults");
}

#[test]
fn clients_carry_rates_and_the_load_window() {
    let children = desired(&running(), &secrets(), &OperatorPeer::default()).expect("builds");
    let c = container(&children, "t-client-newsletter");
    assert_eq!(env_of(&c, "MSG_RATE_PER_SYNC").as_deref(), Some("50"));
    assert_eq!(
        env_of(&c, "ATTACHMENT_CACHE_HIT_RATE").as_deref(),
        Some("0.5")
    );
    assert_eq!(env_of(&c, "START_AT").as_deref(), Some("1000"));
    assert_eq!(env_of(&c, "STOP_AT").as_deref(), Some("1400"));
    assert_eq!(env_of(&c, "RUN_ID").as_deref(), Some("t-run"));
    assert_eq!(
        env_of(&c, "LOAD_STAGES").as_deref(),
        Some("[]"),
        "no stages"
    );
    let mut staged = running();
    staged.spec.stages = vec![pressure_crds::StageSpec {
        duration_seconds: 30,
        rate_percent: 200,
    }];
    let children = desired(&staged, &secrets(), &OperatorPeer::default()).expect("builds");
    assert_eq!(
        env_of(&container(&children, "t-client-newsletter"), "LOAD_STAGES").as_deref(),
        Some(r#"[{"durationSeconds":30,"ratePercent":200}]"#)
    );
    let id = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "CLIENT_ID")
        .expect("client id");
    assert_eq!(
        id.value_from
            .as_ref()
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.as_str()),
        Some("metadata.name")
    );
    assert_eq!(
        c.command.as_deref().map(|v| v[..4].join(" ")),
        Some("client-sim serve --profile newsletter".into())
    );
}

#[test]
fn phases_gate_the_setup_job_and_clients() {
    let mut pt = PressureTest::test();
    pt.status = Some(PressureTestStatus {
        phase: Some(Phase::Provisioning),
        ..Default::default()
    });
    let early = desired(&pt, &secrets(), &OperatorPeer::default()).expect("builds");
    assert!(!early.iter().any(|c| matches!(c, Child::Job(_))));
    assert_eq!(pods(&early).len(), 5);
    pt.status = Some(PressureTestStatus {
        phase: Some(Phase::Failed),
        ..Default::default()
    });
    assert!(
        desired(&pt, &secrets(), &OperatorPeer::default())
            .expect("builds")
            .is_empty()
    );
}

#[test]
fn setup_plan_registers_each_tenant_against_the_sink() {
    let pt = running();
    let plan = setup::plan("t", &pt);
    assert_eq!(plan.tenants.len(), 4);
    let t = &plan.tenants[0];
    assert_eq!(t.tenant.id, "high-volume");
    assert_eq!(
        t.tenant.client_base_url.as_deref(),
        Some("http://t-client-high-volume:8080")
    );
    assert_eq!(
        (
            t.accounts[0].smtp_host.as_str(),
            t.accounts[0].smtp_port,
            t.accounts[0].use_tls
        ),
        ("t-sink", 1025, Some(false))
    );
    let c = container(
        &desired(&running(), &secrets(), &OperatorPeer::default()).expect("builds"),
        "t-setup",
    );
    assert_eq!(
        env_of(&c, "PROXY_URL").as_deref(),
        Some("http://t-proxy:8000")
    );
    assert!(env_of(&c, "SETUP_PLAN").is_some_and(|p| p.contains("\"smtp_host\":\"t-sink\"")));
}

#[test]
fn mailhog_is_an_alias_of_mailpit_and_observability_can_be_off() {
    let mut pt = running();
    pt.spec.sink.kind = SinkKind::MailHog;
    pt.spec.prometheus.enabled = false;
    pt.spec.grafana.enabled = false;
    let children = desired(&pt, &secrets(), &OperatorPeer::default()).expect("builds");
    let c = container(&children, "t-sink");
    assert_eq!(c.image.as_deref(), Some("axllent/mailpit:v1.33.1"));
    assert_eq!(c.name, "mailpit");
    pt.spec.sink.kind = SinkKind::Mailpit;
    let again = desired(&pt, &secrets(), &OperatorPeer::default()).expect("builds");
    assert_eq!(
        container(&again, "t-sink"),
        c,
        "MailHog and Mailpit give the same container"
    );
    // Every message kept and none refused for its size: Mailpit's defaults would prune beyond
    // 500 and refuse a 50 MiB attachment, and the delivered count is its message count.
    assert_eq!(env_of(&c, "MP_MAX_MESSAGES").as_deref(), Some("0"));
    assert_eq!(env_of(&c, "MP_MAX_MESSAGE_SIZE").as_deref(), Some("0"));
    let probe = c
        .readiness_probe
        .and_then(|p| p.http_get)
        .expect("an HTTP readiness probe");
    assert_eq!(probe.path.as_deref(), Some("/readyz"));
    assert!(
        !children
            .iter()
            .any(|c| c.describe().contains("prometheus") || c.describe().contains("grafana"))
    );
}

#[test]
fn postgres_gets_the_seed_parameters_and_a_claim() {
    let children = desired(&running(), &secrets(), &OperatorPeer::default()).expect("builds");
    let c = container(&children, "t-postgres");
    let args = c.args.expect("args").join(" ");
    assert!(
        args.contains("-c max_connections=200") && args.contains("-c synchronous_commit=off"),
        "{args}"
    );
    let sts = children
        .iter()
        .find_map(|c| match c {
            Child::StatefulSet(s) => Some(s.clone()),
            _ => None,
        })
        .expect("sts");
    assert_eq!(
        sts.spec
            .expect("spec")
            .volume_claim_templates
            .expect("claims")
            .len(),
        1
    );
    let svc = children
        .iter()
        .find_map(|c| match c {
            Child::Service(s) if s.metadata.name.as_deref() == Some("t-postgres") => s.spec.clone(),
            _ => None,
        })
        .expect("PostgreSQL's Service");
    assert_eq!(
        (svc.cluster_ip.as_deref(), svc.publish_not_ready_addresses),
        (Some("None"), Some(true)),
        "headless, and the name resolves while the pod restarts"
    );
}

#[test]
fn secret_values_round_trip_and_are_redacted() {
    let v = SecretValues::generate();
    assert_eq!(v.db_password.len(), 32);
    assert!(v.db_password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            &v.encryption_key
        )
        .expect("b64")
        .len(),
        32
    );
    let s = secret::secret(&PressureTest::test(), &v).expect("builds");
    assert_eq!(SecretValues::from_secret(&s), Some(v.clone()));
    assert!(!format!("{v:?}").contains(&v.api_token));
}

#[test]
fn scrape_config_lists_each_component() {
    let cfg = observability::scrape_config(&running(), "t").expect("renders");
    for needle in [
        "t-proxy.default.svc",
        "t-sink.default.svc",
        "t-client-documents.default.svc",
        "scrape_interval: 5s",
    ] {
        assert!(cfg.contains(needle), "{needle} missing in\n{cfg}");
    }
}

#[test]
fn postgres_on_empty_dir_has_no_claim() {
    let mut pt = running();
    pt.spec.postgres.volume = pressure_crds::PostgresVolume::EmptyDir;
    let children = desired(&pt, &secrets(), &OperatorPeer::default()).expect("builds");
    let sts = children
        .iter()
        .find_map(|c| match c {
            Child::StatefulSet(s) => Some(s.clone()),
            _ => None,
        })
        .expect("sts");
    let spec = sts.spec.expect("spec");
    assert!(spec.volume_claim_templates.is_none());
    let pod = spec.template.spec.expect("pod");
    let data = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "data")
        .expect("data volume");
    assert!(data.empty_dir.is_some());
}

#[test]
fn grafana_is_provisioned_with_datasource_and_dashboard() {
    let children = desired(&running(), &secrets(), &OperatorPeer::default()).expect("builds");
    let cm = children
        .iter()
        .find_map(|c| match c {
            Child::ConfigMap(m) if m.metadata.name.as_deref() == Some("t-grafana") => {
                Some(m.clone())
            }
            _ => None,
        })
        .expect("grafana config");
    let data = cm.data.expect("data");
    assert!(data["datasource.yaml"].contains("url: http://t-prometheus:9090"));
    let dash: serde_json::Value =
        serde_json::from_str(&data["mailproxy-pressure.json"]).expect("json");
    assert_eq!(dash["uid"], "mailproxy-pressure");
    let exprs = dash["panels"].to_string();
    for series in [
        "gmp_sent_total",
        "gmp_errors_total",
        "gmp_pending_messages",
        "gmp_delivery_latency_seconds_bucket",
    ] {
        assert!(exprs.contains(series), "{series} not on the dashboard");
    }
    let c = container(&children, "t-grafana");
    let mounts: Vec<_> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert!(mounts.contains(&"/etc/grafana/dashboards") && mounts.contains(&"/var/lib/grafana"));
}

/// The NetworkPolicy named `name`.
fn network_policy(children: &[Child], name: &str) -> NetworkPolicy {
    children
        .iter()
        .find_map(|c| match c {
            Child::NetworkPolicy(p) if p.metadata.name.as_deref() == Some(name) => Some(p.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no NetworkPolicy {name}"))
}

/// (workload name, pod labels) of every workload.
fn pod_labels(children: &[Child]) -> Vec<(String, BTreeMap<String, String>)> {
    children
        .iter()
        .filter_map(|c| {
            let (meta, template) = match c {
                Child::Deployment(d) => (&d.metadata, &d.spec.as_ref()?.template),
                Child::StatefulSet(s) => (&s.metadata, &s.spec.as_ref()?.template),
                Child::Job(j) => (&j.metadata, &j.spec.as_ref()?.template),
                _ => return None,
            };
            let labels = template.metadata.as_ref()?.labels.clone()?;
            Some((meta.name.clone().unwrap_or_default(), labels))
        })
        .collect()
}

/// Whether a matchLabels-only selector selects `labels` (the builders use no expressions).
fn selects(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    assert!(sel.match_expressions.is_none(), "expressions unsupported");
    sel.match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
}

/// Every peer of every ingress rule of a policy.
fn peers(np: &NetworkPolicy) -> Vec<&NetworkPolicyPeer> {
    np.spec
        .iter()
        .flat_map(|s| s.ingress.iter().flatten())
        .flat_map(|r| r.from.iter().flatten())
        .collect()
}

/// Workloads of this test whose pods a policy admits on its port.
fn admitted(np: &NetworkPolicy, workloads: &[(String, BTreeMap<String, String>)]) -> Vec<String> {
    let peers = peers(np);
    workloads
        .iter()
        .filter(|(_, labels)| {
            peers.iter().any(|p| {
                p.namespace_selector.is_none()
                    && p.pod_selector.as_ref().is_some_and(|s| selects(s, labels))
            })
        })
        .map(|(n, _)| n.clone())
        .collect()
}

#[test]
fn only_the_proxy_reaches_the_database_and_only_proxy_prometheus_operator_the_clients() {
    let op = OperatorPeer {
        namespace: Some("ops".into()),
        pod_labels: BTreeMap::from([("app".to_string(), "op".to_string())]),
    };
    let children = desired(&running(), &secrets(), &op).expect("builds");
    let workloads = pod_labels(&children);
    let policy = |name: &str| network_policy(&children, name);
    let guarded = |np: &NetworkPolicy| -> Vec<String> {
        let sel = np
            .spec
            .as_ref()
            .and_then(|s| s.pod_selector.clone())
            .expect("selector");
        workloads
            .iter()
            .filter(|(_, l)| selects(&sel, l))
            .map(|(n, _)| n.clone())
            .collect()
    };

    let db = policy("t-postgres-ingress");
    assert_eq!(guarded(&db), ["t-postgres"]);
    assert_eq!(admitted(&db, &workloads), ["t-proxy"]);

    let clients = policy("t-clients-ingress");
    let mut guarded_clients = guarded(&clients);
    guarded_clients.sort();
    let mut want: Vec<String> = pt_clients(&children);
    want.sort();
    assert_eq!(guarded_clients, want);
    assert_eq!(want.len(), 4, "every tenant's client is guarded");
    let mut from = admitted(&clients, &workloads);
    from.sort();
    assert_eq!(from, ["t-prometheus", "t-proxy"]);
    // The operator is admitted from its own namespace only, by its pod labels.
    let op_peer = peers(&clients)
        .into_iter()
        .find(|p| p.namespace_selector.is_some())
        .expect("operator peer");
    let ns = op_peer
        .namespace_selector
        .as_ref()
        .and_then(|s| s.match_labels.clone());
    assert_eq!(
        ns.and_then(|m| m.get("kubernetes.io/metadata.name").cloned())
            .as_deref(),
        Some("ops")
    );
    assert_eq!(
        op_peer
            .pod_selector
            .as_ref()
            .and_then(|s| s.match_labels.clone()),
        Some(op.pod_labels)
    );
    // Each policy admits one TCP port: PostgreSQL's and the clients' HTTP port.
    let port = |np: &NetworkPolicy| {
        np.spec
            .as_ref()
            .and_then(|s| s.ingress.clone())
            .expect("ingress")[0]
            .ports
            .clone()
            .expect("ports")
            .iter()
            .map(|p| p.port.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(port(&db), [Some(IntOrString::Int(postgres::PORT))]);
    assert_eq!(port(&clients), [Some(IntOrString::Int(clients::PORT))]);
}

fn pt_clients(children: &[Child]) -> Vec<String> {
    pod_labels(children)
        .into_iter()
        .filter(|(_, l)| l.get(COMPONENT_LABEL).map(String::as_str) == Some(clients::COMPONENT))
        .map(|(n, _)| n)
        .collect()
}

#[test]
fn clients_admit_no_prometheus_peer_when_prometheus_is_off() {
    let mut pt = running();
    pt.spec.prometheus.enabled = false;
    let children = desired(&pt, &secrets(), &OperatorPeer::default()).expect("builds");
    let np = network_policy(&children, "t-clients-ingress");
    let peers = peers(&np);
    let components: Vec<_> = peers
        .iter()
        .filter(|p| p.namespace_selector.is_none())
        .filter_map(|p| {
            p.pod_selector
                .as_ref()?
                .match_labels
                .as_ref()?
                .get(COMPONENT_LABEL)
                .cloned()
        })
        .collect();
    assert_eq!(components, ["proxy"]);
}

/// Workloads of this test admitted on TCP `port` by some ingress rule of `np`, and whether a
/// peer outside the test (the operator) is admitted there too.
fn admitted_on(
    np: &NetworkPolicy,
    port: i32,
    workloads: &[(String, BTreeMap<String, String>)],
) -> (Vec<String>, bool) {
    let rules: Vec<_> = np
        .spec
        .iter()
        .flat_map(|s| s.ingress.iter().flatten())
        .filter(|r| {
            r.ports
                .iter()
                .flatten()
                .any(|p| p.port == Some(IntOrString::Int(port)))
        })
        .collect();
    let peers: Vec<&NetworkPolicyPeer> =
        rules.iter().flat_map(|r| r.from.iter().flatten()).collect();
    assert!(
        rules
            .iter()
            .all(|r| r.from.as_ref().is_some_and(|f| !f.is_empty())),
        "no rule admits every source"
    );
    let mut inside: Vec<String> = workloads
        .iter()
        .filter(|(_, labels)| {
            peers.iter().any(|p| {
                p.namespace_selector.is_none()
                    && p.pod_selector.as_ref().is_some_and(|s| selects(s, labels))
            })
        })
        .map(|(n, _)| n.clone())
        .collect();
    inside.sort();
    (inside, peers.iter().any(|p| p.namespace_selector.is_some()))
}

#[test]
fn only_the_proxy_mails_the_sink_and_only_operator_and_prometheus_read_or_reset_it() {
    let op = OperatorPeer {
        namespace: Some("ops".into()),
        pod_labels: BTreeMap::from([("app".to_string(), "op".to_string())]),
    };
    let children = desired(&running(), &secrets(), &op).expect("builds");
    let workloads = pod_labels(&children);
    let np = network_policy(&children, "t-sink-ingress");
    let sel = np
        .spec
        .as_ref()
        .and_then(|s| s.pod_selector.clone())
        .expect("selector");
    let guarded: Vec<_> = workloads
        .iter()
        .filter(|(_, l)| selects(&sel, l))
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(guarded, ["t-sink"]);
    assert_eq!(
        admitted_on(&np, sink::SMTP_PORT, &workloads),
        (vec!["t-proxy".to_string()], false),
        "SMTP: the proxy only"
    );
    assert_eq!(
        admitted_on(&np, sink::HTTP_PORT, &workloads),
        (vec!["t-prometheus".to_string()], true),
        "HTTP (/stats, /reset): Prometheus and the operator only"
    );
    let ports: Vec<_> = np
        .spec
        .iter()
        .flat_map(|s| s.ingress.iter().flatten())
        .flat_map(|r| r.ports.iter().flatten())
        .map(|p| p.port.clone())
        .collect();
    assert_eq!(
        ports,
        [
            Some(IntOrString::Int(sink::SMTP_PORT)),
            Some(IntOrString::Int(sink::HTTP_PORT))
        ]
    );

    let mut pt = running();
    pt.spec.prometheus.enabled = false;
    let children = desired(&pt, &secrets(), &op).expect("builds");
    let np = network_policy(&children, "t-sink-ingress");
    assert_eq!(
        admitted_on(&np, sink::HTTP_PORT, &pod_labels(&children)),
        (vec![], true),
        "without Prometheus only the operator reads the sink"
    );
}

#[test]
fn every_pod_template_gets_its_components_placement() {
    use k8s_openapi::api::core::v1::{LocalObjectReference, Toleration};
    use pressure_crds::PlacementSpec;
    let map = |pairs: &[(&str, &str)]| -> Option<BTreeMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    let mut pt = running();
    pt.spec.placement = PlacementSpec {
        node_selector: map(&[("pool", "load")]),
        tolerations: Some(vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some("load".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        }]),
        image_pull_secrets: Some(vec![LocalObjectReference {
            name: "regcred".into(),
        }]),
        pod_labels: map(&[("team", "mail")]),
        pod_annotations: map(&[("cost-center", "42")]),
        ..Default::default()
    };
    pt.spec.postgres.placement = Some(PlacementSpec {
        node_selector: map(&[("pool", "db")]),
        priority_class_name: Some("high".into()),
        ..Default::default()
    });
    pt.spec.tenants[0].placement = Some(PlacementSpec {
        pod_labels: map(&[("team", "clients")]),
        ..Default::default()
    });
    let children = desired(&pt, &secrets(), &OperatorPeer::default()).expect("builds");
    let labels = pod_labels(&children);
    let workloads = pods(&children);
    // proxy, sink, prometheus, grafana, setup, 4 clients, postgres: every pod template.
    assert_eq!(workloads.len(), 10);
    for (name, pod) in &workloads {
        let pool = pod
            .node_selector
            .as_ref()
            .and_then(|m| m.get("pool").cloned());
        let is_pg = name == "t-postgres";
        assert_eq!(
            pool.as_deref(),
            Some(if is_pg { "db" } else { "load" }),
            "{name}"
        );
        assert_eq!(
            pod.priority_class_name.as_deref(),
            is_pg.then_some("high"),
            "{name}"
        );
        assert_eq!(pod.tolerations.as_ref().map(Vec::len), Some(1), "{name}");
        assert_eq!(
            pod.image_pull_secrets.as_ref().map(|s| s[0].name.as_str()),
            Some("regcred"),
            "{name}"
        );
        let l = &labels.iter().find(|(n, _)| n == name).expect("labels").1;
        let team = if name == "t-client-high-volume" {
            "clients"
        } else {
            "mail"
        };
        assert_eq!(l.get("team").map(String::as_str), Some(team), "{name}");
        assert!(
            l.contains_key(COMPONENT_LABEL),
            "{name} keeps its own labels"
        );
    }
    for child in &children {
        let template = match child {
            Child::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Child::StatefulSet(s) => s.spec.as_ref().map(|s| &s.template),
            Child::Job(j) => j.spec.as_ref().map(|s| &s.template),
            _ => None,
        };
        if let Some(t) = template {
            let mut a = t.metadata.as_ref().and_then(|m| m.annotations.clone());
            // The run's own stamp on run-scoped pods (`run_scope`) is not placement's.
            if let Some(a) = a.as_mut() {
                a.remove(super::run_scope::RUN_ID_ANNOTATION);
            }
            assert_eq!(a, map(&[("cost-center", "42")]), "{}", child.describe());
        }
    }
    // The operator's own label keys cannot be taken over (the schema refuses them as well).
    pt.spec.proxy.placement = Some(PlacementSpec {
        pod_labels: map(&[(COMPONENT_LABEL, "evil")]),
        ..Default::default()
    });
    let children = desired(&pt, &secrets(), &OperatorPeer::default()).expect("builds");
    let proxy = pod_labels(&children)
        .into_iter()
        .find(|(n, _)| n == "t-proxy")
        .expect("proxy");
    assert_eq!(
        proxy.1.get(COMPONENT_LABEL).map(String::as_str),
        Some("proxy")
    );
    // Without placement nothing is set.
    let plain = desired(&running(), &secrets(), &OperatorPeer::default()).expect("builds");
    for (name, pod) in pods(&plain) {
        assert!(
            pod.node_selector.is_none() && pod.tolerations.is_none() && pod.affinity.is_none(),
            "{name}"
        );
    }
}
