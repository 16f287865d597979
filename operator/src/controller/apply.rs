//! API writes: server-side apply of children under one field manager, the status patch, reading
//! back the generated credentials, and the `ResultsOnly` cleanup.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PropagationPolicy};
use kube::{Client, Resource};
use pressure_crds::{PressureTest, PressureTestStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::Result;
use crate::reconcile::{Child, MANAGER, SecretValues, names};

fn params() -> PatchParams {
    PatchParams::apply(MANAGER).force()
}

async fn ssa<K>(client: &Client, ns: &str, obj: &K) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.patch(&name, &params(), &Patch::Apply(obj)).await?;
    Ok(())
}

/// Server-side applies one child.
pub async fn apply(client: &Client, ns: &str, child: Child) -> Result<()> {
    tracing::debug!(child = %child.describe(), "Applying.");
    match &child {
        Child::Secret(o) => ssa(client, ns, o).await,
        Child::ConfigMap(o) => ssa(client, ns, o).await,
        Child::Service(o) => ssa(client, ns, o).await,
        Child::Deployment(o) => ssa(client, ns, o).await,
        Child::StatefulSet(o) => ssa(client, ns, o).await,
        Child::Job(o) => ssa(client, ns, o).await,
        Child::Hpa(o) => ssa(client, ns, o).await,
        Child::NetworkPolicy(o) => ssa(client, ns, o).await,
    }
}

/// Server-side applies the status subresource.
pub async fn patch_status(
    client: &Client,
    ns: &str,
    name: &str,
    status: &PressureTestStatus,
) -> Result<()> {
    let api: Api<PressureTest> = Api::namespaced(client.clone(), ns);
    let body = json!({
        "apiVersion": "pressure.mailproxy.dev/v1alpha1",
        "kind": "PressureTest",
        "status": status,
    });
    api.patch_status(name, &params(), &Patch::Apply(&body))
        .await?;
    Ok(())
}

/// The stored credentials, or fresh ones when the Secret does not exist yet.
pub async fn secret_values(client: &Client, ns: &str, name: &str) -> Result<SecretValues> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let existing = api.get_opt(&names::secret(name)).await?;
    Ok(existing
        .as_ref()
        .and_then(SecretValues::from_secret)
        .unwrap_or_else(SecretValues::generate))
}

async fn delete<K>(client: &Client, ns: &str, name: &str) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes optional children the spec no longer wants (HPA, Prometheus, Grafana). Idempotent.
pub async fn prune(client: &Client, ns: &str, name: &str, pt: &PressureTest) -> Result<()> {
    if !pt.spec.proxy.hpa.enabled {
        delete::<HorizontalPodAutoscaler>(client, ns, &names::proxy(name)).await?;
    }
    let mut off = Vec::new();
    if !pt.spec.prometheus.enabled {
        off.push(names::prometheus(name));
    }
    if !pt.spec.grafana.enabled {
        off.push(names::grafana(name));
    }
    for obj in off {
        delete::<Deployment>(client, ns, &obj).await?;
        delete::<Service>(client, ns, &obj).await?;
        delete::<ConfigMap>(client, ns, &obj).await?;
    }
    Ok(())
}

/// `ResultsOnly`: deletes the workloads and their configuration; keeps the PressureTest, the
/// Secret and PostgreSQL scaled to zero with its volume and its NetworkPolicy. Idempotent.
pub async fn cleanup(client: &Client, ns: &str, name: &str, pt: &PressureTest) -> Result<()> {
    for t in &pt.spec.tenants {
        let obj = names::client(name, &t.name);
        delete::<Deployment>(client, ns, &obj).await?;
        delete::<Service>(client, ns, &obj).await?;
    }
    delete::<NetworkPolicy>(client, ns, &names::clients_policy(name)).await?;
    delete::<Job>(client, ns, &names::setup(name)).await?;
    delete::<HorizontalPodAutoscaler>(client, ns, &names::proxy(name)).await?;
    for obj in [
        names::proxy(name),
        names::sink(name),
        names::prometheus(name),
        names::grafana(name),
    ] {
        delete::<Deployment>(client, ns, &obj).await?;
        delete::<Service>(client, ns, &obj).await?;
    }
    for obj in [names::prometheus(name), names::grafana(name)] {
        delete::<ConfigMap>(client, ns, &obj).await?;
    }
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let scale = json!({ "spec": { "replicas": 0 } });
    match sts
        .patch(
            &names::postgres(name),
            &PatchParams::default(),
            &Patch::Merge(&scale),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
