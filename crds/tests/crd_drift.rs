//! The committed CRD YAML must equal what `crdgen` prints for the current Rust types.

use std::path::PathBuf;

#[test]
fn committed_crd_matches_the_rust_types() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/pressure-crds/crds/pressuretests.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = pressure_crds::crd_yaml().expect("CRD renders");
    assert!(
        committed == generated,
        "{} is stale; regenerate it with:\n  cargo run -p pressure-crds --bin crdgen > charts/pressure-crds/crds/pressuretests.yaml",
        path.display()
    );
}

#[test]
fn crd_has_the_expected_shape() {
    let yaml = pressure_crds::crd_yaml().expect("CRD renders");
    for needle in [
        "name: pressuretests.pressure.mailproxy.dev",
        "- pt",
        "- pressure",
        "status: {}",
        "x-kubernetes-list-type: map",
        "self.minReplicas <= self.maxReplicas",
        "oldSelf.status.phase",
        "jsonPath: .status.conditions[?(@.type=='Succeeded')].reason",
    ] {
        assert!(yaml.contains(needle), "CRD lacks {needle:?}");
    }
}
