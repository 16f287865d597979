//! API writes: server-side apply of children under one field manager, the status patch, reading
//! back the generated credentials, and the `ResultsOnly` cleanup. Deletes and the cleanup's
//! scale-down touch only objects this PressureTest controls (`ownership`); the reconcile checks
//! the children before it applies them.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::{Client, Resource};
use pressure_crds::{PressureTest, PressureTestStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::ownership;
use crate::reconcile::{Child, MANAGER, SecretValues, names};
use crate::{Error, Result};

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

/// The stored credentials, or fresh ones when the Secret does not exist yet. A Secret of that
/// name that this PressureTest (UID `uid`) does not control is not read: its values are someone
/// else's.
pub async fn secret_values(
    client: &Client,
    ns: &str,
    name: &str,
    uid: &str,
) -> Result<SecretValues> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let existing = ownership::ours(api.get_opt(&names::secret(name)).await?, uid);
    Ok(existing
        .as_ref()
        .and_then(SecretValues::from_secret)
        .unwrap_or_else(SecretValues::generate))
}

/// Deletes `name` if this PressureTest controls it; leaves a foreign object alone and returns
/// `Some("Kind/name")` for it, to report. The delete carries the object's UID as a precondition,
/// so an object replaced in between is not removed.
async fn delete<K>(client: &Client, ns: &str, name: &str, uid: &str) -> Result<Option<String>>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let (found, foreign) = ownership::read::<K>(client, ns, name, uid).await?;
    let Some(found) = found else {
        return Ok(None);
    };
    if foreign {
        tracing::warn!(kind = %K::kind(&()), %name, "Not deleting an object this PressureTest does not control.");
        return Ok(Some(format!("{}/{name}", K::kind(&()))));
    }
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: found.meta().uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(None),
        // Gone already, or replaced since it was read (the UID precondition failed).
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the PressureTest itself (its TTL ran out), only if it is still the object with this
/// UID; its children follow through their owner references. Gone already is fine.
pub async fn delete_pressuretest(client: &Client, ns: &str, name: &str, uid: &str) -> Result<()> {
    let api: Api<PressureTest> = Api::namespaced(client.clone(), ns);
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The UID of the PressureTest.
pub fn uid(pt: &PressureTest) -> Result<String> {
    pt.metadata
        .uid
        .clone()
        .ok_or(Error::MissingField("metadata.uid"))
}

/// Deletes optional children the spec no longer wants (HPA, Prometheus, Grafana). Idempotent.
/// Returns the `Kind/name`s of objects of those names it left alone (not controlled by `pt`).
pub async fn prune(
    client: &Client,
    ns: &str,
    name: &str,
    pt: &PressureTest,
) -> Result<Vec<String>> {
    let uid = uid(pt)?;
    let mut kept = Vec::new();
    if !pt.spec.proxy.hpa.enabled {
        kept.extend(
            delete::<HorizontalPodAutoscaler>(client, ns, &names::proxy(name), &uid).await?,
        );
    }
    let mut off = Vec::new();
    if !pt.spec.prometheus.enabled {
        off.push(names::prometheus(name));
    }
    if !pt.spec.grafana.enabled {
        off.push(names::grafana(name));
    }
    for obj in off {
        kept.extend(delete::<Deployment>(client, ns, &obj, &uid).await?);
        kept.extend(delete::<Service>(client, ns, &obj, &uid).await?);
        kept.extend(delete::<ConfigMap>(client, ns, &obj, &uid).await?);
    }
    Ok(kept)
}

/// `ResultsOnly`: deletes the workloads and their configuration; keeps the PressureTest, the
/// Secret and PostgreSQL scaled to zero with its volume and its NetworkPolicy. Idempotent.
/// Returns the `Kind/name`s of objects of those names it left alone (not controlled by `pt`).
pub async fn cleanup(
    client: &Client,
    ns: &str,
    name: &str,
    pt: &PressureTest,
) -> Result<Vec<String>> {
    let uid = uid(pt)?;
    let mut kept = Vec::new();
    for t in &pt.spec.tenants {
        let obj = names::client(name, &t.name);
        kept.extend(delete::<Deployment>(client, ns, &obj, &uid).await?);
        kept.extend(delete::<Service>(client, ns, &obj, &uid).await?);
    }
    kept.extend(delete::<NetworkPolicy>(client, ns, &names::clients_policy(name), &uid).await?);
    kept.extend(delete::<NetworkPolicy>(client, ns, &names::sink_policy(name), &uid).await?);
    kept.extend(delete::<Job>(client, ns, &names::setup(name), &uid).await?);
    kept.extend(delete::<HorizontalPodAutoscaler>(client, ns, &names::proxy(name), &uid).await?);
    for obj in [
        names::proxy(name),
        names::sink(name),
        names::prometheus(name),
        names::grafana(name),
    ] {
        kept.extend(delete::<Deployment>(client, ns, &obj, &uid).await?);
        kept.extend(delete::<Service>(client, ns, &obj, &uid).await?);
    }
    for obj in [names::prometheus(name), names::grafana(name)] {
        kept.extend(delete::<ConfigMap>(client, ns, &obj, &uid).await?);
    }
    let postgres = names::postgres(name);
    let (found, foreign) = ownership::read::<StatefulSet>(client, ns, &postgres, &uid).await?;
    if foreign {
        kept.push(format!("StatefulSet/{postgres}"));
    }
    let Some(found) = found.filter(|_| !foreign) else {
        return Ok(kept);
    };
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    // The UID in the patch is a precondition: a StatefulSet replaced since the read is refused.
    let scale = json!({
        "metadata": { "uid": found.metadata.uid },
        "spec": { "replicas": 0 },
    });
    match sts
        .patch(&postgres, &PatchParams::default(), &Patch::Merge(&scale))
        .await
    {
        Ok(_) => Ok(kept),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(kept),
        Err(e) => Err(e.into()),
    }
}
