//! Tenants' storages (PROTOCOL.md §3.4): named places a tenant's files live, stored and
//! returned (D19: attachments do not read them). Only `protocol: "local"` with a
//! `config.base_path` inside `GMP_ATTACHMENT_BASE_DIR` is accepted.

use std::path::{Component, Path};

use serde_json::Value;

use super::{OpError, OpResult, scope_required};
use crate::{
    http::{AppState, auth::Caller},
    store::admin::Storage,
};

/// A storage to create or replace.
#[derive(Debug, Clone)]
pub struct NewStorage {
    /// Name, unique per tenant.
    pub name: String,
    /// `local`.
    pub protocol: String,
    /// `{"base_path": …}`.
    pub config: Value,
}

/// Checks a `local` storage's `base_path`: inside the base folder, without `..`.
fn check_local(base: Option<&Path>, config: &Value) -> OpResult<()> {
    let Some(base) = base else {
        return Err(OpError::Refused(
            "Local storages need GMP_ATTACHMENT_BASE_DIR".into(),
        ));
    };
    let path = config
        .get("base_path")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| OpError::Refused("config.base_path is required".into()))?;
    let joined = base.join(path);
    if joined
        .components()
        .any(|c| matches!(c, Component::ParentDir))
        || !joined.starts_with(base)
    {
        return Err(OpError::Refused(
            "config.base_path must lie inside GMP_ATTACHMENT_BASE_DIR".into(),
        ));
    }
    Ok(())
}

/// Creates or replaces a storage of an existing tenant.
pub async fn add(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    new: &NewStorage,
) -> OpResult<Storage> {
    let tenant_id = scope_required(caller, named)?;
    if new.protocol != "local" {
        return Err(OpError::Refused("Unsupported storage protocol".into()));
    }
    check_local(state.attachment_base_dir.as_deref(), &new.config)?;
    if state.store.tenant(&tenant_id).await?.is_none() {
        return Err(OpError::TenantNotFound(tenant_id));
    }
    state
        .store
        .upsert_storage(&tenant_id, &new.name, &new.protocol, &new.config)
        .await?
        .ok_or(OpError::TenantNotFound(tenant_id))
}

/// Deletes a storage: the tenant, and whether there was one.
pub async fn delete(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    name: &str,
) -> OpResult<(String, bool)> {
    let tenant_id = scope_required(caller, named)?;
    let deleted = state.store.delete_storage(&tenant_id, name).await?;
    Ok((tenant_id, deleted))
}

/// One storage.
pub async fn get(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    name: &str,
) -> OpResult<Storage> {
    let tenant_id = scope_required(caller, named)?;
    state
        .store
        .storage(&tenant_id, name)
        .await?
        .ok_or_else(|| OpError::StorageNotFound(name.to_string()))
}

/// A tenant's storages, by name.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
) -> OpResult<Vec<Storage>> {
    let tenant_id = scope_required(caller, named)?;
    Ok(state.store.storages(&tenant_id).await?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn local_storages_stay_inside_the_base_folder() {
        let base = Path::new("/srv/att");
        let check = |p: &str| check_local(Some(base), &json!({"base_path": p})).is_ok();
        assert!(check("t1/docs"));
        assert!(check("/srv/att/t1"));
        assert!(!check("/etc"));
        assert!(!check("t1/../../etc"));
        assert!(!check("/srv/attic"), "a sibling sharing the prefix");
        assert!(check_local(None, &json!({"base_path": "x"})).is_err());
        assert!(check_local(Some(base), &json!({})).is_err());
    }
}
