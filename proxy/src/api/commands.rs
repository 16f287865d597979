//! Commands (PROTOCOL.md §4.5, §3.3): run-now, and suspending or activating a tenant or single
//! batches of it.

use super::{OpError, OpResult, scope, scope_required};
use crate::http::{AppState, auth::Caller};

/// Asks for a tenant's sync now (overriding do-not-disturb and backoff) when one is named or
/// the caller is a tenant, then wakes the sync loop and the dispatcher.
pub async fn run_now(state: &AppState, caller: &Caller, named: Option<&str>) -> OpResult<()> {
    if let Some(tenant) = scope(caller, named)?
        && !state.store.request_sync(&tenant).await?
    {
        return Err(OpError::TenantNotFound(tenant));
    }
    state.sync_wake.notify_one();
    state.dispatch_wake.notify_one();
    Ok(())
}

/// A tenant's suspension after a change.
#[derive(Debug)]
pub struct Suspension {
    /// The tenant.
    pub tenant_id: String,
    /// `["*"]` when everything is suspended, else the suspended batch codes, sorted.
    pub suspended_batches: Vec<String>,
    /// The batch the change named.
    pub batch_code: Option<String>,
    /// The tenant's unsent messages (of that batch when named).
    pub pending_messages: i64,
}

/// The new suspension list after suspending `batch` (None = everything).
fn suspended_after_suspend(current: Option<&str>, batch: Option<&str>) -> Option<String> {
    match (current, batch) {
        (_, None) | (Some("*"), _) => Some("*".into()),
        (cur, Some(b)) => {
            let mut list: Vec<&str> = cur
                .map(|c| c.split(',').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default();
            if !list.contains(&b) {
                list.push(b);
            }
            list.sort_unstable();
            Some(list.join(","))
        }
    }
}

/// The new suspension list after activating `batch` (None = everything).
fn suspended_after_activate(
    current: Option<&str>,
    batch: Option<&str>,
) -> OpResult<Option<String>> {
    match (current, batch) {
        (_, None) => Ok(None),
        (Some("*"), Some(_)) => Err(OpError::AllSuspended),
        (cur, Some(b)) => {
            let list: Vec<&str> = cur
                .map(|c| c.split(',').filter(|s| !s.is_empty() && *s != b).collect())
                .unwrap_or_default();
            Ok((!list.is_empty()).then(|| list.join(",")))
        }
    }
}

/// The stored list as codes.
pub fn as_list(v: Option<&str>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// Suspends (or, with `suspend` false, activates) a tenant's batch, or all of it.
pub async fn change(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    batch: Option<&str>,
    suspend: bool,
) -> OpResult<Suspension> {
    let tenant_id = scope_required(caller, named)?;
    let batch = batch.filter(|b| !b.is_empty());
    let Some(tenant) = state.store.tenant(&tenant_id).await? else {
        return Err(OpError::TenantNotFound(tenant_id));
    };
    let current = tenant.suspended_batches.as_deref();
    let new = if suspend {
        suspended_after_suspend(current, batch)
    } else {
        suspended_after_activate(current, batch)?
    };
    state
        .store
        .set_suspended(&tenant_id, new.as_deref())
        .await?;
    if !suspend {
        state.dispatch_wake.notify_one();
    }
    let pending_messages = state
        .store
        .count_pending_for_tenant(&tenant_id, batch)
        .await?;
    Ok(Suspension {
        tenant_id,
        suspended_batches: as_list(new.as_deref()),
        batch_code: batch.map(str::to_string),
        pending_messages,
    })
}

/// A tenant's suspended batches.
pub async fn suspended(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
) -> OpResult<(String, Vec<String>)> {
    let tenant_id = scope_required(caller, named)?;
    let t = state
        .store
        .tenant(&tenant_id)
        .await?
        .ok_or_else(|| OpError::TenantNotFound(tenant_id.clone()))?;
    Ok((tenant_id, as_list(t.suspended_batches.as_deref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspension_lists_follow_the_contract() {
        assert_eq!(suspended_after_suspend(None, None).as_deref(), Some("*"));
        assert_eq!(
            suspended_after_suspend(Some("b"), Some("a")).as_deref(),
            Some("a,b")
        );
        assert_eq!(
            suspended_after_suspend(Some("*"), Some("a")).as_deref(),
            Some("*")
        );
        assert_eq!(
            suspended_after_activate(Some("a,b"), Some("a")).unwrap(),
            Some("b".into())
        );
        assert_eq!(
            suspended_after_activate(Some("a"), Some("a")).unwrap(),
            None
        );
        assert!(matches!(
            suspended_after_activate(Some("*"), Some("a")),
            Err(OpError::AllSuspended)
        ));
        assert_eq!(suspended_after_activate(Some("*"), None).unwrap(), None);
    }
}
