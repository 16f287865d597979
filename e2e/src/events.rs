//! Events the operator published about a PressureTest (`events.k8s.io/v1`), oldest first.

use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams};

/// One event, reduced to what the tests check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtEvent {
    /// `Normal` or `Warning`.
    pub type_: String,
    /// CamelCase reason (`Provisioning`, `EnvironmentReady`, …).
    pub reason: String,
    /// The sentence.
    pub note: String,
}

/// Events regarding the PressureTest `name` in `ns`, in creation order.
pub async fn events_for(client: &Client, ns: &str, name: &str) -> anyhow::Result<Vec<PtEvent>> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let mut items: Vec<Event> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("PressureTest") && r.name.as_deref() == Some(name)
            })
        })
        .collect();
    items.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
    Ok(items
        .into_iter()
        .map(|e| PtEvent {
            type_: e.type_.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            note: e.note.unwrap_or_default(),
        })
        .collect())
}
