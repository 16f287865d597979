//! The SMTP sink: our verifying sink (`client-sim sink`, SMTP 1025, HTTP 8025 with `/stats`) or
//! Mailpit (`kind: Mailpit`, or its alias `MailHog`: SMTP 1025, web and API 8025, `/metrics`
//! there too), as a Deployment and headless Service.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use pressure_crds::spec::sut::DEFAULT_MAILPIT_IMAGE;
use pressure_crds::{PressureTest, SinkKind};

use super::{
    Child, container, env, exec_probe, http_probe, labels, meta, names, pod_security, port,
    pt_name, resources, scratch, selector, service,
};
use crate::Result;

/// SMTP port.
pub const SMTP_PORT: i32 = 1025;
/// HTTP port (the verifying sink's `/stats` and `/metrics`, or Mailpit's web UI, API and
/// `/metrics`).
pub const HTTP_PORT: i32 = 8025;
/// `app.kubernetes.io/component` of the sink's pods.
pub const COMPONENT: &str = "sink";

/// Service and Deployment.
pub fn children(pt: &PressureTest) -> Result<Vec<Child>> {
    let name = pt_name(pt)?;
    let app = app(pt.spec.sink.kind);
    let svc_meta = meta(pt, names::sink(&name), labels(&name, COMPONENT, app))?;
    let ports = [("smtp", SMTP_PORT), ("http", HTTP_PORT)];
    let svc = service(svc_meta, selector(&name, COMPONENT), &ports, true);
    Ok(vec![
        Child::Service(svc),
        Child::Deployment(deployment(pt, &name)?),
    ])
}

fn app(kind: SinkKind) -> &'static str {
    match kind {
        SinkKind::Verifying => "client-sim",
        SinkKind::Mailpit | SinkKind::MailHog => "mailpit",
    }
}

fn deployment(pt: &PressureTest, name: &str) -> Result<Deployment> {
    let spec = &pt.spec.sink;
    let res = resources(spec.resources.as_ref(), ["250m", "256Mi", "1", "1Gi"]);
    let (c, uid) = match spec.kind {
        SinkKind::Verifying => {
            let image = spec
                .image
                .clone()
                .unwrap_or_else(|| pt.spec.client_image.clone());
            let mut c = container("sink", &image, res);
            c.command = Some(vec!["client-sim".into(), "sink".into()]);
            c.env = Some(vec![
                env("SINK_SMTP_LISTEN", format!("0.0.0.0:{SMTP_PORT}")),
                env("SINK_HTTP_LISTEN", format!("0.0.0.0:{HTTP_PORT}")),
            ]);
            let url = format!("http://127.0.0.1:{HTTP_PORT}/health");
            let probe = exec_probe(&["client-sim", "healthcheck", "--url", &url], 5);
            c.readiness_probe = Some(probe.clone());
            c.liveness_probe = Some(probe);
            (c, 10001)
        }
        SinkKind::Mailpit | SinkKind::MailHog => (mailpit(spec.image.as_deref(), res), 1000),
    };
    let mut c = c;
    c.ports = Some(vec![port(SMTP_PORT), port(HTTP_PORT)]);
    let (tmp_vol, tmp_mount) = scratch("tmp", "/tmp");
    c.volume_mounts = Some(vec![tmp_mount]);
    let pod_labels = labels(name, COMPONENT, app(spec.kind));
    Ok(Deployment {
        metadata: meta(pt, names::sink(name), pod_labels.clone())?,
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector(name, COMPONENT)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![c],
                    volumes: Some(vec![tmp_vol]),
                    security_context: Some(pod_security(uid)),
                    automount_service_account_token: Some(false),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    })
}

/// Mailpit's container: every message kept (its default prunes beyond 500) and none refused for
/// its size (its default limit, 50 MiB, is below a 50 MiB attachment once encoded), its database
/// in `/tmp` (the scratch volume; the root file system is read-only), any SMTP login accepted
/// (the proxy may log in over plain SMTP), metrics on the HTTP port, no version check (no
/// egress). Runs as uid 1000, the user of Mailpit's images.
fn mailpit(image: Option<&str>, res: ResourceRequirements) -> Container {
    let mut c = container("mailpit", image.unwrap_or(DEFAULT_MAILPIT_IMAGE), res);
    c.env = Some(vec![
        env("MP_SMTP_BIND_ADDR", format!("0.0.0.0:{SMTP_PORT}")),
        env("MP_UI_BIND_ADDR", format!("0.0.0.0:{HTTP_PORT}")),
        env("MP_MAX_MESSAGES", "0"),
        env("MP_MAX_MESSAGE_SIZE", "0"),
        env("MP_DATABASE", "/tmp/mailpit.db"),
        env("MP_SMTP_AUTH_ACCEPT_ANY", "true"),
        env("MP_SMTP_AUTH_ALLOW_INSECURE", "true"),
        env("MP_ENABLE_PROMETHEUS", "true"),
        env("MP_DISABLE_VERSION_CHECK", "true"),
    ]);
    c.readiness_probe = Some(http_probe("/readyz", HTTP_PORT));
    c.liveness_probe = Some(http_probe("/livez", HTTP_PORT));
    c
}
