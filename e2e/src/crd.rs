//! Installs the PressureTest CRD from the chart (`charts/pressure-crds/crds/pressuretests.yaml`)
//! with server-side apply, and waits until the API server reports it Established. Idempotent:
//! every test calls it, the first one creates the CRD.

use std::time::Duration;

use anyhow::Context;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::conditions;

use crate::cluster::repo_root;
use crate::wait::{poll, wait_until};

/// Name of the CRD.
pub const CRD_NAME: &str = "pressuretests.pressure.mailproxy.dev";
/// Field manager of the suite's own writes.
pub const MANAGER: &str = "pressure-e2e";

/// The CRD as shipped in the chart.
pub fn chart_crd() -> anyhow::Result<CustomResourceDefinition> {
    let path = repo_root().join("charts/pressure-crds/crds/pressuretests.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Server-side applies the chart's CRD and waits until it is Established (at most 60 s).
pub async fn install_crd(client: &Client) -> anyhow::Result<CustomResourceDefinition> {
    let crd = chart_crd()?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.patch(
        CRD_NAME,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await
    .context("server-side applying the PressureTest CRD")?;
    let established = wait_until(
        api,
        CRD_NAME,
        Duration::from_secs(60),
        "the CRD to be Established",
        conditions::is_crd_established(),
    )
    .await?;
    let crd = established.context("the CRD vanished after being applied")?;
    // kubectl finds resources through discovery, which can lag behind Established.
    poll(
        Duration::from_secs(60),
        Duration::from_millis(200),
        "PressureTests in API discovery",
        || async {
            let found = client
                .list_api_group_resources("pressure.mailproxy.dev/v1alpha1")
                .await?
                .resources
                .iter()
                .any(|r| r.name == "pressuretests");
            Ok(found.then_some(()))
        },
    )
    .await?;
    Ok(crd)
}
