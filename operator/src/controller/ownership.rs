//! Whose object is it: before the operator applies or deletes a child by name, it reads the
//! object back and touches it only when it is absent or controlled by this PressureTest (a
//! controller owner reference with the PressureTest's UID). Anything else with that name belongs
//! to someone else. A forced server-side apply would take it over (a PressureTest named `db`
//! adopting another team's Secret `db-credentials`, which is then garbage-collected with it) and
//! a delete by name would remove it (a PressureTest named `metrics` without Prometheus deleting
//! a Deployment `metrics-prometheus`); the operator does neither, and reports the conflict.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::{Client, Resource};
use pressure_crds::{ConditionStatus, PressureTestStatus};
use serde::de::DeserializeOwned;

use crate::Result;
use crate::reconcile::Child;
use crate::status::conditions;

/// Condition type: every child name is free or held by this PressureTest.
pub const CHILDREN_OWNED: &str = "ChildrenOwned";
/// Reason (condition and Warning event) when another object holds a child's name.
pub const FOREIGN_OBJECT: &str = "ForeignObject";

/// Whether `meta` names the object with UID `uid` as its controller.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// `found` when it is controlled by `uid`; `None` for an absent or foreign object, so that a
/// reader never mistakes someone else's object for a child (its readiness, its credentials).
pub fn ours<K: Resource>(found: Option<K>, uid: &str) -> Option<K> {
    found.filter(|o| controlled_by(o.meta(), uid))
}

/// The object `name` of kind `K`, and whether it is foreign (exists, not controlled by `uid`).
pub async fn read<K>(client: &Client, ns: &str, name: &str, uid: &str) -> Result<(Option<K>, bool)>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let found = api.get_opt(name).await?;
    let foreign = found
        .as_ref()
        .is_some_and(|o| !controlled_by(o.meta(), uid));
    Ok((found, foreign))
}

async fn is_foreign<K>(client: &Client, ns: &str, meta: &ObjectMeta, uid: &str) -> Result<bool>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let name = meta.name.as_deref().unwrap_or_default();
    Ok(read::<K>(client, ns, name, uid).await?.1)
}

/// `Some("Kind/name")` when the child's name is held by an object this PressureTest does not
/// control.
pub async fn foreign(
    client: &Client,
    ns: &str,
    uid: &str,
    child: &Child,
) -> Result<Option<String>> {
    let taken = match child {
        Child::Secret(o) => is_foreign::<Secret>(client, ns, &o.metadata, uid).await?,
        Child::ConfigMap(o) => is_foreign::<ConfigMap>(client, ns, &o.metadata, uid).await?,
        Child::Service(o) => is_foreign::<Service>(client, ns, &o.metadata, uid).await?,
        Child::Deployment(o) => is_foreign::<Deployment>(client, ns, &o.metadata, uid).await?,
        Child::StatefulSet(o) => is_foreign::<StatefulSet>(client, ns, &o.metadata, uid).await?,
        Child::Job(o) => is_foreign::<Job>(client, ns, &o.metadata, uid).await?,
        Child::Hpa(o) => {
            is_foreign::<HorizontalPodAutoscaler>(client, ns, &o.metadata, uid).await?
        }
        Child::NetworkPolicy(o) => {
            is_foreign::<NetworkPolicy>(client, ns, &o.metadata, uid).await?
        }
    };
    Ok(taken.then(|| child.describe()))
}

/// What the status says about `foreign` (sorted `Kind/name`s): `Some(message)` of a new or
/// changed refusal, to publish as a Warning event; `None` when nothing new is refused.
pub fn report(
    status: &mut PressureTestStatus,
    foreign: &[String],
    now: &str,
    generation: Option<i64>,
) -> Option<String> {
    let previous = status
        .condition(CHILDREN_OWNED)
        .map(|c| (c.status, c.message.clone()));
    if foreign.is_empty() {
        if previous.is_some() {
            conditions::set(
                &mut status.conditions,
                CHILDREN_OWNED,
                ConditionStatus::True,
                "AllOwned",
                "every child is controlled by this PressureTest",
                now,
                generation,
            );
        }
        return None;
    }
    let message = format!(
        "{} already exist{} and {} not controlled by this PressureTest; the operator leaves {} \
         alone and the run waits: delete or rename {}, or give this PressureTest another name",
        foreign.join(", "),
        if foreign.len() == 1 { "s" } else { "" },
        if foreign.len() == 1 { "is" } else { "are" },
        if foreign.len() == 1 { "it" } else { "them" },
        if foreign.len() == 1 { "it" } else { "them" },
    );
    conditions::set(
        &mut status.conditions,
        CHILDREN_OWNED,
        ConditionStatus::False,
        FOREIGN_OBJECT,
        message.clone(),
        now,
        generation,
    );
    let repeated = previous == Some((ConditionStatus::False, message.clone()));
    (!repeated).then_some(message)
}

/// The note of the Warning event for objects a prune or cleanup left alone (sorted `Kind/name`s
/// that exist under a child's name and are not controlled by this PressureTest).
pub fn kept_message(kept: &[String]) -> String {
    let one = kept.len() == 1;
    format!(
        "{} exist{} under a child's name and {} not controlled by this PressureTest; the operator \
         did not delete {}",
        kept.join(", "),
        if one { "s" } else { "" },
        if one { "is" } else { "are" },
        if one { "it" } else { "them" },
    )
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    fn meta(owners: Vec<(&str, Option<bool>)>) -> ObjectMeta {
        ObjectMeta {
            owner_references: Some(
                owners
                    .into_iter()
                    .map(|(uid, controller)| OwnerReference {
                        uid: uid.into(),
                        controller,
                        ..OwnerReference::default()
                    })
                    .collect(),
            ),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn only_a_controller_reference_with_our_uid_counts() {
        assert!(controlled_by(&meta(vec![("u1", Some(true))]), "u1"));
        assert!(!controlled_by(&meta(vec![("u2", Some(true))]), "u1"));
        assert!(
            !controlled_by(&meta(vec![("u1", None)]), "u1"),
            "owner, not controller"
        );
        assert!(!controlled_by(&ObjectMeta::default(), "u1"));
    }

    #[test]
    fn objects_left_alone_are_named() {
        assert_eq!(
            kept_message(&["Deployment/metrics-prometheus".into()]),
            "Deployment/metrics-prometheus exists under a child's name and is not controlled by \
             this PressureTest; the operator did not delete it"
        );
        let two = kept_message(&[
            "ConfigMap/m-prometheus".into(),
            "Service/m-prometheus".into(),
        ]);
        assert!(
            two.starts_with("ConfigMap/m-prometheus, Service/m-prometheus exist under"),
            "{two}"
        );
        assert!(two.ends_with("did not delete them"), "{two}");
    }

    #[test]
    fn a_refusal_is_announced_once_and_cleared_when_resolved() {
        let mut s = PressureTestStatus::default();
        let foreign = vec!["Secret/db-credentials".to_string()];
        let first = report(&mut s, &foreign, "t1", Some(1)).expect("new refusal");
        assert!(
            first.contains("Secret/db-credentials already exists"),
            "{first}"
        );
        assert_eq!(
            report(&mut s, &foreign, "t2", Some(1)),
            None,
            "no second event"
        );
        let c = s.condition(CHILDREN_OWNED).expect("condition");
        assert_eq!(
            (c.status, c.reason.as_str()),
            (ConditionStatus::False, FOREIGN_OBJECT)
        );
        assert_eq!(report(&mut s, &[], "t3", Some(1)), None);
        let c = s.condition(CHILDREN_OWNED).expect("condition");
        assert_eq!(c.status, ConditionStatus::True);
        let mut fresh = PressureTestStatus::default();
        report(&mut fresh, &[], "t1", Some(1));
        assert!(
            fresh.conditions.is_empty(),
            "no condition while nothing was ever refused"
        );
    }
}
