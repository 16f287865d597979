//! The committed CRD YAML must equal what `crdgen` prints for the current Rust types.

mod common;

use common::manifest_dir;

#[test]
fn committed_crd_matches_the_rust_types() {
    let path = manifest_dir().join("../charts/pressure-crds/crds/pressuretests.yaml");
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
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
