//! The `PressureTest` custom resource (`pressure.mailproxy.dev/v1alpha1`): the spec a user writes,
//! the status the operator reports, and [`validate()`], which checks a spec against the generated
//! CRD schema itself (plus its CEL rules, mirrored in Rust) so that the local runner
//! (`pressure run FILE`) checks a file without a cluster as the API server would.
//!
//! Layout:
//! - [`spec`]: the root `PressureTest` kind, tenants, load window, thresholds, and [`spec::sut`]
//!   (proxy, PostgreSQL, sink, observability) plus the seed's client [`profiles`];
//! - [`status`]: phase, conditions, live figures and the final summary;
//! - [`mod@validate`]: a document checked against the generated `openAPIV3Schema` (with the
//!   `jsonschema` crate) and the CEL rules, every invalid field a typed error with its path;
//! - [`drain`]: when a run has drained (every generated message has its final report), for the
//!   operator's `Analyzing` phase and the local runner's drain alike;
//! - [`verdict`]: the one verdict of a run, for the operator and the local runner alike: what each
//!   threshold measures, from which figures, and the `Succeeded` reason; [`verdict::cases`] is
//!   the table of cases both adapters' tests run;
//! - [`aggregate`]: the figures of a run folded from its parts' answers, and [`setup`]: the setup
//!   plan registering every tenant, for the operator and the local runner alike;
//! - [`report`]: the report of one run and its SVG chart, written by the local runner to a file
//!   and by the operator to a ConfigMap; [`compare`]: a run against a baseline run's report.
//!
//! The crate is Kubernetes-free at run time: kube's derive macros and `k8s-openapi`'s types only,
//! no client.
//!
//! `cargo run -p pressure-crds --bin crdgen > charts/pressure-crds/crds/pressuretests.yaml`
//! regenerates the committed CRD; a test fails when the two differ.

pub mod aggregate;
pub mod compare;
pub mod drain;
pub mod profiles;
pub mod report;
pub mod setup;
pub mod spec;
pub mod status;
pub mod validate;
pub mod verdict;

pub use compare::Comparison;
pub use profiles::{Profile, ProfileRates};
pub use spec::baseline::{BaselineSpec, ToleranceSpec};
pub use spec::placement::PlacementSpec;
pub use spec::settings::{LogFormat, ProxySettings, Setting};
pub use spec::stages::StageSpec;
pub use spec::sut::{
    GrafanaSpec, HpaSpec, LogLevel, PostgresSpec, PostgresTuning, PostgresVolume, PrometheusSpec,
    ProxySpec, ProxyTuning, ResourcesSpec, SinkKind, SinkSpec,
};
pub use spec::{
    Component, KeepPolicy, PressureTest, PressureTestSpec, RatesSpec, ReportRetention, TenantSpec,
    ThresholdName, ThresholdsSpec, TimeoutsSpec, TtlScope,
};
pub use status::{
    Condition, ConditionStatus, Figures, HISTORY_LENGTH, LatencySource, Phase, PressureTestStatus,
    RunSummary, TenantFigures, ThresholdOutcome, ThresholdResult,
};
pub use validate::ValidationError;
#[cfg(feature = "validation")]
pub use validate::validate;
pub use verdict::{Measured, Verdict, Window};

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;

/// Label every object a PressureTest creates carries, with the PressureTest's name: the operator
/// selects its children by it, `kubectl pressure bundle` collects them by it.
pub const TEST_LABEL: &str = "pressure.mailproxy.dev/test";

/// API group of the resource.
pub const GROUP: &str = "pressure.mailproxy.dev";
/// API version of the resource.
pub const VERSION: &str = "v1alpha1";

/// The CRD: the derived one, plus a `maxLength` on `metadata.name` (the one restriction a
/// structural schema may put on metadata): child names append the component and tenant, so a
/// longer name is refused, with its field path (`metadata.name: Too long`). A CEL rule could
/// explain more but cannot name the field, and never runs once the schema check fails.
pub fn crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use kube::CustomResourceExt;
    let mut crd = PressureTest::crd();
    for version in &mut crd.spec.versions {
        let schema = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut());
        if let Some(root) = schema {
            let name = JSONSchemaProps {
                type_: Some("string".into()),
                max_length: Some(validate::MAX_NAME_LEN as i64),
                ..JSONSchemaProps::default()
            };
            let metadata = JSONSchemaProps {
                type_: Some("object".into()),
                properties: Some(BTreeMap::from([("name".to_string(), name)])),
                ..JSONSchemaProps::default()
            };
            root.properties
                .get_or_insert_with(BTreeMap::new)
                .insert("metadata".into(), metadata);
            trim_placement_docs(root);
        }
    }
    crd
}

/// Drops the descriptions inside the Kubernetes types that `placement` reuses (affinity,
/// tolerations, pull secrets), keeping each field's own: with the Pod documentation copied into
/// each of the seven placements, the CRD grew from 52 KB to 448 KB, past what a client-side
/// `kubectl apply` can annotate. `kubectl explain pod.spec.affinity` has those texts.
fn trim_placement_docs(schema: &mut JSONSchemaProps) {
    let Ok(mut value) = serde_json::to_value(&*schema) else {
        return;
    };
    walk(&mut value);
    if let Ok(trimmed) = serde_json::from_value(value) {
        *schema = trimmed;
    }

    fn walk(v: &mut serde_json::Value) {
        if let Some(items) = v.get_mut("items") {
            walk(items);
        }
        let Some(props) = v.get_mut("properties").and_then(|p| p.as_object_mut()) else {
            return;
        };
        for (key, child) in props.iter_mut() {
            if key != "placement" {
                walk(child);
                continue;
            }
            let fields = child.get_mut("properties").and_then(|p| p.as_object_mut());
            for (name, field) in fields.into_iter().flatten() {
                if ["affinity", "tolerations", "imagePullSecrets"].contains(&name.as_str()) {
                    for nested in nested_schemas(field) {
                        strip(nested);
                    }
                }
            }
        }
    }

    /// The schemas directly inside `v` (its properties and its items).
    fn nested_schemas(v: &mut serde_json::Value) -> Vec<&mut serde_json::Value> {
        let mut out = Vec::new();
        if let Some(obj) = v.as_object_mut() {
            for (key, child) in obj.iter_mut() {
                match key.as_str() {
                    "properties" => out.extend(
                        child
                            .as_object_mut()
                            .into_iter()
                            .flat_map(|m| m.values_mut()),
                    ),
                    "items" => out.push(child),
                    _ => {}
                }
            }
        }
        out
    }

    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.remove("description");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(list) => list.iter_mut().for_each(strip),
            _ => {}
        }
    }
}

/// Renders the CRD as YAML, exactly as `crdgen` prints it.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    let body = serde_yaml::to_string(&crd())?;
    Ok(format!(
        "# Generated by `cargo run -p pressure-crds --bin crdgen`; do not edit.\n{body}"
    ))
}
