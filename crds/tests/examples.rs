//! Every example under `deploy/examples/` parses and passes [`pressure_crds::validate`].

mod common;

use common::manifest_dir;

#[test]
fn examples_parse_and_validate() {
    let dir = manifest_dir().join("../deploy/examples");
    let mut seen = 0;
    for name in [
        "seed-four-tenants.yaml",
        "smoke.yaml",
        "documents-heavy.yaml",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).expect("example exists");
        let pt =
            pressure_crds::validate::load_yaml(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!pt.spec.tenants.is_empty(), "{name}");
        seen += 1;
    }
    assert_eq!(seen, 3);
}

#[test]
fn smoke_is_short() {
    let dir = manifest_dir().join("../deploy/examples");
    let text = std::fs::read_to_string(dir.join("smoke.yaml")).expect("smoke exists");
    let pt = pressure_crds::validate::load_yaml(&text).expect("valid");
    assert_eq!(pt.spec.duration_seconds, 60);
}
