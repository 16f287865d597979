//! SMTP accounts in both dialects (PROTOCOL.md §3.3, §3.4, §3.5): upsert with the `smtp_*`
//! aliases, get, list, delete. Passwords are write-only.

use axum::{
    Json,
    extract::{Path, State},
};
use mailproxy_proto::patch::AccountPatchV1;
use serde_json::{Map, Value, json};

use super::{
    AppState,
    auth::{self, Authed, Caller},
    input::{Body, Query, required_str},
};
use crate::{
    error::{ApiResult, AppError},
    metrics::AccountLabels,
};

async fn upsert(
    state: &AppState,
    caller: &Caller,
    body: &Map<String, Value>,
) -> Result<Value, AppError> {
    let tenant_id = auth::scope_required(caller, body.get("tenant_id").and_then(Value::as_str))?;
    let id = required_str(body, "id")?;
    let patch =
        AccountPatchV1::from_json(body).map_err(|e| AppError::bad_request(e.to_string()))?;
    for (field, given) in [
        ("host", patch.host.is_present()),
        ("port", patch.port.is_present()),
    ] {
        if !given && state.store.account(&tenant_id, id).await?.is_none() {
            return Err(AppError::missing(field));
        }
    }
    let tenant = state
        .store
        .tenant(&tenant_id)
        .await?
        .ok_or_else(|| AppError::tenant_not_found(&tenant_id))?;
    let account = state
        .store
        .upsert_account(&tenant_id, id, patch)
        .await?
        .ok_or_else(|| AppError::bad_request("host and port are required"))?;
    state.metrics.touch_account(&AccountLabels::new(
        &tenant_id,
        tenant.name.as_deref(),
        Some(&account.id),
    ));
    Ok(account.to_json(false))
}

/// `POST /account` (tenant-scoped).
pub async fn add_classic(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: Body,
) -> ApiResult {
    upsert(&state, &caller, &body.object()?).await?;
    Ok(Json(json!({"ok": true})))
}

/// `POST /accounts/add` (tenant-scoped): answers the Account.
pub async fn add_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: Body,
) -> ApiResult {
    Ok(Json(upsert(&state, &caller, &body.object()?).await?))
}

async fn list(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    classic: bool,
) -> Result<Vec<Value>, AppError> {
    let tenant_id = auth::scope_required(caller, named)?;
    Ok(state
        .store
        .accounts(&tenant_id)
        .await?
        .iter()
        .map(|a| a.to_json(classic))
        .collect())
}

/// `GET /accounts?tenant_id=`.
pub async fn list_classic(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
) -> ApiResult {
    let accounts = list(
        &state,
        &caller,
        q.get("tenant_id").map(String::as_str),
        true,
    )
    .await?;
    Ok(Json(json!({"ok": true, "accounts": accounts})))
}

/// `GET /accounts/list?tenant_id=`.
pub async fn list_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
) -> ApiResult {
    Ok(Json(Value::Array(
        list(
            &state,
            &caller,
            q.get("tenant_id").map(String::as_str),
            false,
        )
        .await?,
    )))
}

/// `GET /accounts/get?tenant_id=&account_id=`.
pub async fn get_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
) -> ApiResult {
    let tenant_id = auth::scope_required(&caller, q.get("tenant_id").map(String::as_str))?;
    let id = q
        .get("account_id")
        .ok_or_else(|| AppError::missing("account_id"))?;
    let a = state
        .store
        .account(&tenant_id, id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Account '{id}' not found")))?;
    Ok(Json(a.to_json(false)))
}

/// `DELETE /account/{account_id}?tenant_id=`: 400 when unknown (classic code).
pub async fn delete_classic(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult {
    let tenant_id = auth::scope_required(&caller, q.get("tenant_id").map(String::as_str))?;
    if !state.store.delete_account(&tenant_id, &id).await? {
        return Err(AppError::bad_request(
            "account not found or not owned by tenant",
        ));
    }
    Ok(Json(json!({"ok": true})))
}

/// `POST /accounts/delete`: 404 when unknown.
pub async fn delete_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: Body,
) -> ApiResult {
    let body = body.object()?;
    let tenant_id = auth::scope_required(&caller, body.get("tenant_id").and_then(Value::as_str))?;
    let id = required_str(&body, "account_id")?;
    if !state.store.delete_account(&tenant_id, id).await? {
        return Err(AppError::not_found(format!("Account '{id}' not found")));
    }
    Ok(Json(json!({"ok": true})))
}

/// A tenant's PEC accounts (`is_pec_account` true; stored only, D19).
async fn pec_accounts(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
) -> Result<Vec<Value>, AppError> {
    let tenant_id = auth::scope_required(caller, named)?;
    Ok(state
        .store
        .accounts(&tenant_id)
        .await?
        .iter()
        .filter(|a| a.extra.get("is_pec_account") == Some(&Value::Bool(true)))
        .map(|a| a.to_json(false))
        .collect())
}

/// `GET /accounts/list_pec?tenant_id=`.
pub async fn list_pec(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
) -> ApiResult {
    let list = pec_accounts(&state, &caller, q.get("tenant_id").map(String::as_str)).await?;
    Ok(Json(Value::Array(list)))
}

/// `GET /accounts/get_pec_ids?tenant_id=`: the ids of the PEC accounts.
pub async fn pec_ids(State(state): State<AppState>, Authed(caller): Authed, q: Query) -> ApiResult {
    let list = pec_accounts(&state, &caller, q.get("tenant_id").map(String::as_str)).await?;
    Ok(Json(Value::Array(
        list.into_iter().map(|a| a["id"].clone()).collect(),
    )))
}

/// `POST /accounts/add_pec`: as `/accounts/add`, marked `is_pec_account`.
pub async fn add_pec(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: Body,
) -> ApiResult {
    let mut body = body.object()?;
    body.insert("is_pec_account".into(), Value::Bool(true));
    Ok(Json(upsert(&state, &caller, &body).await?))
}
