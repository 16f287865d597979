//! [`validate`]: the CRD schema's rules (ranges, patterns, required rates, unique tenant names and
//! the CEL cross-field checks) as a pure function, so a spec read from a file outside Kubernetes is
//! held to the same rules as one sent to the API server. [`load_yaml`] parses and validates.

use std::collections::BTreeSet;
use std::fmt;

use crate::spec::DB_CONNECTIONS_MESSAGE;
use crate::spec::placement::PlacementSpec;
use crate::spec::settings::RETRY_DELAYS_MESSAGE;
use crate::spec::sut::{POSTGRES_SPARE_CONNECTIONS, PROXY_MEMORY_MESSAGE, ResourcesSpec};
use crate::spec::{PressureTest, PressureTestSpec, TenantSpec};

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A number outside its allowed range.
    OutOfRange {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
        /// The value found.
        got: i64,
    },
    /// A string or list with the wrong length.
    BadLength {
        /// Shortest allowed.
        min: usize,
        /// Longest allowed.
        max: usize,
        /// The length found.
        got: usize,
    },
    /// A string not of the expected form.
    BadFormat {
        /// The expected form, in words.
        expected: &'static str,
        /// The value found.
        got: String,
    },
    /// Two list entries share a key.
    Duplicate(String),
    /// A rule across fields does not hold; the text says how to fix it.
    Rule(&'static str),
}

/// One invalid field: a path such as `spec.tenants[1].clients` and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Dotted path of the field, from `spec`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub problem: Problem,
}

/// Every invalid field of a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

/// Why a PressureTest file could not be used.
#[derive(Debug)]
pub enum LoadError {
    /// Not YAML of the PressureTest shape (unknown field, wrong type…).
    Parse(serde_yaml::Error),
    /// Well-formed but breaks a rule.
    Invalid(ValidationErrors),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::OutOfRange { min, max, got } => {
                write!(f, "must be between {min} and {max}, got {got}")
            }
            Problem::BadLength { min, max, got } => {
                write!(f, "length must be between {min} and {max}, got {got}")
            }
            Problem::BadFormat { expected, got } => write!(f, "must be {expected}, got {got:?}"),
            Problem::Duplicate(key) => write!(f, "duplicate name {key:?}; names must be unique"),
            Problem::Rule(text) => f.write_str(text),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("; "))
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Parse(e) => write!(f, "not a valid PressureTest: {e}"),
            LoadError::Invalid(e) => write!(f, "invalid PressureTest: {e}"),
        }
    }
}

impl std::error::Error for ValidationErrors {}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Parse(e) => Some(e),
            LoadError::Invalid(e) => Some(e),
        }
    }
}

/// Parses a PressureTest YAML document (defaults filled in) and validates its name and spec.
pub fn load_yaml(text: &str) -> Result<PressureTest, LoadError> {
    let pt: PressureTest = serde_yaml::from_str(text).map_err(LoadError::Parse)?;
    let mut errors = validate(&pt.spec).err().map(|e| e.0).unwrap_or_default();
    if let Some(name) = &pt.metadata.name {
        errors.extend(validate_name(name).err());
    }
    if !errors.is_empty() {
        return Err(LoadError::Invalid(ValidationErrors(errors)));
    }
    Ok(pt)
}

/// Longest PressureTest name: child names append `-client-<tenant>` and must stay DNS labels.
pub const MAX_NAME_LEN: usize = 24;

/// Checks a PressureTest's name as the CRD's CEL rule and the API server do.
pub fn validate_name(name: &str) -> Result<(), ValidationError> {
    let problem = if name.is_empty() || name.len() > MAX_NAME_LEN {
        Problem::BadLength {
            min: 1,
            max: MAX_NAME_LEN,
            got: name.len(),
        }
    } else if !is_dns_label(name) {
        Problem::BadFormat {
            expected: "a DNS label (a-z, 0-9, '-')",
            got: name.to_string(),
        }
    } else {
        return Ok(());
    };
    Err(ValidationError {
        path: "metadata.name".into(),
        problem,
    })
}

/// Collects the errors of one spec.
struct Checker(Vec<ValidationError>);

impl Checker {
    fn push(&mut self, path: impl Into<String>, problem: Problem) {
        self.0.push(ValidationError {
            path: path.into(),
            problem,
        });
    }

    fn range(&mut self, path: &str, got: i32, min: i64, max: i64) {
        let got = i64::from(got);
        if got < min || got > max {
            self.push(path, Problem::OutOfRange { min, max, got });
        }
    }

    fn length(&mut self, path: &str, got: usize, min: usize, max: usize) {
        if got < min || got > max {
            self.push(path, Problem::BadLength { min, max, got });
        }
    }

    fn format(&mut self, path: &str, value: &str, ok: bool, expected: &'static str) {
        if !ok {
            self.push(
                path,
                Problem::BadFormat {
                    expected,
                    got: value.to_string(),
                },
            );
        }
    }
}

/// Checks a spec against the rules of the CRD schema; returns every problem found.
pub fn validate(spec: &PressureTestSpec) -> Result<(), ValidationErrors> {
    let mut c = Checker(Vec::new());
    c.length("spec.tenants", spec.tenants.len(), 1, 32);
    let mut seen = BTreeSet::new();
    for (i, tenant) in spec.tenants.iter().enumerate() {
        let path = format!("spec.tenants[{i}]");
        if !seen.insert(tenant.name.as_str()) {
            c.push(
                format!("{path}.name"),
                Problem::Duplicate(tenant.name.clone()),
            );
        }
        check_tenant(&mut c, &path, tenant);
    }
    c.range("spec.durationSeconds", spec.duration_seconds, 10, 86_400);
    c.range("spec.warmupSeconds", spec.warmup_seconds, 0, 3600);
    c.range("spec.startDelaySeconds", spec.start_delay_seconds, 5, 3600);
    c.range("spec.seed", spec.seed, 0, i64::from(i32::MAX));
    c.length("spec.stages", spec.stages.len(), 0, 20);
    for (i, st) in spec.stages.iter().enumerate() {
        let path = format!("spec.stages[{i}]");
        c.range(
            &format!("{path}.durationSeconds"),
            st.duration_seconds,
            1,
            86_400,
        );
        c.range(&format!("{path}.ratePercent"), st.rate_percent, 0, 1000);
    }
    c.length("spec.clientImage", spec.client_image.len(), 1, 253);
    if let Some(ttl) = spec.ttl_seconds_after_finished {
        c.range("spec.ttlSecondsAfterFinished", ttl, 0, 31_536_000);
    }
    check_sut(&mut c, spec);
    check_run(&mut c, spec);
    if c.0.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(c.0))
    }
}

fn check_tenant(c: &mut Checker, path: &str, t: &TenantSpec) {
    c.length(&format!("{path}.name"), t.name.len(), 1, 30);
    c.format(
        &format!("{path}.name"),
        &t.name,
        is_dns_label(&t.name),
        "a DNS label (a-z, 0-9, '-')",
    );
    c.range(&format!("{path}.clients"), t.clients, 1, 50);
    let r = t.rates.clone().unwrap_or_default();
    let rates = [
        ("messagesPerSync", r.messages_per_sync),
        ("cacheHitRatePermille", r.cache_hit_rate_permille),
        ("dndProbabilityPermille", r.dnd_probability_permille),
        (
            "largeAttachmentRatePermille",
            r.large_attachment_rate_permille,
        ),
    ];
    for (name, value) in rates {
        if let Some(v) = value {
            c.range(&format!("{path}.rates.{name}"), v, 0, 1000);
        }
    }
    if t.profile.is_none() && rates.iter().any(|(_, v)| v.is_none()) {
        c.push(path, Problem::Rule("set a profile, or all four rates"));
    }
    check_resources(c, &format!("{path}.resources"), t.resources.as_ref());
    if let Some(p) = &t.placement {
        check_placement(c, &format!("{path}.placement"), p);
    }
}

/// The schema's limits on a placement and the CEL rule on reserved pod label keys.
fn check_placement(c: &mut Checker, path: &str, p: &PlacementSpec) {
    for (name, map) in [
        ("nodeSelector", &p.node_selector),
        ("podLabels", &p.pod_labels),
        ("podAnnotations", &p.pod_annotations),
    ] {
        if let Some(m) = map {
            c.length(&format!("{path}.{name}"), m.len(), 0, 32);
        }
    }
    if let Some(t) = &p.tolerations {
        c.length(&format!("{path}.tolerations"), t.len(), 0, 32);
    }
    if let Some(s) = &p.image_pull_secrets {
        c.length(&format!("{path}.imagePullSecrets"), s.len(), 0, 16);
    }
    if let Some(n) = &p.priority_class_name {
        c.length(&format!("{path}.priorityClassName"), n.len(), 1, 253);
    }
    if p.reserved_label().is_some() {
        c.push(
            format!("{path}.podLabels"),
            Problem::Rule(
                "podLabels may not use the keys app.kubernetes.io/* and pressure.mailproxy.dev/*: the operator selects its pods by them",
            ),
        );
    }
}

fn check_sut(c: &mut Checker, spec: &PressureTestSpec) {
    let p = &spec.proxy;
    c.length("spec.proxy.image", p.image.len(), 1, 253);
    c.range("spec.proxy.replicas", p.replicas, 1, 50);
    c.range("spec.proxy.hpa.minReplicas", p.hpa.min_replicas, 1, 50);
    c.range("spec.proxy.hpa.maxReplicas", p.hpa.max_replicas, 1, 50);
    c.range(
        "spec.proxy.hpa.targetCpuPercent",
        p.hpa.target_cpu_percent,
        1,
        100,
    );
    if p.hpa.min_replicas > p.hpa.max_replicas {
        c.push(
            "spec.proxy.hpa",
            Problem::Rule("hpa.minReplicas must not exceed hpa.maxReplicas"),
        );
    }
    let t = &p.tuning;
    c.range(
        "spec.proxy.tuning.sendLoopIntervalMs",
        t.send_loop_interval_ms,
        50,
        60_000,
    );
    c.range(
        "spec.proxy.tuning.batchSizePerAccount",
        t.batch_size_per_account,
        1,
        10_000,
    );
    c.range("spec.proxy.tuning.poolSize", t.pool_size, 1, 1000);
    c.range(
        "spec.proxy.tuning.syncIntervalSeconds",
        t.sync_interval_seconds,
        1,
        3600,
    );
    check_resources(c, "spec.proxy.resources", p.resources.as_ref());
    check_settings(c, spec);
    let pg = &spec.postgres;
    c.length("spec.postgres.image", pg.image.len(), 1, 253);
    c.format(
        "spec.postgres.storage",
        &pg.storage,
        is_storage(&pg.storage),
        "a size such as 1Gi",
    );
    let pt = &pg.tuning;
    c.range(
        "spec.postgres.tuning.maxConnections",
        pt.max_connections,
        10,
        10_000,
    );
    for (name, v) in [
        ("sharedBuffersMb", pt.shared_buffers_mb),
        ("workMemMb", pt.work_mem_mb),
        ("maintenanceWorkMemMb", pt.maintenance_work_mem_mb),
        ("effectiveCacheSizeMb", pt.effective_cache_size_mb),
    ] {
        c.range(&format!("spec.postgres.tuning.{name}"), v, 1, 1_048_576);
    }
    check_resources(c, "spec.postgres.resources", pg.resources.as_ref());
    if let Some(image) = &spec.sink.image {
        c.length("spec.sink.image", image.len(), 1, 253);
    }
    check_resources(c, "spec.sink.resources", spec.sink.resources.as_ref());
    c.length("spec.prometheus.image", spec.prometheus.image.len(), 1, 253);
    c.length("spec.grafana.image", spec.grafana.image.len(), 1, 253);
    check_placement(c, "spec.placement", &spec.placement);
    for (name, p) in spec.component_placements() {
        if let Some(p) = p {
            check_placement(c, &format!("spec.{name}.placement"), p);
        }
    }
    if spec.grafana.enabled && !spec.prometheus.enabled {
        c.push(
            "spec.grafana.enabled",
            Problem::Rule("grafana.enabled needs prometheus.enabled"),
        );
    }
}

/// `spec.proxy.settings`: each set value in its table's range, the retry delays, and the two
/// CEL rules that read settings (memory budgets within the limit, database connections).
fn check_settings(c: &mut Checker, spec: &PressureTestSpec) {
    let p = &spec.proxy;
    for (group, fields) in p.settings.groups() {
        for s in fields {
            let Some(got) = s.value else { continue };
            if got < s.min || got > s.max {
                let path = format!("spec.proxy.settings.{group}.{}", s.field);
                let (min, max) = (s.min, s.max);
                c.push(path, Problem::OutOfRange { min, max, got });
            }
        }
    }
    let delays = p.settings.dispatch.as_ref();
    if let Some(delays) = delays.and_then(|d| d.retry_delays_seconds.as_ref()) {
        let path = "spec.proxy.settings.dispatch.retryDelaysSeconds";
        c.length(path, delays.len(), 1, 10);
        if delays.iter().any(|d| !(0..=86_400).contains(d)) {
            c.push(path, Problem::Rule(RETRY_DELAYS_MESSAGE));
        }
    }
    if !p.memory_plan().fits() {
        c.push("spec.proxy", Problem::Rule(PROXY_MEMORY_MESSAGE));
    }
    let wanted = p.db_connections() * i64::from(p.max_replicas()) + POSTGRES_SPARE_CONNECTIONS;
    if wanted > i64::from(spec.postgres.tuning.max_connections) {
        c.push("spec", Problem::Rule(DB_CONNECTIONS_MESSAGE));
    }
}

fn check_run(c: &mut Checker, spec: &PressureTestSpec) {
    let t = &spec.thresholds;
    c.range(
        "spec.thresholds.maxErrorRatePermille",
        t.max_error_rate_permille,
        0,
        1000,
    );
    c.range(
        "spec.thresholds.maxP99LatencyMs",
        t.max_p99_latency_ms,
        1,
        86_400_000,
    );
    c.range(
        "spec.thresholds.minThroughputPerSecond",
        t.min_throughput_per_second,
        0,
        1_000_000,
    );
    c.range(
        "spec.thresholds.minDeliveredRatioPermille",
        t.min_delivered_ratio_permille,
        0,
        1000,
    );
    for (name, v) in [
        ("maxLostMessages", t.max_lost_messages),
        ("maxDuplicates", t.max_duplicates),
        ("maxAttachmentMismatches", t.max_attachment_mismatches),
    ] {
        c.range(&format!("spec.thresholds.{name}"), v, 0, 1_000_000_000);
    }
    c.length("spec.thresholds.disabled", t.disabled.len(), 0, 7);
    for (i, name) in t.disabled.iter().enumerate() {
        if t.disabled[..i].contains(name) {
            c.push(
                format!("spec.thresholds.disabled[{i}]"),
                Problem::Duplicate(name.as_str().into()),
            );
        }
    }
    let o = &spec.timeouts;
    c.range(
        "spec.timeouts.provisioningSeconds",
        o.provisioning_seconds,
        10,
        86_400,
    );
    c.range("spec.timeouts.setupSeconds", o.setup_seconds, 10, 86_400);
    c.range("spec.timeouts.drainSeconds", o.drain_seconds, 0, 86_400);
    c.range(
        "spec.timeouts.podStartGraceSeconds",
        o.pod_start_grace_seconds,
        0,
        3600,
    );
}

fn check_resources(c: &mut Checker, path: &str, r: Option<&ResourcesSpec>) {
    let Some(r) = r else { return };
    for (name, v) in [("cpuRequest", &r.cpu_request), ("cpuLimit", &r.cpu_limit)] {
        if let Some(v) = v {
            c.format(
                &format!("{path}.{name}"),
                v,
                is_cpu(v),
                "a CPU quantity such as 250m or 1",
            );
        }
    }
    for (name, v) in [
        ("memoryRequest", &r.memory_request),
        ("memoryLimit", &r.memory_limit),
    ] {
        if let Some(v) = v {
            c.format(
                &format!("{path}.{name}"),
                v,
                is_memory(v),
                "a memory quantity such as 256Mi",
            );
        }
    }
}

/// `^[a-z]([-a-z0-9]*[a-z0-9])?$`
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-';
    matches!(b.first(), Some(c) if c.is_ascii_lowercase())
        && b.iter().all(inner)
        && b.last().is_some_and(|c| *c != b'-')
}

/// Bytes of a memory quantity of the form the schema accepts (`512Mi`, `1G`, `1048576`); `None`
/// for anything else or on overflow.
pub fn memory_bytes(s: &str) -> Option<u64> {
    if !is_memory(s) {
        return None;
    }
    let (body, unit) = MEMORY_UNITS
        .iter()
        .find_map(|(x, u)| s.strip_suffix(x).map(|b| (b, *u)))
        .unwrap_or((s, 1));
    body.parse::<u64>().ok()?.checked_mul(unit)
}

/// `^[0-9]+(\.[0-9]+)?m?$`, at most 20 characters.
fn is_cpu(s: &str) -> bool {
    let body = s.strip_suffix('m').unwrap_or(s);
    let mut parts = body.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac_ok = parts.next().is_none_or(all_digits);
    s.len() <= 20 && all_digits(whole) && frac_ok
}

/// The suffixes of a memory quantity and their bytes (binary ones first: `Mi` before `M`).
const MEMORY_UNITS: [(&str, u64); 8] = [
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
];

/// `^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$`, at most 20 characters.
fn is_memory(s: &str) -> bool {
    let body = MEMORY_UNITS
        .iter()
        .find_map(|(x, _)| s.strip_suffix(x))
        .unwrap_or(s);
    s.len() <= 20 && all_digits(body)
}

/// `^[0-9]+(Ki|Mi|Gi|Ti)$`, at most 20 characters.
fn is_storage(s: &str) -> bool {
    let body = ["Ki", "Mi", "Gi", "Ti"]
        .iter()
        .find_map(|x| s.strip_suffix(x));
    s.len() <= 20 && body.is_some_and(all_digits)
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
#[path = "validate/tests.rs"]
mod tests;
