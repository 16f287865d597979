//! Unit tests of [`super::validate`], [`super::load_yaml`] and the schema they check against.

use super::schema::{SCHEMA, child, dotted};
use super::*;
use crate::profiles::Profile;
use crate::spec::placement::RESERVED_LABEL_PREFIXES;
use crate::spec::sut::{PROXY_DEFAULT_DB_CONNECTIONS, PROXY_DEFAULT_RESOURCES};
use crate::spec::{RatesSpec, TenantSpec};

fn paths(spec: &PressureTestSpec) -> Vec<String> {
    match validate(spec) {
        Ok(()) => vec![],
        Err(e) => e.0.into_iter().map(|e| e.path).collect(),
    }
}

/// The invalid fields of a document: path and message.
fn problems(result: Result<PressureTest, LoadError>) -> Vec<(String, String)> {
    match result {
        Ok(_) => vec![],
        Err(LoadError::Invalid(e)) => {
            e.0.into_iter()
                .map(|e| (e.path, e.problem.to_string()))
                .collect()
        }
        Err(e) => panic!("not a validation error: {e}"),
    }
}

fn rule_paths(result: Result<PressureTest, LoadError>) -> Vec<String> {
    problems(result).into_iter().map(|(p, _)| p).collect()
}

/// A document with one tenant and these extra lines under `spec:` (each indented two spaces).
fn doc(spec_lines: &str) -> String {
    format!(
        "apiVersion: pressure.mailproxy.dev/v1alpha1\nkind: PressureTest\nmetadata: {{name: t}}\n\
         spec:\n  tenants: [{{name: a, profile: standard}}]\n{spec_lines}"
    )
}

#[test]
fn the_schema_compiles() {
    if let Err(e) = &*SCHEMA {
        panic!("{e}");
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
fn every_example_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy/examples exists") {
        let path = entry.expect("directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("example readable");
        if let Err(e) = load_yaml(&text) {
            panic!("{}: {e}", path.display());
        }
        seen += 1;
    }
    assert!(seen >= 3, "only {seen} examples in {}", dir.display());
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
fn unknown_field_is_reported_with_its_path() {
    let got = problems(load_yaml(
        "metadata: {name: x}\nspec: {tenants: [{name: a, profile: standard}], duration: 5}\n",
    ));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "spec.duration");
    assert!(got[0].1.starts_with("unknown field"), "{got:?}");
    assert!(
        got[0].1.contains("did you mean durationSeconds?"),
        "{got:?}"
    );
    let got = problems(load_yaml(&doc("  zzz: 1\n")));
    assert_eq!(got[0].0, "spec.zzz");
    assert!(
        got[0].1.contains("the fields here are abort, baseline,"),
        "{got:?}"
    );
}

/// The invalid PressureTests the API server refuses in `e2e/tests/e2e_crd.rs`, refused here
/// with the same field and the part of the message that says what to fix.
#[test]
fn the_api_servers_invalid_cases_are_refused_with_their_field() {
    let tenant = "  tenants: [{name: standard, profile: standard}]\n";
    let with = |lines: &str| format!("{tenant}{lines}");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            with("  proxy: {hpa: {minReplicas: 5, maxReplicas: 2}}\n"),
            "spec.proxy.hpa",
            "hpa.minReplicas must not exceed hpa.maxReplicas",
        ),
        (
            "  tenants: []\n".into(),
            "spec.tenants",
            "between 1 and 32, got 0",
        ),
        (
            "  tenants: [{name: a, profile: standard, rates: {cacheHitRatePermille: 1500}}]\n"
                .into(),
            "spec.tenants[0].rates.cacheHitRatePermille",
            "between 0 and 1000, got 1500",
        ),
        (
            "  tenants: [{name: a, profile: turbo}]\n".into(),
            "spec.tenants[0].profile",
            "high-volume",
        ),
        (
            with("  prometheus: {enabled: false}\n  grafana: {enabled: true}\n"),
            "spec.grafana.enabled",
            "grafana.enabled needs prometheus.enabled",
        ),
        (
            "  tenants: [{name: a, rates: {messagesPerSync: 3}}]\n".into(),
            "spec.tenants[0]",
            "set a profile, or all four rates",
        ),
        (
            "  tenants: [{name: Std_1, profile: standard}]\n".into(),
            "spec.tenants[0].name",
            "must be of the form",
        ),
        (
            with("  durationSeconds: 1\n"),
            "spec.durationSeconds",
            "between 10 and",
        ),
        (
            with("  placement: {podLabels: {app.kubernetes.io/component: x}}\n"),
            "spec.placement.podLabels",
            "podLabels may not use the keys app.kubernetes.io/*",
        ),
        (
            with("  proxy: {placement: {tolerations: [{key: a, tolerationSeconds: soon}]}}\n"),
            "spec.proxy.placement.tolerations[0].tolerationSeconds",
            "must be a whole number",
        ),
        (
            with("  proxy: {settings: {dispatch: {claimBatchSize: 0}}}\n"),
            "spec.proxy.settings.dispatch.claimBatchSize",
            "between 1 and",
        ),
        (
            with("  proxy: {settings: {dispatch: {retryDelaysSeconds: [60, -5]}}}\n"),
            "spec.proxy.settings.dispatch.retryDelaysSeconds",
            "each delay must be between 0 and 86400 seconds",
        ),
        (
            with(
                "  proxy:\n    resources: {memoryLimit: 1Gi}\n    settings: {attachments: {memoryBudgetMb: 600}, cache: {memoryMaxMb: 200}}\n",
            ),
            "spec.proxy",
            "must together stay within three quarters of resources.memoryLimit",
        ),
        (
            with("  proxy: {hpa: {maxReplicas: 4}, settings: {database: {maxConnections: 50}}}\n"),
            "spec",
            "must not exceed postgres.tuning.maxConnections",
        ),
        (
            with("  durationSecs: 60\n"),
            "spec.durationSecs",
            "unknown field",
        ),
    ];
    for (spec, path, fragment) in cases {
        let text = format!("metadata: {{name: bad}}\nspec:\n{spec}");
        let got = problems(load_yaml(&text));
        assert!(
            got.iter().any(|(p, m)| p == path && m.contains(fragment)),
            "{spec}: want {path}: …{fragment}… in {got:?}"
        );
    }
    let long = doc("").replace("name: t}", "name: a-name-far-too-long-for-children}");
    let got = problems(load_yaml(&long));
    assert!(
        got.iter()
            .any(|(p, m)| p == "metadata.name" && m.contains("24")),
        "{got:?}"
    );
}

#[test]
fn not_a_mapping_is_a_parse_error() {
    for text in ["", "- a\n- b\n", "spec: [unclosed\n"] {
        let err = load_yaml(text).expect_err("refused");
        assert!(matches!(err, LoadError::Parse(_)), "{text:?}: {err}");
    }
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
fn schema_errors_say_what_to_fix() {
    let text = doc(
        "  durationSeconds: 1\n  seed: 3000000000\n  keepOnFinish: Never\n  \
         proxy: {placement: {tolerations: [{key: a, tolerationSeconds: soon}], nodeSelector: {app.kubernetes.io/pool: 1}}}\n  \
         postgres: {storage: lots}\n",
    );
    let got = problems(load_yaml(&text));
    let want = [
        (
            "spec.durationSeconds",
            "must be between 10 and 86400, got 1",
        ),
        (
            "spec.keepOnFinish",
            "must be one of Everything, ResultsOnly, got \"Never\"",
        ),
        (
            "spec.postgres.storage",
            "must be of the form ^[0-9]+(Ki|Mi|Gi|Ti)$, got \"lots\"",
        ),
        (
            "spec.proxy.placement.nodeSelector[\"app.kubernetes.io/pool\"]",
            "must be a string, got 1",
        ),
        (
            "spec.proxy.placement.tolerations[0].tolerationSeconds",
            "must be a whole number, got \"soon\"",
        ),
        (
            "spec.seed",
            "must be between 0 and 2147483647, got 3000000000",
        ),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn required_fields_and_lengths_are_reported() {
    let got = problems(load_yaml(
        "metadata: {name: x}\nspec: {durationSeconds: 60}\n",
    ));
    assert_eq!(got, [("spec.tenants".into(), "is required".into())]);
    let got = problems(load_yaml("metadata: {name: x}\nspec: {tenants: []}\n"));
    assert_eq!(
        got,
        [(
            "spec.tenants".into(),
            "length must be between 1 and 32, got 0".into()
        )]
    );
}

#[test]
fn null_stands_for_an_unset_optional_field() {
    let pt = load_yaml(&doc(
        "  proxy: {resources: null, placement: null, settings: {logFormat: null}}\n",
    ))
    .expect("nullable fields accept null");
    assert!(pt.spec.proxy.resources.is_none());
}

#[test]
fn a_long_name_is_reported_once() {
    let text = doc("").replace("name: t}", "name: a-name-far-too-long-for-children}");
    let got = problems(load_yaml(&text));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "metadata.name");
    let got = problems(load_yaml(&doc("").replace("name: t}", "name: Bad_Name}")));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].1.contains("DNS label"), "{got:?}");
}

#[test]
fn every_invalid_field_of_a_document_is_reported() {
    let text = "metadata: {name: m}\nspec:\n  tenants:\n    - {name: a, profile: turbo}\n    \
                - {name: a, rates: {messagesPerSync: 3}, clients: 0}\n  \
                durationSecs: 60\n  warmupSeconds: -1\n";
    let got = rule_paths(load_yaml(text));
    assert_eq!(
        got,
        [
            "spec.durationSecs",
            "spec.tenants[0].profile",
            "spec.tenants[1].clients",
            "spec.warmupSeconds",
        ],
        "schema errors stop before the rules when the document cannot be read as a spec"
    );
    let text = "metadata: {name: m}\nspec:\n  tenants:\n    - {name: a, profile: standard}\n    \
                - {name: a, rates: {messagesPerSync: 3}, clients: 0}\n  warmupSeconds: -1\n";
    assert_eq!(
        rule_paths(load_yaml(text)),
        [
            "spec.tenants[1]",
            "spec.tenants[1].clients",
            "spec.tenants[1].name",
            "spec.warmupSeconds",
        ]
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
    let resources = |cpu: &str, memory: &str, storage: &str| {
        doc(&format!(
            "  proxy: {{resources: {{cpuRequest: {cpu:?}, memoryLimit: {memory:?}}}}}\n  \
             postgres: {{storage: {storage:?}}}\n"
        ))
    };
    for (cpu, memory, storage) in [
        ("250m", "1Gi", "10Gi"),
        ("1", "1G", "1Ti"),
        ("0.5", "1073741824", "512Mi"),
    ] {
        let text = resources(cpu, memory, storage);
        assert_eq!(rule_paths(load_yaml(&text)), Vec::<String>::new(), "{text}");
    }
    for (cpu, memory, storage) in [("1.", "1.5Gi", "10"), ("m", "Mi", "Gi")] {
        assert_eq!(
            rule_paths(load_yaml(&resources(cpu, memory, storage))),
            [
                "spec.postgres.storage",
                "spec.proxy.resources.cpuRequest",
                "spec.proxy.resources.memoryLimit",
            ]
        );
    }
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
    let got = rule_paths(load_yaml(
        "metadata: {name: m}\nspec:\n  tenants: [{name: standard, profile: standard}]\n  \
         thresholds: {disabled: [maxLatency]}\n",
    ));
    assert_eq!(
        got,
        ["spec.thresholds.disabled[0]"],
        "unknown threshold name"
    );
    let mut spec = PressureTestSpec::seed_default();
    spec.thresholds.disabled = vec![crate::ThresholdName::MaxDuplicates; 2];
    spec.thresholds.max_lost_messages = -1;
    assert_eq!(
        paths(&spec),
        [
            "spec.thresholds.disabled[1]",
            "spec.thresholds.maxLostMessages",
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
    spec.tenants[0].placement = spec.proxy.placement.clone();
    assert_eq!(
        paths(&spec),
        [
            "spec.placement.priorityClassName",
            "spec.proxy.placement.podLabels",
            "spec.tenants[0].placement.podLabels",
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

#[test]
fn proxy_settings_out_of_range_name_their_group_and_field() {
    let proxy = "    settings:\n      dispatch: {claimBatchSize: 0, retryDelaysSeconds: [60, -1]}\n      \
                 diskCache: {maxMb: 0}\n      http: {maxRequestBytes: 10}";
    assert_eq!(
        rule_paths(with_proxy(proxy, 200)),
        [
            "spec.proxy.settings.diskCache.maxMb",
            "spec.proxy.settings.dispatch.claimBatchSize",
            "spec.proxy.settings.dispatch.retryDelaysSeconds",
            "spec.proxy.settings.http.maxRequestBytes",
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
    let plan = with_proxy(raised, 200)
        .expect("loads")
        .spec
        .proxy
        .memory_plan();
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

#[test]
fn a_baseline_names_exactly_one_source() {
    let one = doc("  baseline: {report: old-report-1}\n");
    assert_eq!(rule_paths(load_yaml(&one)), Vec::<String>::new());
    for bad in [
        "  baseline: {report: r, pressureTest: p}\n",
        "  baseline: {}\n",
    ] {
        assert_eq!(
            problems(load_yaml(&doc(bad))),
            [("spec.baseline".into(), BASELINE_ONE_OF.into())]
        );
    }
}

/// The CEL rules of the generated schema: `(rule, message)` with the schema path of each.
fn cel_rules() -> Vec<(String, String, String)> {
    fn walk(v: &Value, at: &str, out: &mut Vec<(String, String, String)>) {
        let Some(map) = v.as_object() else { return };
        for rule in map
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = |k| {
                rule.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            out.push((at.to_string(), text("rule"), text("message")));
        }
        for (name, child) in map
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            walk(child, &format!("{at}.{name}"), out);
        }
        if let Some(items) = map.get("items") {
            walk(items, &format!("{at}[]"), out);
        }
    }
    let crd = serde_json::to_value(crate::crd()).expect("CRD as JSON");
    let root = crd
        .pointer("/spec/versions/0/schema/openAPIV3Schema")
        .expect("schema");
    let mut out = Vec::new();
    walk(root, "", &mut out);
    out
}

#[test]
fn the_schemas_cel_rules_are_the_ones_checked_in_rust() {
    let rules = cel_rules();
    let in_schema: BTreeSet<&str> = rules
        .iter()
        .filter(|(_, rule, _)| !rule.contains("oldSelf"))
        .map(|(_, _, message)| message.as_str())
        .collect();
    let in_rust: BTreeSet<&str> = CEL_MESSAGES.into_iter().collect();
    assert_eq!(
        in_schema, in_rust,
        "a CEL rule was added to or removed from the CRD: mirror it in `rules` and CEL_MESSAGES"
    );
    let transition = rules
        .iter()
        .filter(|(_, r, _)| r.contains("oldSelf"))
        .count();
    assert_eq!(
        transition, 2,
        "the transition rules, which a file cannot break"
    );
}

#[test]
fn the_cel_rules_use_the_literals_rust_checks() {
    // CEL cannot read Rust constants: each rule spells them out and must match the Rust side.
    let rules = cel_rules();
    let rule_of = |message: &str| -> Vec<&str> {
        rules
            .iter()
            .filter(|(_, _, m)| m == message)
            .map(|(_, r, _)| r.as_str())
            .collect()
    };
    let (lo, hi) = (RETRY_DELAY_SECONDS.start(), RETRY_DELAY_SECONDS.end());
    assert_eq!(
        rule_of(RETRY_DELAYS_MESSAGE),
        [format!("self.all(d, d >= {lo} && d <= {hi})")]
    );
    let labels = rule_of(RESERVED_LABELS);
    assert_eq!(labels.len(), 7, "spec, five components and the tenants");
    for rule in labels {
        for prefix in RESERVED_LABEL_PREFIXES {
            assert!(rule.contains(&format!("startsWith('{prefix}')")), "{rule}");
        }
    }
    let default_limit = memory_bytes(PROXY_DEFAULT_RESOURCES[3]).expect("a quantity");
    for rule in rule_of(PROXY_MEMORY_MESSAGE) {
        assert!(
            rule.contains(&format!(": {default_limit}) / 1048576)")),
            "{rule}"
        );
    }
    let db = rule_of(DB_CONNECTIONS_MESSAGE).concat();
    assert!(
        db.contains(&format!(": {PROXY_DEFAULT_DB_CONNECTIONS})")),
        "{db}"
    );
    assert!(
        db.contains(&format!("+ {POSTGRES_SPARE_CONNECTIONS} <=")),
        "{db}"
    );
    // The profile-or-rates rule names every rate field the schema has.
    let crd = serde_json::to_value(crate::crd()).expect("CRD as JSON");
    let rates = crd
        .pointer(
            "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/tenants/items/properties/rates/properties",
        )
        .and_then(Value::as_object)
        .expect("tenant rates in the schema");
    let profile = rule_of(PROFILE_OR_RATES).concat();
    assert_eq!(rates.len(), 4);
    for name in rates.keys() {
        assert!(
            profile.contains(&format!("has(self.rates.{name})")),
            "{profile}"
        );
    }
    assert_eq!(rule_of(HPA_ORDER), ["self.minReplicas <= self.maxReplicas"]);
    assert_eq!(
        rule_of(GRAFANA_NEEDS_PROMETHEUS),
        ["!self.grafana.enabled || self.prometheus.enabled"]
    );
    assert_eq!(
        rule_of(BASELINE_ONE_OF),
        ["has(self.report) != has(self.pressureTest)"]
    );
}

#[test]
fn paths_are_dotted_with_list_indexes() {
    let document = serde_json::json!({"spec": {"tenants": [{"name": "a"}, {"clients": 0}],
        "placement": {"podLabels": {"7": "x"}}}});
    let at = |pointer: &str| {
        let location = jsonschema::paths::Location::new();
        let location = pointer
            .split('/')
            .filter(|s| !s.is_empty())
            .fold(location, |l, s| l.join(s));
        dotted(&document, location.segments())
    };
    assert_eq!(at("/spec/tenants/1/clients"), "spec.tenants[1].clients");
    assert_eq!(
        at("/spec/placement/podLabels/7"),
        "spec.placement.podLabels.7"
    );
    assert_eq!(child("spec.x", "a.b/c"), "spec.x[\"a.b/c\"]");
}
