//! Test fixtures: PressureTest builders and a scripted mock API server (tower-test), after
//! controller-rs `src/fixtures.rs`. Each scenario lists the calls reconcile must make, checks
//! method, path and body, and answers them; a call that never comes fails on a timeout.

use std::sync::Arc;

use http::{Request, Response};
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Client, Resource};
use pressure_crds::{Phase, PressureTest, PressureTestSpec, PressureTestStatus};
use prometheus_client::registry::Registry;

use crate::controller::Context;
use crate::figures::Overrides;
use crate::metrics::Metrics;

/// Builders of test PressureTests.
pub trait TestPt: Sized {
    /// `default/t`, uid set, generation 1, the seed's four tenants, no status.
    fn test() -> Self;
    /// With a status in `phase`, entered at `since`.
    fn in_phase(self, phase: Phase, since: &str) -> Self;
}

impl TestPt for PressureTest {
    fn test() -> Self {
        let mut pt = PressureTest::new("t", PressureTestSpec::seed_default());
        pt.meta_mut().namespace = Some("default".into());
        pt.meta_mut().uid = Some("uid-1".into());
        pt.meta_mut().generation = Some(1);
        pt
    }

    fn in_phase(mut self, phase: Phase, since: &str) -> Self {
        let s = self.status.get_or_insert_with(PressureTestStatus::default);
        s.phase = Some(phase);
        s.phase_since = Some(since.into());
        s.run_id = Some("t-run".into());
        self
    }
}

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A mock API server handle and a [`Context`] whose client talks to it.
pub fn mock_context() -> (Arc<Context>, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let reporter = Reporter {
        controller: "pressure-operator".into(),
        instance: None,
    };
    let ctx = Context {
        client: client.clone(),
        recorder: Recorder::new(client, reporter),
        metrics: Metrics::new(&mut Registry::default()),
        http: reqwest::Client::new(),
        overrides: Overrides::default(),
        operator: crate::reconcile::OperatorPeer::default(),
        timelines: crate::report::Timelines::default(),
        leadership: {
            let l = crate::lease::Leadership::new();
            l.lead_until(tokio::time::Instant::now() + std::time::Duration::from_secs(86_400));
            Arc::new(l)
        },
    };
    (Arc::new(ctx), ApiServer(handle))
}

/// The server side of the mock.
pub struct ApiServer(pub Handle);

/// One recorded request.
pub struct Call {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// JSON body (Null when empty).
    pub body: serde_json::Value,
}

impl ApiServer {
    /// Waits for the next request, hands it to `answer` and sends back its status and body.
    pub async fn next(&mut self, answer: impl FnOnce(&Call) -> (u16, serde_json::Value)) -> Call {
        let Some((request, send)) = self.0.next_request().await else {
            panic!("reconcile stopped before the next expected call");
        };
        let method = request.method().to_string();
        let uri = request.uri().to_string();
        let bytes = request.into_body().collect_bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        let call = Call { method, uri, body };
        let (code, reply) = answer(&call);
        let response = Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(&reply).expect("json")))
            .expect("response");
        send.send_response(response);
        call
    }
}

/// Runs `reconcile` against `script` (the server side) with a timeout; if reconcile ends before
/// the script has seen every call, fails with reconcile's result.
pub async fn scenario<T>(
    reconcile: impl std::future::Future<Output = T> + Send + 'static,
    script: impl std::future::Future<Output = ()>,
) -> T
where
    T: std::fmt::Debug + Send + 'static,
{
    let task = tokio::spawn(async move {
        let result = reconcile.await;
        eprintln!("reconcile returned {result:?}");
        result
    });
    tokio::time::timeout(std::time::Duration::from_secs(5), script)
        .await
        .expect("scenario completes in time");
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("reconcile ends")
        .expect("joins")
}

/// A 404 Status body.
pub fn not_found() -> (u16, serde_json::Value) {
    (
        404,
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

/// A pod list answer.
pub fn pod_list(pods: Vec<Pod>) -> (u16, serde_json::Value) {
    (
        200,
        serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": pods}),
    )
}

/// Answers a status patch with the test PressureTest carrying the patched status.
pub fn status_echo(call: &Call) -> (u16, serde_json::Value) {
    let mut pt = serde_json::to_value(PressureTest::test()).expect("json");
    pt["status"] = call.body["status"].clone();
    (200, pt)
}

/// Answers the fresh read of the PressureTest at the start of a reconcile with `pt`.
pub fn object(pt: &PressureTest) -> impl FnOnce(&Call) -> (u16, serde_json::Value) + use<> {
    let value = serde_json::to_value(pt).expect("json");
    move |_| (200, value)
}

/// Echoes the request body back (what an apply returns, near enough).
pub fn echo(call: &Call) -> (u16, serde_json::Value) {
    (200, call.body.clone())
}
