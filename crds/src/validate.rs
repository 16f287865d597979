//! [`load_yaml`] and [`validate`]: a PressureTest read from a file outside Kubernetes is held to
//! the rules the API server applies, and every invalid field is reported with its path
//! (`spec.tenants[1].clients`) and what to fix.
//!
//! The structural rules (types, ranges, lengths, patterns, enums, required and unknown fields)
//! are not written here: the document, as written and before serde's defaults, is checked
//! against the CRD's own `openAPIV3Schema` ([`crate::crd`], what `crdgen` prints) with the
//! `jsonschema` crate; `schema` turns the OpenAPI dialect into JSON Schema once and words the
//! errors.
//!
//! What the schema says in a form JSON Schema cannot check stays in Rust, in [`rules`]: the CEL
//! rules (`x-kubernetes-validations`; there is no Rust CEL evaluator with Kubernetes' `quantity()`
//! library, so each is written again next to its message, and tests check that the schema's rules
//! and these are the same set with the same literals) and unique tenant names (the list's
//! `x-kubernetes-list-map-keys`); and [`validate_name`], which the API server checks outside the
//! schema.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::RangeInclusive;

#[cfg(feature = "validation")]
use serde_json::Value;

use crate::spec::DB_CONNECTIONS_MESSAGE;
#[cfg(feature = "validation")]
use crate::spec::PressureTest;
use crate::spec::PressureTestSpec;
use crate::spec::placement::PlacementSpec;
use crate::spec::settings::RETRY_DELAYS_MESSAGE;
use crate::spec::sut::{POSTGRES_SPARE_CONNECTIONS, PROXY_MEMORY_MESSAGE};

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
    /// A string, list or map with the wrong length.
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
        /// The expected form, in words or as the schema's pattern.
        expected: String,
        /// The value found.
        got: String,
    },
    /// Two list entries share a key.
    Duplicate(String),
    /// A rule across fields does not hold; the text says how to fix it.
    Rule(&'static str),
    /// Any other schema violation (type, enum, required or unknown field), in words.
    Schema(String),
}

/// One invalid field: a path such as `spec.tenants[1].clients` and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Dotted path of the field, from the document's root (`spec…`, `metadata.name`).
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
    /// Not YAML, or not of the PressureTest shape in a way the schema does not name a field for.
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
            Problem::Schema(text) => f.write_str(text),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{}: {}", self.path, self.problem)
        }
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

/// Parses a PressureTest YAML document, checks it as written against the CRD schema, fills in
/// the defaults and checks the rules the schema cannot express ([`rules`], [`validate_name`]).
/// Every invalid field is reported, except that the rules need the spec read into Rust: when a
/// schema error (a wrong type or enum value) stops that, only the schema errors are reported, as
/// the API server skips the CEL rules then. A document the schema accepts but that still does
/// not deserialize is a [`LoadError::Parse`].
#[cfg(feature = "validation")]
pub fn load_yaml(text: &str) -> Result<PressureTest, LoadError> {
    let document: Value = serde_yaml::from_str(text).map_err(LoadError::Parse)?;
    let mut errors = if document.is_object() {
        schema::errors(&document)
    } else {
        Vec::new()
    };
    let pt: PressureTest = match serde_yaml::from_str(text) {
        Ok(pt) => pt,
        Err(e) if errors.is_empty() => return Err(LoadError::Parse(e)),
        Err(_) => return Err(LoadError::Invalid(sorted(errors))),
    };
    errors.extend(rules(&pt.spec));
    if let Some(name) = &pt.metadata.name
        && !errors.iter().any(|e| e.path == NAME_PATH)
    {
        errors.extend(validate_name(name).err());
    }
    if errors.is_empty() {
        Ok(pt)
    } else {
        Err(LoadError::Invalid(sorted(errors)))
    }
}

/// Checks a spec built in Rust (defaults included) as [`load_yaml`] checks a file: its JSON form
/// against the CRD schema, then [`rules`]; returns every problem found.
#[cfg(feature = "validation")]
pub fn validate(spec: &PressureTestSpec) -> Result<(), ValidationErrors> {
    let mut errors = match serde_json::to_value(spec) {
        Ok(spec) => schema::errors(&serde_json::json!({ "spec": spec })),
        Err(e) => vec![ValidationError {
            path: "spec".into(),
            problem: Problem::Schema(format!("cannot be written as JSON: {e}")),
        }],
    };
    errors.extend(rules(spec));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(sorted(errors))
    }
}

/// Longest PressureTest name: child names append `-client-<tenant>` and must stay DNS labels.
pub const MAX_NAME_LEN: usize = 24;

/// Path of the object's name.
const NAME_PATH: &str = "metadata.name";

/// Checks a PressureTest's name as the API server does (a DNS label, at most [`MAX_NAME_LEN`]).
pub fn validate_name(name: &str) -> Result<(), ValidationError> {
    let problem = if name.is_empty() || name.len() > MAX_NAME_LEN {
        Problem::BadLength {
            min: 1,
            max: MAX_NAME_LEN,
            got: name.len(),
        }
    } else if !is_dns_label(name) {
        Problem::BadFormat {
            expected: "a DNS label (a-z, 0-9, '-')".into(),
            got: name.to_string(),
        }
    } else {
        return Ok(());
    };
    Err(ValidationError {
        path: NAME_PATH.into(),
        problem,
    })
}

// ---------------------------------------------------------------------------------------------
// The rules the schema cannot express.

/// Messages of the CRD's CEL rules (`x-kubernetes-validations`) that [`rules`] checks. The
/// schema's other rules compare with `oldSelf` (an update to a running test) and cannot apply to
/// a file. A test checks that this list and the schema's rules are the same.
pub const CEL_MESSAGES: [&str; 8] = [
    PROFILE_OR_RATES,
    RESERVED_LABELS,
    HPA_ORDER,
    RETRY_DELAYS_MESSAGE,
    PROXY_MEMORY_MESSAGE,
    GRAFANA_NEEDS_PROMETHEUS,
    DB_CONNECTIONS_MESSAGE,
    BASELINE_ONE_OF,
];

const PROFILE_OR_RATES: &str = "set a profile, or all four rates";
const RESERVED_LABELS: &str = "podLabels may not use the keys app.kubernetes.io/* and pressure.mailproxy.dev/*: the operator selects its pods by them";
const HPA_ORDER: &str = "hpa.minReplicas must not exceed hpa.maxReplicas";
const GRAFANA_NEEDS_PROMETHEUS: &str = "grafana.enabled needs prometheus.enabled";
const BASELINE_ONE_OF: &str =
    "name the baseline by exactly one of report (a report ConfigMap) and pressureTest";

/// Each retry delay's range, as the CEL rule on `retryDelaysSeconds` spells it.
const RETRY_DELAY_SECONDS: RangeInclusive<i64> = 0..=86_400;

/// The CEL rules of the CRD and the uniqueness of tenant names, on a spec with its defaults (as
/// the API server runs CEL after defaulting). Kubernetes evaluates the CEL rules with its own
/// libraries (`quantity()` among them), which no Rust crate provides: each rule is written
/// again here, under its schema message ([`CEL_MESSAGES`]), and the tests hold the two equal.
pub fn rules(spec: &PressureTestSpec) -> Vec<ValidationError> {
    let mut out = Vec::new();
    let mut rule = |path: String, message: &'static str| {
        out.push(ValidationError {
            path,
            problem: Problem::Rule(message),
        });
    };
    for (i, t) in spec.tenants.iter().enumerate() {
        let rates = t.rates.clone().unwrap_or_default();
        let all_rates = rates.messages_per_sync.is_some()
            && rates.cache_hit_rate_permille.is_some()
            && rates.dnd_probability_permille.is_some()
            && rates.large_attachment_rate_permille.is_some();
        if t.profile.is_none() && !all_rates {
            rule(format!("spec.tenants[{i}]"), PROFILE_OR_RATES);
        }
    }
    let mut placements: Vec<(String, &PlacementSpec)> =
        vec![("spec.placement".into(), &spec.placement)];
    for (name, p) in spec.component_placements() {
        placements.extend(p.as_ref().map(|p| (format!("spec.{name}.placement"), p)));
    }
    for (i, t) in spec.tenants.iter().enumerate() {
        let path = format!("spec.tenants[{i}].placement");
        placements.extend(t.placement.as_ref().map(|p| (path, p)));
    }
    for (path, p) in placements {
        if p.reserved_label().is_some() {
            rule(format!("{path}.podLabels"), RESERVED_LABELS);
        }
    }
    let proxy = &spec.proxy;
    if proxy.hpa.min_replicas > proxy.hpa.max_replicas {
        rule("spec.proxy.hpa".into(), HPA_ORDER);
    }
    let dispatch = proxy.settings.dispatch.as_ref();
    if let Some(delays) = dispatch.and_then(|d| d.retry_delays_seconds.as_ref())
        && delays.iter().any(|d| !RETRY_DELAY_SECONDS.contains(d))
    {
        let path = "spec.proxy.settings.dispatch.retryDelaysSeconds";
        rule(path.into(), RETRY_DELAYS_MESSAGE);
    }
    if !proxy.memory_plan().fits() {
        rule("spec.proxy".into(), PROXY_MEMORY_MESSAGE);
    }
    let wanted =
        proxy.db_connections() * i64::from(proxy.max_replicas()) + POSTGRES_SPARE_CONNECTIONS;
    if wanted > i64::from(spec.postgres.tuning.max_connections) {
        rule("spec".into(), DB_CONNECTIONS_MESSAGE);
    }
    if spec.grafana.enabled && !spec.prometheus.enabled {
        rule("spec.grafana.enabled".into(), GRAFANA_NEEDS_PROMETHEUS);
    }
    if let Some(b) = &spec.baseline
        && b.report.is_some() == b.pressure_test.is_some()
    {
        rule("spec.baseline".into(), BASELINE_ONE_OF);
    }
    let mut seen = BTreeSet::new();
    for (i, t) in spec.tenants.iter().enumerate() {
        if !seen.insert(t.name.as_str()) {
            out.push(ValidationError {
                path: format!("spec.tenants[{i}].name"),
                problem: Problem::Duplicate(t.name.clone()),
            });
        }
    }
    out
}

/// The errors in document order: by path, list indexes compared as numbers.
#[cfg(feature = "validation")]
fn sorted(mut errors: Vec<ValidationError>) -> ValidationErrors {
    let key = |path: &str| {
        let mut out = String::with_capacity(path.len() + 8);
        let mut digits = String::new();
        for c in path.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            if !digits.is_empty() {
                out.push_str(&format!("{digits:0>10}"));
                digits.clear();
            }
            out.push(c);
        }
        out.push_str(&digits);
        out
    };
    errors.sort_by_cached_key(|e| key(&e.path));
    ValidationErrors(errors)
}

// ---------------------------------------------------------------------------------------------
// Quantities, for the modules that read them.

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

/// `^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$`, at most 20 characters: the schema's memory pattern.
fn is_memory(s: &str) -> bool {
    let body = MEMORY_UNITS
        .iter()
        .find_map(|(x, _)| s.strip_suffix(x))
        .unwrap_or(s);
    s.len() <= 20 && !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(feature = "validation")]
#[path = "validate/schema.rs"]
mod schema;

#[cfg(all(test, feature = "validation"))]
#[path = "validate/tests.rs"]
mod tests;
