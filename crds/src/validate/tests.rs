//! Unit tests of [`super::validate`] and [`super::load_yaml`].

use super::*;
use crate::profiles::Profile;
use crate::spec::{RatesSpec, TenantSpec};

fn paths(spec: &PressureTestSpec) -> Vec<String> {
    match validate(spec) {
        Ok(()) => vec![],
        Err(e) => e.0.into_iter().map(|e| e.path).collect(),
    }
}

#[test]
fn minimal_yaml_gets_defaults_and_is_valid() {
    let pt = load_yaml(
        "apiVersion: pressure.mailproxy.dev/v1alpha1\nkind: PressureTest\nmetadata: {name: m}\n\
         spec: {tenants: [{name: standard, profile: standard}]}\n",
    )
    .expect("minimal spec loads");
    assert_eq!(pt.spec.duration_seconds, 300);
    assert_eq!(pt.spec.proxy.tuning.pool_size, 20);
    assert_eq!(pt.spec.tenants[0].clients, 1);
    assert!(pt.spec.prometheus.enabled && pt.spec.grafana.enabled);
}

#[test]
fn seed_default_is_valid_and_has_the_four_tenants() {
    let spec = PressureTestSpec::seed_default();
    assert_eq!(paths(&spec), Vec::<String>::new());
    let names: Vec<_> = spec.tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["high-volume", "standard", "newsletter", "documents"]
    );
}

#[test]
fn unknown_field_is_a_parse_error() {
    let err = load_yaml(
        "metadata: {name: x}\nspec: {tenants: [{name: a, profile: standard}], duration: 5}\n",
    )
    .expect_err("typo rejected");
    assert!(matches!(err, LoadError::Parse(_)), "{err}");
    assert!(err.to_string().contains("duration"), "{err}");
}

#[test]
fn each_rule_reports_its_field_path() {
    let mut spec = PressureTestSpec::seed_default();
    spec.tenants[1].name = "high-volume".into();
    spec.tenants[2].clients = 0;
    spec.tenants[3].name = "Bad_Name".into();
    spec.proxy.hpa.min_replicas = 5;
    spec.proxy.hpa.max_replicas = 2;
    spec.duration_seconds = 1;
    spec.postgres.storage = "lots".into();
    spec.prometheus.enabled = false;
    spec.thresholds.max_error_rate_permille = 2000;
    spec.stages = vec![
        crate::StageSpec {
            duration_seconds: 10,
            rate_percent: 100,
        },
        crate::StageSpec {
            duration_seconds: 0,
            rate_percent: 1001,
        },
    ];
    let got = paths(&spec);
    for want in [
        "spec.tenants[1].name",
        "spec.tenants[2].clients",
        "spec.tenants[3].name",
        "spec.proxy.hpa",
        "spec.durationSeconds",
        "spec.postgres.storage",
        "spec.grafana.enabled",
        "spec.thresholds.maxErrorRatePermille",
        "spec.stages[1].durationSeconds",
        "spec.stages[1].ratePercent",
    ] {
        assert!(got.iter().any(|p| p == want), "missing {want} in {got:?}");
    }
    assert!(
        !got.iter().any(|p| p.starts_with("spec.stages[0]")),
        "{got:?}"
    );
}

#[test]
fn tenant_needs_profile_or_all_rates() {
    let mut t = TenantSpec::from_profile("custom", Profile::Standard);
    t.profile = None;
    t.rates = Some(RatesSpec {
        messages_per_sync: Some(3),
        ..RatesSpec::default()
    });
    let spec = PressureTestSpec::with_tenants(vec![t.clone()]);
    assert_eq!(paths(&spec), ["spec.tenants[0]"]);
    t.rates = Some(RatesSpec {
        messages_per_sync: Some(3),
        cache_hit_rate_permille: Some(0),
        dnd_probability_permille: Some(0),
        large_attachment_rate_permille: Some(1000),
    });
    assert!(paths(&PressureTestSpec::with_tenants(vec![t.clone()])).is_empty());
    assert_eq!(t.effective_rates().large_attachment_rate_permille, 1000);
}

#[test]
fn rates_override_the_profile() {
    let mut t = TenantSpec::from_profile("n", Profile::Newsletter);
    t.rates = Some(RatesSpec {
        messages_per_sync: Some(7),
        ..RatesSpec::default()
    });
    let r = t.effective_rates();
    assert_eq!((r.messages_per_sync, r.cache_hit_rate_permille), (7, 500));
}

#[test]
fn quantities_are_checked() {
    assert!(is_cpu("250m") && is_cpu("1") && is_cpu("0.5") && !is_cpu("1.") && !is_cpu("m"));
    assert!(is_memory("256Mi") && is_memory("1G") && is_memory("1024") && !is_memory("1.5Gi"));
    assert!(is_storage("10Gi") && !is_storage("10") && !is_storage("Gi"));
    assert!(is_dns_label("a-1") && !is_dns_label("-a") && !is_dns_label("a-") && !is_dns_label(""));
}

#[test]
fn memory_quantities_convert_to_bytes() {
    assert_eq!(memory_bytes("512Mi"), Some(512 << 20));
    assert_eq!(memory_bytes("1G"), Some(1_000_000_000));
    assert_eq!(memory_bytes("2Gi"), Some(2 << 30));
    assert_eq!(memory_bytes("1048576"), Some(1 << 20));
    assert_eq!(memory_bytes("1.5Gi"), None);
    assert_eq!(memory_bytes("99999999999999999Ti"), None, "overflow");
}

#[test]
fn thresholds_are_switched_off_by_name() {
    let pt = load_yaml(
        "metadata: {name: m}\nspec:\n  tenants: [{name: standard, profile: standard}]\n  \
         sink: {kind: MailHog}\n  thresholds:\n    maxLostMessages: 2\n    \
         disabled: [maxP99LatencyMs, maxDuplicates]\n",
    )
    .expect("loads");
    let t = &pt.spec.thresholds;
    assert_eq!((t.max_lost_messages, t.max_attachment_mismatches), (2, 0));
    assert!(t.is_disabled(crate::ThresholdName::MaxDuplicates));
    assert!(!t.is_disabled(crate::ThresholdName::MaxLostMessages));
    let err = load_yaml(
        "metadata: {name: m}\nspec:\n  tenants: [{name: standard, profile: standard}]\n  \
         thresholds: {disabled: [maxLatency]}\n",
    )
    .expect_err("unknown threshold name");
    assert!(matches!(err, LoadError::Parse(_)), "{err}");
    let mut spec = PressureTestSpec::seed_default();
    spec.thresholds.disabled = vec![crate::ThresholdName::MaxDuplicates; 2];
    spec.thresholds.max_lost_messages = -1;
    assert_eq!(
        paths(&spec),
        [
            "spec.thresholds.maxLostMessages",
            "spec.thresholds.disabled[1]"
        ]
    );
}

#[test]
fn placement_is_read_from_yaml_and_the_operators_label_keys_are_refused() {
    let pt = load_yaml(
        "metadata: {name: p}\nspec:\n  tenants: [{name: a, profile: standard, placement: {nodeSelector: {pool: clients}}}]\n  \
         placement:\n    nodeSelector: {pool: load}\n    tolerations: [{key: dedicated, operator: Equal, value: load, effect: NoSchedule}]\n    \
         imagePullSecrets: [{name: regcred}]\n    podLabels: {team: mail}\n  \
         postgres: {placement: {priorityClassName: high}}\n",
    )
    .expect("placement loads");
    let s = &pt.spec;
    let pg = s.placement_of(crate::Component::Postgres);
    assert_eq!(pg.priority_class_name.as_deref(), Some("high"));
    assert_eq!(pg.node_selector, s.placement.node_selector);
    let clients = s.placement_of(crate::Component::Clients("a"));
    assert_eq!(
        clients
            .node_selector
            .and_then(|m| m.get("pool").cloned())
            .as_deref(),
        Some("clients")
    );
    assert_eq!(clients.tolerations.map(|t| t.len()), Some(1));
    assert_eq!(s.placement_of(crate::Component::Setup), s.placement);

    let mut spec = pt.spec.clone();
    spec.proxy.placement = Some(PlacementSpec {
        pod_labels: Some([("pressure.mailproxy.dev/test".to_string(), "x".to_string())].into()),
        ..Default::default()
    });
    spec.placement.priority_class_name = Some(String::new());
    assert_eq!(
        paths(&spec),
        [
            "spec.placement.priorityClassName",
            "spec.proxy.placement.podLabels"
        ]
    );
}

/// A spec with these `spec.proxy` lines (YAML under `proxy:`) and PostgreSQL's `maxConnections`.
fn with_proxy(proxy: &str, pg_connections: i32) -> Result<PressureTest, LoadError> {
    load_yaml(&format!(
        "metadata: {{name: s}}\nspec:\n  tenants: [{{name: a, profile: standard}}]\n  proxy:\n{proxy}\n  \
         postgres: {{tuning: {{maxConnections: {pg_connections}}}}}\n"
    ))
}

fn rule_paths(result: Result<PressureTest, LoadError>) -> Vec<String> {
    match result {
        Ok(_) => vec![],
        Err(LoadError::Invalid(e)) => e.0.into_iter().map(|e| e.path).collect(),
        Err(e) => panic!("not a rule error: {e}"),
    }
}

#[test]
fn proxy_settings_out_of_range_name_their_group_and_field() {
    let proxy = "    settings:\n      dispatch: {claimBatchSize: 0, retryDelaysSeconds: [60, -1]}\n      \
                 diskCache: {maxMb: 0}\n      http: {maxRequestBytes: 10}";
    assert_eq!(
        rule_paths(with_proxy(proxy, 200)),
        [
            "spec.proxy.settings.dispatch.claimBatchSize",
            "spec.proxy.settings.diskCache.maxMb",
            "spec.proxy.settings.http.maxRequestBytes",
            "spec.proxy.settings.dispatch.retryDelaysSeconds",
        ]
    );
    let ok = "    settings:\n      dispatch: {claimBatchSize: 500, retryDelaysSeconds: [1, 2]}\n      \
              diskCache: {}\n      logFormat: Json";
    let pt = with_proxy(ok, 200).expect("in-range settings load");
    assert!(pt.spec.proxy.settings.disk_cache.is_some());
}

#[test]
fn memory_budgets_must_leave_a_quarter_of_the_limit() {
    // 512Mi by default: 300 + 51 (the 10 % share) = 351 MiB, within 384 (three quarters).
    let fits = "    settings: {attachments: {memoryBudgetMb: 300}}";
    assert_eq!(rule_paths(with_proxy(fits, 200)), Vec::<String>::new());
    let over = "    settings: {attachments: {memoryBudgetMb: 340}}";
    assert_eq!(rule_paths(with_proxy(over, 200)), ["spec.proxy"]);
    let raised = "    resources: {memoryLimit: 1Gi}\n    settings: {attachments: {memoryBudgetMb: 340}, cache: {memoryMaxMb: 200}}";
    assert_eq!(rule_paths(with_proxy(raised, 200)), Vec::<String>::new());
    let plan = with_proxy(raised, 200).unwrap().spec.proxy.memory_plan();
    assert_eq!(
        (
            plan.limit_mib,
            plan.attachment_budget_mb,
            plan.cache_memory_mb
        ),
        (1024, 340, 200)
    );
}

#[test]
fn database_connections_must_fit_postgres() {
    // Default: 10 per replica × 4 (HPA maximum) + 5 spare = 45.
    assert_eq!(
        rule_paths(with_proxy("    replicas: 1", 45)),
        Vec::<String>::new()
    );
    assert_eq!(rule_paths(with_proxy("    replicas: 1", 44)), ["spec"]);
    let fixed = "    hpa: {enabled: false}\n    replicas: 3\n    settings: {database: {maxConnections: 60}}";
    assert_eq!(rule_paths(with_proxy(fixed, 185)), Vec::<String>::new());
    assert_eq!(rule_paths(with_proxy(fixed, 184)), ["spec"]);
}
