//! Tenants in both dialects (PROTOCOL.md §3.3, §3.4): create/update (partial upsert), get, list,
//! delete, API keys, sync status.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mailproxy_proto::patch::TenantPatchV1;
use rand::RngCore;
use serde_json::{Map, Value, json};

use super::{
    AppState,
    auth::{self, AdminOnly, Authed, Caller},
    input::{Body, Query, flag, int_of, params, required_str},
};
use crate::{
    error::{ApiResult, AppError},
    store::now_ts,
};

fn new_key() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The tenant fields of a body, parsed once (400 naming a field of the wrong type).
fn patch_of(body: &Map<String, Value>) -> Result<TenantPatchV1, AppError> {
    TenantPatchV1::from_json(body).map_err(|e| AppError::bad_request(e.to_string()))
}

async fn upsert(
    state: &AppState,
    id: &str,
    patch: TenantPatchV1,
    must_exist: bool,
) -> Result<(Value, Option<String>), AppError> {
    let (tenant, created) = state
        .store
        .upsert_tenant(id, patch, must_exist)
        .await?
        .ok_or_else(|| AppError::tenant_not_found(id))?;
    let key = if created {
        let key = new_key();
        state
            .store
            .set_api_key_hash(id, Some(&auth::key_hash(&key)), tenant.api_key_expires_at)
            .await?;
        Some(key)
    } else {
        None
    };
    Ok((tenant.to_json(false), key))
}

/// `POST /tenant` (admin): create or partially update; `api_key` only when new.
pub async fn add_classic(State(state): State<AppState>, _: AdminOnly, body: Body) -> ApiResult {
    let body = body.object()?;
    let id = required_str(&body, "id")?.to_string();
    let (_, key) = upsert(&state, &id, patch_of(&body)?, false).await?;
    let mut out = json!({"ok": true});
    if let Some(k) = key {
        out["api_key"] = json!(k);
    }
    Ok(Json(out))
}

/// `POST /tenants/add` (admin): as add, answering the Tenant.
pub async fn add_generated(State(state): State<AppState>, _: AdminOnly, body: Body) -> ApiResult {
    let body = body.object()?;
    let id = required_str(&body, "id")?.to_string();
    let (mut tenant, key) = upsert(&state, &id, patch_of(&body)?, false).await?;
    if let Some(k) = key {
        tenant["api_key"] = json!(k);
    }
    Ok(Json(tenant))
}

/// Tenant fields only the admin may change, even on a tenant's own record: a tenant must not
/// lift its own suspension or extend its own key.
const ADMIN_ONLY_FIELDS: [&str; 2] = ["active", "api_key_expires_at"];

/// Where the proxy connects for a tenant (sync calls, `endpoint` attachments, with the
/// credentials in `client_auth`): admin-only too unless `GMP_TENANT_ENDPOINT_SELF_SERVICE` is
/// set (PROTOCOL.md §3.1, "Where we differ from upstream"), so a tenant cannot aim the proxy's requests anywhere.
const CONNECTION_FIELDS: [&str; 4] = [
    "client_base_url",
    "client_sync_path",
    "client_attachment_path",
    "client_auth",
];

/// Refuses (403) a tenant token's update that names an admin-only field, whatever its value.
fn check_patch(state: &AppState, caller: &Caller, patch: &TenantPatchV1) -> Result<(), AppError> {
    let Caller::Tenant(_) = caller else {
        return Ok(());
    };
    let connection: &[&str] = if state.tenant_endpoint_self_service {
        &[]
    } else {
        &CONNECTION_FIELDS
    };
    let named = patch.present();
    if let Some(field) = ADMIN_ONLY_FIELDS
        .iter()
        .chain(connection)
        .find(|f| named.contains(*f))
    {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            format!("Admin token required to change '{field}'"),
        ));
    }
    Ok(())
}

/// `PUT /tenant/{id}` (tenant-scoped).
pub async fn update_classic(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult {
    auth::scope(&caller, Some(&id))?;
    let patch = patch_of(&body.object()?)?;
    check_patch(&state, &caller, &patch)?;
    upsert(&state, &id, patch, true).await?;
    Ok(Json(json!({"ok": true})))
}

/// `POST /tenants/update` (tenant-scoped).
pub async fn update_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: Body,
) -> ApiResult {
    let body = body.object()?;
    let id = auth::scope_required(&caller, body.get("tenant_id").and_then(Value::as_str))?;
    let patch = patch_of(&body)?;
    check_patch(&state, &caller, &patch)?;
    let (tenant, _) = upsert(&state, &id, patch, true).await?;
    Ok(Json(tenant))
}

async fn get_one(
    state: &AppState,
    caller: &auth::Caller,
    id: Option<&str>,
    classic: bool,
) -> ApiResult {
    let id = auth::scope_required(caller, id)?;
    let t = state
        .store
        .tenant(&id)
        .await?
        .ok_or_else(|| AppError::tenant_not_found(&id))?;
    Ok(Json(t.to_json(classic)))
}

/// `GET /tenant/{id}`.
pub async fn get_classic(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult {
    get_one(&state, &caller, Some(&id), true).await
}

/// `GET /tenants/get?tenant_id=`.
pub async fn get_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
) -> ApiResult {
    get_one(
        &state,
        &caller,
        q.get("tenant_id").map(String::as_str),
        false,
    )
    .await
}

/// `GET /tenants?active_only=` (admin).
pub async fn list_classic(State(state): State<AppState>, _: AdminOnly, q: Query) -> ApiResult {
    let list: Vec<Value> = state
        .store
        .tenants(flag(&q, "active_only")?)
        .await?
        .iter()
        .map(|t| t.to_json(true))
        .collect();
    Ok(Json(json!({"ok": true, "tenants": list})))
}

/// `GET /tenants/list` (admin).
pub async fn list_generated(State(state): State<AppState>, _: AdminOnly, q: Query) -> ApiResult {
    let list: Vec<Value> = state
        .store
        .tenants(flag(&q, "active_only")?)
        .await?
        .iter()
        .map(|t| t.to_json(false))
        .collect();
    Ok(Json(Value::Array(list)))
}

async fn delete(state: &AppState, id: &str) -> ApiResult {
    if !state.store.delete_tenant(id).await? {
        return Err(AppError::tenant_not_found(id));
    }
    Ok(Json(json!({"ok": true})))
}

/// `DELETE /tenant/{id}` (admin).
pub async fn delete_classic(
    State(state): State<AppState>,
    _: AdminOnly,
    Path(id): Path<String>,
) -> ApiResult {
    delete(&state, &id).await
}

/// `POST /tenants/delete` (admin).
pub async fn delete_generated(
    State(state): State<AppState>,
    _: AdminOnly,
    body: Body,
) -> ApiResult {
    let body = body.object()?;
    delete(&state, required_str(&body, "tenant_id")?).await
}

async fn create_key(
    state: &AppState,
    id: &str,
    expires_at: Option<i64>,
) -> Result<String, AppError> {
    let key = new_key();
    if !state
        .store
        .set_api_key_hash(id, Some(&auth::key_hash(&key)), expires_at)
        .await?
    {
        return Err(AppError::tenant_not_found(id));
    }
    Ok(key)
}

/// `POST /tenant/{id}/api-key` (admin).
pub async fn create_key_classic(
    State(state): State<AppState>,
    _: AdminOnly,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult {
    let expires = int_of(&body.object()?, "expires_at")?;
    let key = create_key(&state, &id, expires).await?;
    Ok(Json(json!({"ok": true, "api_key": key})))
}

/// `POST /tenants/create_api_key` (admin).
pub async fn create_key_generated(
    State(state): State<AppState>,
    _: AdminOnly,
    body: Body,
) -> ApiResult {
    let body = body.object()?;
    let id = required_str(&body, "tenant_id")?.to_string();
    let key = create_key(&state, &id, int_of(&body, "expires_at")?).await?;
    Ok(Json(
        json!({"ok": true, "tenant_id": id, "api_key": key, "message": "Save this API key - it will not be shown again."}),
    ))
}

async fn revoke_key(state: &AppState, id: &str) -> Result<(), AppError> {
    if !state.store.set_api_key_hash(id, None, None).await? {
        return Err(AppError::tenant_not_found(id));
    }
    Ok(())
}

/// `DELETE /tenant/{id}/api-key` (admin).
pub async fn revoke_key_classic(
    State(state): State<AppState>,
    _: AdminOnly,
    Path(id): Path<String>,
) -> ApiResult {
    revoke_key(&state, &id).await?;
    Ok(Json(json!({"ok": true})))
}

/// `POST /tenants/revoke_api_key` (admin).
pub async fn revoke_key_generated(
    State(state): State<AppState>,
    _: AdminOnly,
    body: Body,
) -> ApiResult {
    let body = body.object()?;
    let id = required_str(&body, "tenant_id")?.to_string();
    revoke_key(&state, &id).await?;
    Ok(Json(
        json!({"ok": true, "tenant_id": id, "message": "API key revoked"}),
    ))
}

/// `GET /tenants/sync-status` and `/instance/get_sync_status` (admin).
pub async fn sync_status(State(state): State<AppState>, _: AdminOnly, q: Query) -> ApiResult {
    let _ = params(&q);
    let tenants = state
        .store
        .sync_status(now_ts(), state.sync_interval, state.report_max_attempts)
        .await?;
    Ok(Json(
        json!({"ok": true, "sync_interval_seconds": state.sync_interval, "tenants": tenants}),
    ))
}
