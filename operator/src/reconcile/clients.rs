//! One client Deployment and headless Service per tenant (`client-sim serve`). Each client knows
//! the run's start and stop times (`START_AT`, `STOP_AT`): it generates messages only inside that
//! window, which is how the operator starts and stops the load without starter Jobs.

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector};
use pressure_crds::profiles::ProfileRates;
use pressure_crds::{PressureTest, TenantSpec};

use super::{
    Child, TENANT_LABEL, container, deployment, env, exec_probe, labels, meta, names, pod_spec,
    port, pt_name, resources, scratch, selector, service,
};
use crate::Result;

/// Port of `client-sim serve`.
pub const PORT: i32 = 8080;
/// Component label of client pods.
pub const COMPONENT: &str = "client";

/// Service and Deployment of every tenant.
pub fn children(
    pt: &PressureTest,
    run_id: &str,
    start_at: i64,
    stop_at: i64,
) -> Result<Vec<Child>> {
    let name = pt_name(pt)?;
    let mut out = Vec::new();
    for (index, tenant) in pt.spec.tenants.iter().enumerate() {
        let mut sel = selector(&name, COMPONENT);
        sel.insert(TENANT_LABEL.into(), tenant.name.clone());
        let mut l = labels(&name, COMPONENT, "client-sim");
        l.insert(TENANT_LABEL.into(), tenant.name.clone());
        let obj = names::client(&name, &tenant.name);
        let svc = service(
            meta(pt, obj.clone(), l.clone())?,
            sel.clone(),
            &[("http", PORT)],
            true,
        );
        let window = Window {
            run_id,
            start_at,
            stop_at,
            stages: &pt.spec.stages,
        };
        let seed = i64::from(pt.spec.seed) + index as i64;
        let mut c = container(
            "client",
            &pt.spec.client_image,
            resources(
                tenant.resources.as_ref(),
                ["100m", "128Mi", "500m", "512Mi"],
            ),
        );
        let profile = tenant.profile.map_or("standard", |p| p.name());
        c.command = Some(
            [
                "client-sim",
                "serve",
                "--profile",
                profile,
                "--listen",
                "0.0.0.0",
            ]
            .map(String::from)
            .to_vec(),
        );
        c.env = Some(client_env(tenant, &window, seed));
        c.ports = Some(vec![port(PORT)]);
        let url = format!("http://127.0.0.1:{PORT}/health");
        let probe = exec_probe(&["client-sim", "healthcheck", "--url", &url], 5);
        c.readiness_probe = Some(probe.clone());
        c.liveness_probe = Some(probe);
        let (tmp_vol, tmp_mount) = scratch("tmp", "/tmp");
        c.volume_mounts = Some(vec![tmp_mount]);
        let d = deployment(
            meta(pt, obj, l)?,
            sel,
            Some(tenant.clients),
            pod_spec(vec![c], vec![tmp_vol], 10001),
        );
        out.push(Child::Service(svc));
        out.push(Child::Deployment(d));
    }
    Ok(out)
}

/// The run identity and load window handed to every client.
pub struct Window<'a> {
    /// `RUN_ID`.
    pub run_id: &'a str,
    /// `START_AT`, Unix seconds.
    pub start_at: i64,
    /// `STOP_AT`, Unix seconds.
    pub stop_at: i64,
    /// `LOAD_STAGES`: the load's shape, counted from `START_AT`.
    pub stages: &'a [pressure_crds::StageSpec],
}

/// A client's environment: identity, rates (as decimal strings), seed and the load window.
pub fn client_env(tenant: &TenantSpec, w: &Window<'_>, seed: i64) -> Vec<EnvVar> {
    let r = tenant.effective_rates();
    let pod_name = EnvVar {
        name: "CLIENT_ID".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.name".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..EnvVar::default()
    };
    vec![
        pod_name,
        env("TENANT_ID", tenant.name.clone()),
        env("MSG_RATE_PER_SYNC", r.messages_per_sync.to_string()),
        env(
            "ATTACHMENT_CACHE_HIT_RATE",
            ProfileRates::permille_str(r.cache_hit_rate_permille),
        ),
        env(
            "DND_PROBABILITY",
            ProfileRates::permille_str(r.dnd_probability_permille),
        ),
        env(
            "LARGE_ATTACHMENT_RATE",
            ProfileRates::permille_str(r.large_attachment_rate_permille),
        ),
        env("PORT", PORT.to_string()),
        env("CLIENT_SEED", seed.to_string()),
        env("RUN_ID", w.run_id),
        env("START_AT", w.start_at.to_string()),
        env("STOP_AT", w.stop_at.to_string()),
        // The load's shape (`spec.stages`, counted from START_AT); "[]": the full rate.
        env(
            "LOAD_STAGES",
            pressure_crds::spec::stages::env_json(w.stages),
        ),
    ]
}
