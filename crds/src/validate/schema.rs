//! The CRD's `openAPIV3Schema` as JSON Schema, and its errors in [`super`]'s terms.
//!
//! OpenAPI v3 as Kubernetes writes it is close to JSON Schema draft 4; [`to_json_schema`] turns
//! the differences into JSON Schema: `nullable: true` becomes a `null` type (and a `null` in an
//! `enum`), `format: int32` the 32-bit range, `x-kubernetes-list-type: set` `uniqueItems`, and
//! objects with `properties` refuse other fields (as `kubectl`'s strict field validation does,
//! unless `x-kubernetes-preserve-unknown-fields`); the other `x-kubernetes-*` keywords (the CEL
//! rules, list map keys) are dropped: [`super::rules`] checks what they say.

use std::sync::LazyLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use serde_json::Value;

use super::{Problem, ValidationError};

/// The CRD's `openAPIV3Schema` in JSON Schema form, compiled once.
pub(super) struct CrdSchema {
    /// The converted schema: limits are read from it to word the errors.
    schema: Value,
    validator: jsonschema::Validator,
}

pub(super) static SCHEMA: LazyLock<Result<CrdSchema, String>> = LazyLock::new(CrdSchema::build);

impl CrdSchema {
    fn build() -> Result<CrdSchema, String> {
        let crd = crate::crd();
        let root = crd
            .spec
            .versions
            .iter()
            .filter(|v| v.name == crate::VERSION)
            .find_map(|v| v.schema.as_ref()?.open_api_v3_schema.as_ref())
            .ok_or_else(|| format!("the CRD has no openAPIV3Schema for {}", crate::VERSION))?;
        let mut schema = serde_json::to_value(root).map_err(|e| e.to_string())?;
        to_json_schema(&mut schema);
        // `metadata` lists only `name`: the rest of ObjectMeta is not the CRD's to check.
        if let Some(meta) = schema.pointer_mut("/properties/metadata") {
            strip_key(meta, "additionalProperties");
        }
        // The type fields every object has, which the API server matches to this CRD.
        let api_version = format!("{}/{}", crd.spec.group, crate::VERSION);
        if let Some(Value::Object(props)) = schema.get_mut("properties") {
            for (field, value) in [("apiVersion", api_version), ("kind", crd.spec.names.kind)] {
                let field_schema = serde_json::json!({"type": "string", "enum": [value]});
                props.insert(field.into(), field_schema);
            }
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(false)
            .build(&schema)
            .map_err(|e| e.to_string())?;
        Ok(CrdSchema { schema, validator })
    }
}

fn strip_key(v: &mut Value, key: &str) {
    if let Some(map) = v.as_object_mut() {
        map.remove(key);
    }
}

/// Rewrites one OpenAPI v3 schema node (and the schemas inside it) as JSON Schema.
fn to_json_schema(node: &mut Value) {
    let Some(map) = node.as_object_mut() else {
        return;
    };
    let flag = |key: &str| map.get(key).and_then(Value::as_bool).unwrap_or(false);
    let text = |key: &str| map.get(key).and_then(Value::as_str);
    let preserve_unknown = flag("x-kubernetes-preserve-unknown-fields");
    let nullable = flag("nullable");
    let set = text("x-kubernetes-list-type") == Some("set");
    let int32 = text("type") == Some("integer") && text("format") == Some("int32");
    if int32 {
        map.entry("minimum").or_insert(i32::MIN.into());
        map.entry("maximum").or_insert(i32::MAX.into());
    }
    if nullable {
        if let Some(Value::String(t)) = map.get("type") {
            let t = t.clone();
            map.insert("type".into(), serde_json::json!([t, "null"]));
        }
        if let Some(Value::Array(options)) = map.get_mut("enum") {
            options.push(Value::Null);
        }
    }
    if set {
        map.insert("uniqueItems".into(), true.into());
    }
    if map.contains_key("properties")
        && !map.contains_key("additionalProperties")
        && !preserve_unknown
    {
        map.insert("additionalProperties".into(), false.into());
    }
    map.retain(|k, _| k != "nullable" && !k.starts_with("x-kubernetes-"));
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        props.values_mut().for_each(to_json_schema);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child @ Value::Object(_)) = map.get_mut(key) {
            to_json_schema(child);
        }
    }
}

/// The schema's errors for a document, each with its dotted path and a readable problem.
pub(super) fn errors(document: &Value) -> Vec<ValidationError> {
    let crd = match &*SCHEMA {
        Ok(crd) => crd,
        Err(e) => {
            return vec![ValidationError {
                path: String::new(),
                problem: Problem::Schema(format!(
                    "the CRD schema built into this program does not compile ({e}); this is a bug"
                )),
            }];
        }
    };
    let mut out = Vec::new();
    for error in crd.validator.iter_errors(document) {
        let path = dotted(document, error.instance_path().segments());
        let keyword = error.schema_path().as_str();
        let node = keyword
            .rsplit_once('/')
            .and_then(|(parent, _)| crd.schema.pointer(parent))
            .unwrap_or(&Value::Null);
        out.extend(describe(&error, node, path));
    }
    out
}

/// One schema error in the crate's terms: [`Problem`] variants where they fit, else words.
fn describe(
    error: &jsonschema::ValidationError<'_>,
    node: &Value,
    path: String,
) -> Vec<ValidationError> {
    let (kind, instance): (_, &Value) = (error.kind(), error.instance());
    let one = |problem| {
        vec![ValidationError {
            path: path.clone(),
            problem,
        }]
    };
    let limit = |key: &str| node.get(key).and_then(as_integer);
    match kind {
        ValidationErrorKind::Minimum { limit: bound }
        | ValidationErrorKind::Maximum { limit: bound } => {
            match (limit("minimum"), limit("maximum"), as_integer(instance)) {
                (Some(min), Some(max), Some(got)) => one(Problem::OutOfRange { min, max, got }),
                _ => {
                    let side = if matches!(kind, ValidationErrorKind::Minimum { .. }) {
                        "at least"
                    } else {
                        "at most"
                    };
                    one(Problem::Schema(format!(
                        "must be {side} {bound}, got {}",
                        shown(instance)
                    )))
                }
            }
        }
        ValidationErrorKind::MinLength { .. } | ValidationErrorKind::MaxLength { .. } => {
            let got = instance.as_str().map_or(0, |s| s.chars().count());
            one(length(node, ("minLength", "maxLength"), got, "characters"))
        }
        ValidationErrorKind::MinItems { .. } | ValidationErrorKind::MaxItems { .. } => {
            let got = instance.as_array().map_or(0, Vec::len);
            one(length(node, ("minItems", "maxItems"), got, "entries"))
        }
        ValidationErrorKind::MinProperties { .. } | ValidationErrorKind::MaxProperties { .. } => {
            let got = instance.as_object().map_or(0, serde_json::Map::len);
            one(length(
                node,
                ("minProperties", "maxProperties"),
                got,
                "keys",
            ))
        }
        ValidationErrorKind::Pattern { pattern } => one(Problem::BadFormat {
            expected: format!("of the form {pattern}"),
            got: instance
                .as_str()
                .map_or_else(|| shown(instance), str::to_string),
        }),
        ValidationErrorKind::Enum { options } => {
            let list: Vec<String> = options
                .as_array()
                .into_iter()
                .flatten()
                .filter(|o| !o.is_null())
                .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_string))
                .collect();
            one(Problem::Schema(format!(
                "must be one of {}, got {}",
                list.join(", "),
                shown(instance)
            )))
        }
        ValidationErrorKind::Type { .. } => {
            let wanted = match node.get("type") {
                Some(Value::Array(types)) => types.first().and_then(Value::as_str),
                Some(t) => t.as_str(),
                None => None,
            };
            let wanted = match wanted.unwrap_or("") {
                "integer" => "a whole number",
                "number" => "a number",
                "string" => "a string",
                "boolean" => "true or false",
                "array" => "a list",
                "object" => "a mapping",
                other => other,
            };
            one(Problem::Schema(format!(
                "must be {wanted}, got {}",
                shown(instance)
            )))
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            vec![ValidationError {
                path: child(&path, name),
                problem: Problem::Schema("is required".into()),
            }]
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known: Vec<&str> = node
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|p| p.keys().map(String::as_str))
                .collect();
            unexpected
                .iter()
                .map(|name| ValidationError {
                    path: child(&path, name),
                    problem: Problem::Schema(match closest(name, &known) {
                        Some(near) => format!("unknown field; did you mean {near}?"),
                        None => format!("unknown field; the fields here are {}", known.join(", ")),
                    }),
                })
                .collect()
        }
        ValidationErrorKind::UniqueItems => {
            let items = instance.as_array().map(Vec::as_slice).unwrap_or_default();
            let first = (1..items.len()).find(|&i| items[..i].contains(&items[i]));
            match first {
                Some(i) => vec![ValidationError {
                    path: format!("{path}[{i}]"),
                    problem: Problem::Duplicate(
                        items[i]
                            .as_str()
                            .map_or_else(|| items[i].to_string(), str::to_string),
                    ),
                }],
                None => one(Problem::Schema("entries must be unique".into())),
            }
        }
        _ => one(Problem::Schema(error.to_string())),
    }
}

/// The known field sharing the longest start with `name` (case aside), when that start is at
/// least half of `name` and three letters: the likely intended field of a typo.
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let shared = |k: &str| {
        let pairs = name.chars().zip(k.chars());
        pairs.take_while(|(a, b)| a.eq_ignore_ascii_case(b)).count()
    };
    let (best, len) = known
        .iter()
        .map(|k| (*k, shared(k)))
        .max_by_key(|(_, n)| *n)?;
    (len >= 3 && 2 * len >= name.chars().count()).then_some(best)
}

/// A length problem with both limits when the schema has them (the minimum defaults to 0).
fn length(node: &Value, (min_key, max_key): (&str, &str), got: usize, unit: &str) -> Problem {
    let get = |key| {
        node.get(key)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
    };
    let min = get(min_key).unwrap_or(0);
    match get(max_key) {
        Some(max) => Problem::BadLength { min, max, got },
        None => Problem::Schema(format!("must have at least {min} {unit}, got {got}")),
    }
}

/// An integer, also when written as a float with no fraction (`minimum: 1.0`).
fn as_integer(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        let f = v.as_f64()?;
        // Whole and within i64 (2^63 is exactly representable; i64::MAX is not).
        (f.fract() == 0.0 && f >= -(2f64.powi(63)) && f < 2f64.powi(63)).then_some(f as i64)
    })
}

/// A value as the user wrote it, shortened.
fn shown(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() <= 60 {
        text
    } else {
        format!("{}…", text.chars().take(57).collect::<String>())
    }
}

/// `spec.tenants[1].clients` from the pointer `/spec/tenants/1/clients`: list indexes in
/// brackets (read off the document: a map key may be digits), other keys dotted, or quoted in
/// brackets when they hold more than letters, digits, `-` and `_` (label keys).
pub(super) fn dotted<'a>(
    document: &Value,
    segments: impl Iterator<Item = LocationSegment<'a>>,
) -> String {
    let mut path = String::new();
    let mut at = Some(document);
    for segment in segments {
        let key = match &segment {
            LocationSegment::Property(p) => p.to_string(),
            LocationSegment::Index(i) => i.to_string(),
        };
        match at {
            Some(Value::Array(items)) => {
                path.push_str(&format!("[{key}]"));
                at = key.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            _ => {
                path = child(&path, &key);
                at = at.and_then(|v| v.get(&key));
            }
        }
    }
    path
}

/// `parent.key`, or `parent["key"]` for a key that is not a plain name.
pub(super) fn child(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}
