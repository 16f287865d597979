//! Reconcile against a scripted mock API server: the calls, their order and their bodies.

use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::core::v1::Pod;
use pressure_crds::{Phase, PressureTest};
use serde_json::{Value, json};

use super::reconcile;
use crate::fixtures::{
    ApiServer, TestPt, echo, mock_context, not_found, object, pod_list, scenario, status_echo,
};

fn is_forced_apply(uri: &str) -> bool {
    uri.contains("fieldManager=pressure-operator") && uri.contains("force=true")
}

/// The ownership reads before the applies: `count` GETs of children, answered "not found".
async fn expect_ownership_reads(server: &mut ApiServer, count: usize) {
    for _ in 0..count {
        let call = server.next(|_| not_found()).await;
        assert_eq!(call.method, "GET", "{}", call.uri);
    }
}

async fn expect_applies(server: &mut ApiServer, count: usize) -> Vec<String> {
    let mut kinds = Vec::new();
    for _ in 0..count {
        let call = server.next(echo).await;
        assert_eq!(call.method, "PATCH", "{}", call.uri);
        assert!(
            is_forced_apply(&call.uri),
            "not a forced server-side apply: {}",
            call.uri
        );
        let meta = &call.body["metadata"];
        assert_eq!(
            meta["ownerReferences"][0]["controller"],
            json!(true),
            "{}",
            call.uri
        );
        assert_eq!(meta["ownerReferences"][0]["uid"], json!("uid-1"));
        assert_eq!(meta["labels"]["pressure.mailproxy.dev/test"], json!("t"));
        assert_eq!(
            meta["labels"]["app.kubernetes.io/managed-by"],
            json!("pressure-operator")
        );
        kinds.push(call.body["kind"].as_str().unwrap_or_default().to_string());
    }
    kinds
}

#[tokio::test]
async fn first_reconcile_applies_children_and_sets_provisioning() {
    let (ctx, mut server) = mock_context();
    let pt = std::sync::Arc::new(PressureTest::test());
    let stored = (*pt).clone();
    let script = async {
        let c = server.next(object(&stored)).await;
        assert_eq!(c.method, "GET", "a fresh read first: {}", c.uri);
        assert!(
            c.uri.starts_with(
                "/apis/pressure.mailproxy.dev/v1alpha1/namespaces/default/pressuretests/t"
            ),
            "{}",
            c.uri
        );
        let c = server.next(|_| not_found()).await;
        assert!(
            c.uri
                .starts_with("/api/v1/namespaces/default/secrets/t-credentials"),
            "{}",
            c.uri
        );
        let c = server.next(|_| pod_list(vec![])).await;
        assert!(
            c.uri
                .contains("labelSelector=pressure.mailproxy.dev%2Ftest%3Dt"),
            "{}",
            c.uri
        );
        expect_ownership_reads(&mut server, 17).await;
        let kinds = expect_applies(&mut server, 17).await; // no setup Job or clients yet
        for kind in [
            "Secret",
            "StatefulSet",
            "Service",
            "Deployment",
            "HorizontalPodAutoscaler",
            "ConfigMap",
            "NetworkPolicy",
        ] {
            assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
        }
        // The event first, so a watcher of the phase finds it.
        let event = server.next(echo).await;
        assert!(
            event
                .uri
                .starts_with("/apis/events.k8s.io/v1/namespaces/default/events"),
            "{}",
            event.uri
        );
        assert_eq!(event.body["reason"], json!("Provisioning"));
        let status = server.next(status_echo).await;
        assert!(
            status.uri.starts_with(
                "/apis/pressure.mailproxy.dev/v1alpha1/namespaces/default/pressuretests/t/status"
            ),
            "{}",
            status.uri
        );
        assert!(is_forced_apply(&status.uri));
        assert_eq!(status.body["status"]["phase"], json!("Provisioning"));
        assert_eq!(status.body["status"]["observedGeneration"], json!(1));
    };
    let action = scenario(reconcile(pt, ctx), script)
        .await
        .expect("reconcile ok");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(5))
    );
}

fn failing_pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "t-proxy-abc", "namespace": "default", "creationTimestamp": "2020-01-01T00:00:00Z",
                     "labels": {"pressure.mailproxy.dev/test": "t", "app.kubernetes.io/component": "proxy"},
                     "annotations": {"pressure.mailproxy.dev/run-id": "t-run"}},
        "status": {"phase": "Pending", "containerStatuses": [{
            "name": "mailproxy", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}}]}
    }))
    .expect("pod json")
}

#[tokio::test]
async fn a_failing_pod_ends_the_run_as_failed_with_the_reason() {
    let (ctx, mut server) = mock_context();
    let since = crate::status::rfc3339(Utc::now());
    let pt = std::sync::Arc::new(PressureTest::test().in_phase(Phase::Provisioning, &since));
    let stored = (*pt).clone();
    let script = async {
        server.next(object(&stored)).await; // the fresh read
        server.next(|_| not_found()).await; // credentials Secret
        server.next(|_| pod_list(vec![failing_pod()])).await;
        for what in [
            "statefulsets/t-postgres",
            "deployments/t-proxy",
            "deployments/t-sink",
            "deployments/t-prometheus",
            "deployments/t-grafana",
        ] {
            let c = server.next(|_| not_found()).await;
            assert!(c.uri.contains(what), "expected {what}, got {}", c.uri);
        }
        // The failed run's report, before the status that names it.
        let c = server.next(|_| not_found()).await;
        assert!(c.uri.contains("configmaps/t-report-run"), "{}", c.uri);
        let c = server.next(echo).await;
        assert_eq!(c.method, "PATCH", "{}", c.uri);
        assert!(c.uri.contains("configmaps/t-report-run"), "{}", c.uri);
        let report: pressure_crds::report::Report =
            serde_json::from_str(c.body["data"]["report.json"].as_str().unwrap_or_default())
                .expect("report.json");
        assert_eq!(report.verdict, "PodsUnhealthy");
        let event = server.next(echo).await;
        assert_eq!(event.body["type"], json!("Warning"));
        assert_eq!(event.body["reason"], json!("PodsUnhealthy"));
        let status = server.next(status_echo).await;
        assert!(
            status.uri.contains("/pressuretests/t/status"),
            "no applies once failed: {}",
            status.uri
        );
        let s: &Value = &status.body["status"];
        assert_eq!(s["phase"], json!("Failed"));
        assert_eq!(s["report"], json!("t-report-run"));
        let cond = |t: &str| {
            s["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == json!(t))
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(cond("PodsHealthy")["reason"], json!("ImagePullError"));
        assert_eq!(cond("Succeeded")["status"], json!("False"));
        assert_eq!(cond("Succeeded")["reason"], json!("PodsUnhealthy"));
        assert_eq!(cond("Complete")["status"], json!("True"));
        assert!(
            s["message"]
                .as_str()
                .unwrap_or_default()
                .contains("t-proxy-abc")
        );
    };
    let action = scenario(reconcile(pt, ctx), script)
        .await
        .expect("reconcile ok");
    assert_eq!(action, kube::runtime::controller::Action::await_change());
}

#[tokio::test]
async fn a_stale_cached_copy_does_not_restart_the_run() {
    // The watch cache still shows no status, but the stored object is already provisioning: the
    // reconcile must continue that run (same run id, no new Provisioning event).
    let (ctx, mut server) = mock_context();
    let since = crate::status::rfc3339(Utc::now());
    let cached = std::sync::Arc::new(PressureTest::test());
    let stored = PressureTest::test().in_phase(Phase::Provisioning, &since);
    let script = async {
        server.next(object(&stored)).await;
        server.next(|_| not_found()).await; // credentials Secret
        server.next(|_| pod_list(vec![])).await;
        for _ in 0..5 {
            server.next(|_| not_found()).await; // readiness of postgres, proxy, sink, observability
        }
        expect_ownership_reads(&mut server, 17).await;
        expect_applies(&mut server, 17).await;
        let status = server.next(status_echo).await;
        assert!(
            status.uri.contains("/pressuretests/t/status"),
            "{}",
            status.uri
        );
        assert_eq!(status.body["status"]["runId"], json!("t-run"));
        assert_eq!(status.body["status"]["phase"], json!("Provisioning"));
    };
    let action = scenario(reconcile(cached, ctx), script)
        .await
        .expect("reconcile ok");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(5))
    );
}

/// Issue 15, item 15: a replica whose leadership ran out (its last renewal is older than the
/// renew deadline, whatever its lease loop is doing) reads, then stops before its first write.
#[tokio::test]
async fn a_replica_whose_leadership_ran_out_writes_nothing() {
    let (ctx, mut server) = mock_context();
    ctx.leadership.end();
    let pt = std::sync::Arc::new(PressureTest::test());
    let stored = (*pt).clone();
    let script = async {
        let c = server.next(object(&stored)).await;
        assert_eq!(c.method, "GET", "{}", c.uri);
        let c = server.next(|_| not_found()).await;
        assert_eq!(c.method, "GET", "{}", c.uri);
        let c = server.next(|_| pod_list(vec![])).await;
        assert_eq!(c.method, "GET", "{}", c.uri);
        expect_ownership_reads(&mut server, 17).await;
    };
    // A write after the reads would wait for an answer that never comes: "reconcile ends" fails.
    let result = scenario(reconcile(pt, ctx), script).await;
    assert!(matches!(result, Err(crate::Error::NotLeader)), "{result:?}");
}
