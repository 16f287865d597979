//! The setup Job: `client-sim setup` registers every tenant and its SMTP account with the proxy,
//! from a `SetupPlanV1` in `SETUP_PLAN`, and exits 0 when done.

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use mailproxy_proto::admin::SetupPlanV1;
use pressure_crds::PressureTest;

use super::secret::API_TOKEN;
use super::{
    container, env, labels, meta, names, pod_spec, pt_name, resources, scratch, secret_env,
};
use crate::{Error, Result};

const COMPONENT: &str = "setup";

/// The plan ([`pressure_crds::setup::plan`]): each tenant's client Service, delivering to the
/// sink's Service.
pub fn plan(pt_name: &str, pt: &PressureTest) -> SetupPlanV1 {
    let tenants = pt.spec.tenants.iter().map(|t| {
        let url = format!(
            "http://{}:{}",
            names::client(pt_name, &t.name),
            super::clients::PORT
        );
        (t.name.as_str(), url)
    });
    pressure_crds::setup::plan(
        tenants,
        &names::sink(pt_name),
        super::sink::SMTP_PORT as u16,
    )
}

/// The Job: a few retries, bounded by the setup timeout.
pub fn job(pt: &PressureTest) -> Result<Job> {
    let name = pt_name(pt)?;
    let plan = serde_json::to_string(&plan(&name, pt)).map_err(|e| Error::Build {
        what: "setup plan",
        reason: e.to_string(),
    })?;
    let mut c = container(
        "setup",
        &pt.spec.client_image,
        resources(None, ["50m", "64Mi", "500m", "128Mi"]),
    );
    c.command = Some(vec!["client-sim".into(), "setup".into()]);
    c.env = Some(vec![
        env(
            "PROXY_URL",
            format!("http://{}:{}", names::proxy(&name), super::proxy::PORT),
        ),
        secret_env(&name, "GMP_API_TOKEN", API_TOKEN),
        env("SETUP_PLAN", plan),
    ]);
    let (tmp_vol, tmp_mount) = scratch("tmp", "/tmp");
    c.volume_mounts = Some(vec![tmp_mount]);
    let mut pod = pod_spec(vec![c], vec![tmp_vol], 10001);
    pod.restart_policy = Some("Never".into());
    let l = labels(&name, COMPONENT, "client-sim");
    Ok(Job {
        metadata: meta(pt, names::setup(&name), l.clone())?,
        spec: Some(JobSpec {
            backoff_limit: Some(4),
            active_deadline_seconds: Some(i64::from(pt.spec.timeouts.setup_seconds)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(l),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    })
}
