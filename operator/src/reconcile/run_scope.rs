//! Run scoping: the pods of the proxy, the sink and the clients carry their run's id in an
//! annotation. A new run (`spec.runNumber`) changes it, so those Deployments roll out afresh,
//! with every counter at zero, and the operator takes readiness and figures only from pods of
//! the current run: a pod of the previous run, still terminating or not yet replaced, counts for
//! nothing. PostgreSQL, Prometheus and Grafana stay across runs.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{COMPONENT_LABEL, Child};

/// Annotation holding the run id (pod templates of run-scoped components, report ConfigMaps).
pub const RUN_ID_ANNOTATION: &str = "pressure.mailproxy.dev/run-id";
/// Components whose pods belong to one run.
pub const RUN_SCOPED: [&str; 3] = ["proxy", "sink", "client"];

/// Stamps `run_id` on the pod template of every run-scoped Deployment in `children`.
pub fn scope(children: &mut [Child], run_id: &str) {
    for child in children {
        let Child::Deployment(d) = child else {
            continue;
        };
        let Some(template) = d.spec.as_mut().map(|s| &mut s.template) else {
            continue;
        };
        let meta = template.metadata.get_or_insert_with(Default::default);
        if run_scoped(meta) {
            meta.annotations
                .get_or_insert_with(Default::default)
                .insert(RUN_ID_ANNOTATION.into(), run_id.into());
        }
    }
}

/// Whether `pod` counts for the run `run_id`: not being deleted, and, for a run-scoped
/// component, stamped with that run.
pub fn of_run(pod: &Pod, run_id: Option<&str>) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    if !run_scoped(&pod.metadata) {
        return true;
    }
    let stamped = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RUN_ID_ANNOTATION))
        .map(String::as_str);
    run_id.is_none_or(|r| stamped == Some(r))
}

/// Whether the object's component label names a run-scoped component.
fn run_scoped(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(COMPONENT_LABEL))
        .is_some_and(|c| RUN_SCOPED.contains(&c.as_str()))
}

/// Whether `pod` is Ready.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(component: &str, run: Option<&str>, deleting: bool) -> Pod {
        let mut p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "labels": {COMPONENT_LABEL: component}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .expect("pod");
        if let Some(r) = run {
            p.metadata.annotations = Some([(RUN_ID_ANNOTATION.to_string(), r.to_string())].into());
        }
        if deleting {
            p.metadata.deletion_timestamp =
                serde_json::from_value(json!("2020-01-01T00:00:00Z")).expect("time");
        }
        p
    }

    #[test]
    fn only_pods_of_the_current_run_count() {
        assert!(of_run(&pod("proxy", Some("r2"), false), Some("r2")));
        assert!(!of_run(&pod("proxy", Some("r1"), false), Some("r2")));
        assert!(!of_run(&pod("client", None, false), Some("r2")));
        assert!(!of_run(&pod("sink", Some("r2"), true), Some("r2")));
        // PostgreSQL stays across runs.
        assert!(of_run(&pod("postgres", None, false), Some("r2")));
        assert!(is_ready(&pod("proxy", None, false)));
    }

    #[test]
    fn run_scoped_templates_are_stamped() {
        let pt = {
            let mut pt = pressure_crds::PressureTest::new(
                "t",
                pressure_crds::PressureTestSpec::seed_default(),
            );
            pt.metadata.namespace = Some("default".into());
            pt.metadata.uid = Some("u".into());
            pt
        };
        let mut children = crate::reconcile::sink::children(&pt).expect("sink");
        children.extend(crate::reconcile::postgres::children(&pt).expect("postgres"));
        scope(&mut children, "t-1");
        let stamps: Vec<Option<String>> = children
            .iter()
            .filter_map(|c| match c {
                Child::Deployment(d) => Some(d),
                _ => None,
            })
            .map(|d| {
                d.spec
                    .as_ref()
                    .and_then(|s| s.template.metadata.as_ref())
                    .and_then(|m| m.annotations.as_ref())
                    .and_then(|a| a.get(RUN_ID_ANNOTATION).cloned())
            })
            .collect();
        assert_eq!(stamps, vec![Some("t-1".to_string())], "the sink Deployment");
    }
}
