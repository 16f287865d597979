//! The Grafana dashboard "Mail Proxy - Pressure Test" (uid `mailproxy-pressure`). One JSON serves
//! docker compose and the operator: `deploy/observability/dashboards/mailproxy-pressure.json`,
//! embedded here at build time (its PromQL and metric names are checked against the real
//! components by `scripts/check-packaging.sh`).

use serde_json::{Value, json};

/// The shared dashboard file.
const SHARED: &str =
    include_str!("../../../deploy/observability/dashboards/mailproxy-pressure.json");

/// The dashboard JSON for the PressureTest `name`: the shared file, titled with the test's name.
pub fn dashboard(name: &str) -> Value {
    // The file is checked in and parsed by a unit test; an unparsable file yields an empty
    // dashboard rather than a panic in the controller.
    let mut v: Value = serde_json::from_str(SHARED).unwrap_or_else(|_| json!({}));
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "title".into(),
            json!(format!("Mail Proxy - Pressure Test ({name})")),
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_dashboard_parses_and_is_titled_per_test() {
        let d: Value = serde_json::from_str(SHARED).expect("the shared dashboard is valid JSON");
        assert_eq!(d["uid"], "mailproxy-pressure");
        assert!(d["panels"].as_array().is_some_and(|p| !p.is_empty()));
        assert_eq!(
            dashboard("smoke")["title"],
            "Mail Proxy - Pressure Test (smoke)"
        );
    }
}
