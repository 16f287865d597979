//! Tenants' storages (PROTOCOL.md §3.4), generated dialect only, tenant-scoped: named places a
//! tenant's files live, stored and returned (D19: attachments do not read them). Only
//! `protocol: "local"` with a `config.base_path` inside `GMP_ATTACHMENT_BASE_DIR` is accepted.

use std::path::{Component, Path};

use axum::{Json, extract::State};
use serde_json::{Value, json};

use super::{
    AppState,
    auth::{self, Authed},
    input::{Body, Query, required_str},
};
use crate::error::{ApiResult, AppError};

/// Checks a `local` storage's `base_path`: inside the base folder, without `..`.
fn check_local(state: &AppState, config: &Value) -> Result<(), AppError> {
    let Some(base) = &state.attachment_base_dir else {
        return Err(AppError::bad_request(
            "Local storages need GMP_ATTACHMENT_BASE_DIR",
        ));
    };
    let path = config
        .get("base_path")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AppError::bad_request("config.base_path is required"))?;
    let p = Path::new(path);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    if joined
        .components()
        .any(|c| matches!(c, Component::ParentDir))
        || !joined.starts_with(base)
    {
        return Err(AppError::bad_request(
            "config.base_path must lie inside GMP_ATTACHMENT_BASE_DIR",
        ));
    }
    Ok(())
}

/// `POST /storages/add` with `{tenant_id, name, protocol, config}`: creates or replaces.
pub async fn add(State(state): State<AppState>, Authed(caller): Authed, body: Body) -> ApiResult {
    let body = body.object()?;
    let tenant_id = auth::scope_required(&caller, body.get("tenant_id").and_then(Value::as_str))?;
    let name = required_str(&body, "name")?;
    let protocol = required_str(&body, "protocol")?;
    let config = body.get("config").cloned().unwrap_or_else(|| json!({}));
    if protocol != "local" {
        return Err(AppError::bad_request("Unsupported storage protocol"));
    }
    check_local(&state, &config)?;
    if state.store.tenant(&tenant_id).await?.is_none() {
        return Err(AppError::tenant_not_found(&tenant_id));
    }
    let storage = state
        .store
        .upsert_storage(&tenant_id, name, protocol, &config)
        .await?
        .ok_or_else(|| AppError::tenant_not_found(&tenant_id))?;
    Ok(Json(storage.to_json()))
}

/// `POST /storages/delete` with `{tenant_id, name}`.
pub async fn delete(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: Body,
) -> ApiResult {
    let body = body.object()?;
    let tenant_id = auth::scope_required(&caller, body.get("tenant_id").and_then(Value::as_str))?;
    let name = required_str(&body, "name")?;
    let ok = state.store.delete_storage(&tenant_id, name).await?;
    Ok(Json(
        json!({"ok": ok, "tenant_id": tenant_id, "name": name}),
    ))
}

/// `GET /storages/get?tenant_id=&name=`.
pub async fn get(State(state): State<AppState>, Authed(caller): Authed, q: Query) -> ApiResult {
    let tenant_id = auth::scope_required(&caller, q.get("tenant_id").map(String::as_str))?;
    let name = q.get("name").ok_or_else(|| AppError::missing("name"))?;
    state
        .store
        .storage(&tenant_id, name)
        .await?
        .map(|s| Json(s.to_json()))
        .ok_or_else(|| AppError::not_found(format!("Storage '{name}' not found")))
}

/// `GET /storages/list?tenant_id=`.
pub async fn list(State(state): State<AppState>, Authed(caller): Authed, q: Query) -> ApiResult {
    let tenant_id = auth::scope_required(&caller, q.get("tenant_id").map(String::as_str))?;
    let list = state.store.storages(&tenant_id).await?;
    Ok(Json(Value::Array(
        list.iter().map(|s| s.to_json()).collect(),
    )))
}
