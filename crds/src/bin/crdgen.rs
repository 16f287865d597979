//! Prints the `PressureTest` CustomResourceDefinition as YAML on stdout.
//!
//! Regenerate the committed copy with
//! `cargo run -p pressure-crds --bin crdgen > charts/pressure-crds/crds/pressuretests.yaml`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    print!("{}", pressure_crds::crd_yaml()?);
    Ok(())
}
