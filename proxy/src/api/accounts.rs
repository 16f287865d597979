//! SMTP accounts (PROTOCOL.md §3.5): create or update (partial), read, list (all, or the PEC
//! ones), delete. Passwords are write-only.

use mailproxy_proto::patch::AccountPatchV1;
use serde_json::Value;

use super::{OpError, OpResult, scope_required};
use crate::{
    http::{AppState, auth::Caller},
    metrics::AccountLabels,
    store::accounts::Account,
};

/// Creates an account, or changes the fields the update names; a new account needs `host` and
/// `port`.
pub async fn upsert(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    id: &str,
    patch: AccountPatchV1,
) -> OpResult<Account> {
    let tenant_id = scope_required(caller, named)?;
    for (field, given) in [
        ("host", patch.host.is_present()),
        ("port", patch.port.is_present()),
    ] {
        if !given && state.store.account(&tenant_id, id).await?.is_none() {
            return Err(OpError::Missing(field));
        }
    }
    let tenant = state
        .store
        .tenant(&tenant_id)
        .await?
        .ok_or_else(|| OpError::TenantNotFound(tenant_id.clone()))?;
    let account = state
        .store
        .upsert_account(&tenant_id, id, patch)
        .await?
        .ok_or_else(|| OpError::Refused("host and port are required".into()))?;
    state.metrics.touch_account(&AccountLabels::new(
        &tenant_id,
        tenant.name.as_deref(),
        Some(&account.id),
    ));
    Ok(account)
}

/// A tenant's accounts, by id.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
) -> OpResult<Vec<Account>> {
    let tenant_id = scope_required(caller, named)?;
    Ok(state.store.accounts(&tenant_id).await?)
}

/// A tenant's PEC accounts (`is_pec_account` true; stored only, D19).
pub async fn list_pec(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
) -> OpResult<Vec<Account>> {
    let mut accounts = list(state, caller, named).await?;
    accounts.retain(|a| a.extra.get("is_pec_account") == Some(&Value::Bool(true)));
    Ok(accounts)
}

/// One account of a tenant.
pub async fn get(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    id: &str,
) -> OpResult<Account> {
    let tenant_id = scope_required(caller, named)?;
    state
        .store
        .account(&tenant_id, id)
        .await?
        .ok_or_else(|| OpError::AccountNotFound(id.to_string()))
}

/// Deletes an account of a tenant.
pub async fn delete(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    id: &str,
) -> OpResult<()> {
    let tenant_id = scope_required(caller, named)?;
    if !state.store.delete_account(&tenant_id, id).await? {
        return Err(OpError::AccountNotFound(id.to_string()));
    }
    Ok(())
}
