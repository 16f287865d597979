//! Tenants (PROTOCOL.md §3.5): create or update (partial), read, list, delete, API keys, and the
//! sync status of every tenant.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mailproxy_proto::patch::TenantPatchV1;
use rand::RngCore;
use serde_json::Value;

use super::{OpError, OpResult, scope_required};
use crate::{
    http::{
        AppState,
        auth::{self, Caller},
    },
    store::{now_ts, tenants::Tenant},
};

/// Tenant fields only the admin may change, even on a tenant's own record: a tenant must not
/// lift its own suspension or extend its own key.
const ADMIN_ONLY_FIELDS: [&str; 2] = ["active", "api_key_expires_at"];

/// Where the proxy connects for a tenant (sync calls, `endpoint` attachments, with the
/// credentials in `client_auth`): admin-only too unless `GMP_TENANT_ENDPOINT_SELF_SERVICE` is
/// set (PROTOCOL.md §3.1, "Where we differ from upstream"), so a tenant cannot aim the proxy's
/// requests anywhere.
const CONNECTION_FIELDS: [&str; 4] = [
    "client_base_url",
    "client_sync_path",
    "client_attachment_path",
    "client_auth",
];

/// A tenant written, with its first API key when it was created.
#[derive(Debug)]
pub struct Written {
    /// The tenant as stored.
    pub tenant: Tenant,
    /// The new tenant's API key (shown once).
    pub api_key: Option<String>,
}

fn new_key() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Creates a tenant, or changes the fields the update names (admin).
pub async fn add(state: &AppState, id: &str, patch: TenantPatchV1) -> OpResult<Written> {
    write(state, id, patch, false).await
}

/// Changes the fields the update names of an existing tenant; a tenant token may not name an
/// admin-only field (403), whatever its value.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    patch: TenantPatchV1,
) -> OpResult<Tenant> {
    let id = scope_required(caller, named)?;
    if let Caller::Tenant(_) = caller {
        let connection: &[&str] = if state.tenant_endpoint_self_service {
            &[]
        } else {
            &CONNECTION_FIELDS
        };
        let present = patch.present();
        if let Some(field) = ADMIN_ONLY_FIELDS
            .iter()
            .chain(connection)
            .find(|f| present.contains(*f))
        {
            return Err(OpError::Forbidden(format!(
                "Admin token required to change '{field}'"
            )));
        }
    }
    Ok(write(state, &id, patch, true).await?.tenant)
}

async fn write(
    state: &AppState,
    id: &str,
    patch: TenantPatchV1,
    must_exist: bool,
) -> OpResult<Written> {
    let (tenant, created) = state
        .store
        .upsert_tenant(id, patch, must_exist)
        .await?
        .ok_or_else(|| OpError::TenantNotFound(id.to_string()))?;
    let api_key = if created {
        let key = new_key();
        state
            .store
            .set_api_key_hash(id, Some(&auth::key_hash(&key)), tenant.api_key_expires_at)
            .await?;
        Some(key)
    } else {
        None
    };
    Ok(Written { tenant, api_key })
}

/// One tenant.
pub async fn get(state: &AppState, caller: &Caller, named: Option<&str>) -> OpResult<Tenant> {
    let id = scope_required(caller, named)?;
    state
        .store
        .tenant(&id)
        .await?
        .ok_or(OpError::TenantNotFound(id))
}

/// Every tenant (admin), or only the active ones.
pub async fn list(state: &AppState, active_only: bool) -> OpResult<Vec<Tenant>> {
    Ok(state.store.tenants(active_only).await?)
}

/// Deletes a tenant with its accounts, messages and events (admin).
pub async fn delete(state: &AppState, id: &str) -> OpResult<()> {
    if !state.store.delete_tenant(id).await? {
        return Err(OpError::TenantNotFound(id.to_string()));
    }
    Ok(())
}

/// A new API key for a tenant, replacing its old one (admin).
pub async fn create_key(state: &AppState, id: &str, expires_at: Option<i64>) -> OpResult<String> {
    let key = new_key();
    if !state
        .store
        .set_api_key_hash(id, Some(&auth::key_hash(&key)), expires_at)
        .await?
    {
        return Err(OpError::TenantNotFound(id.to_string()));
    }
    Ok(key)
}

/// Revokes a tenant's API key (admin).
pub async fn revoke_key(state: &AppState, id: &str) -> OpResult<()> {
    if !state.store.set_api_key_hash(id, None, None).await? {
        return Err(OpError::TenantNotFound(id.to_string()));
    }
    Ok(())
}

/// The sync state of every tenant (admin), §4.6.
pub async fn sync_status(state: &AppState) -> OpResult<Vec<Value>> {
    Ok(state
        .store
        .sync_status(now_ts(), state.sync_interval, state.report_max_attempts)
        .await?)
}
