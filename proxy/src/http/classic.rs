//! The classic dialect (PROTOCOL.md §3.3): hand-written routes (`/commands/*`, `/tenant/{id}`,
//! `/account`, `/messages`, `/instance`, `/command-log`) as upstream's pressure harness and our
//! client call them. Each handler parses its input ([`super::wire`]), calls one operation of
//! [`crate::api`] and answers in this dialect's shape: `{"ok": true, …}` wrappers, records
//! without nulls, and the codes its routes document (400 where the generated dialect says 404
//! or 409).

use axum::{
    Json,
    extract::{Path, State},
    http::HeaderMap,
};
use serde_json::{Value, json};

use super::{
    AppState,
    auth::{AdminOnly, Authed},
    input::{Asked, Body, Posted, Query, flag, int, int_of, required_str},
    wire::{self, named, ok, param},
};
use crate::{
    api::{self, OpError},
    error::{ApiResult, AppError},
};

/// `POST /commands/run-now` (also `/instance/run_now`): body `tenant_id`?.
pub async fn run_now(State(state): State<AppState>, Posted { caller, body }: Posted) -> ApiResult {
    api::commands::run_now(&state, &caller, named(&body, "tenant_id")).await?;
    ok()
}

/// Suspend and activate answer an unknown tenant, and activating one batch under `*`, with 400.
async fn change(state: &AppState, caller: Authed, q: &Query, suspend: bool) -> ApiResult {
    let batch = param(q, "batch_code");
    api::commands::change(state, &caller.0, param(q, "tenant_id"), batch, suspend)
        .await
        .map(|s| wire::suspension(&s))
        .map_err(|e| match e {
            OpError::TenantNotFound(_) if suspend => AppError::bad_request("tenant not found"),
            OpError::TenantNotFound(_) | OpError::AllSuspended => AppError::bad_request(
                "tenant not found or cannot activate single batch from full suspension",
            ),
            other => other.into(),
        })
}

/// `POST /commands/suspend?tenant_id=&batch_code=`.
pub async fn suspend(State(state): State<AppState>, caller: Authed, q: Query) -> ApiResult {
    change(&state, caller, &q, true).await
}

/// `POST /commands/activate?tenant_id=&batch_code=`.
pub async fn activate(State(state): State<AppState>, caller: Authed, q: Query) -> ApiResult {
    change(&state, caller, &q, false).await
}

/// `POST /commands/add-messages` (also `/messages/add_batch`).
pub async fn add_messages(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: Body,
) -> ApiResult {
    let add = wire::add_batch(&body.object()?)?;
    wire::added(&api::messages::add(&state, &caller, &add).await?)
}

/// `POST /commands/delete-messages?tenant_id=` (else body `tenant_id`), body `ids`.
pub async fn delete_messages(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
    body: Body,
) -> ApiResult {
    let body = body.object()?;
    let tenant = param(&q, "tenant_id").or(named(&body, "tenant_id"));
    let d = api::messages::delete(&state, &caller, tenant, &wire::ids(&body)?).await?;
    Ok(wire::deleted(&d))
}

/// `POST /commands/cleanup-messages?tenant_id=` (else body `tenant_id`), body
/// `older_than_seconds`?.
pub async fn cleanup_messages(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
    body: Body,
) -> ApiResult {
    let body = body.object()?;
    let tenant = param(&q, "tenant_id").or(named(&body, "tenant_id"));
    let older = int_of(&body, "older_than_seconds")?;
    let removed = api::messages::cleanup(&state, &caller, tenant, older).await?;
    Ok(wire::removed(removed))
}

/// `GET /messages?tenant_id=&active_only=&include_history=&limit=&offset=`: records add
/// `sent_ts` and drop nulls; `next_offset` in the body and the header when more rows follow.
pub async fn messages(
    State(state): State<AppState>,
    Asked { caller, q }: Asked,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let mut page = api::messages::list(&state, &caller, &wire::list_query(&q)?).await?;
    for m in page.records.iter_mut().filter_map(Value::as_object_mut) {
        let sent = m.get("status") == Some(&json!("sent"));
        let smtp = m.get("smtp_ts").cloned().unwrap_or(Value::Null);
        m.insert("sent_ts".into(), if sent { smtp } else { Value::Null });
        m.retain(|_, v| !v.is_null());
    }
    let mut body = json!({"ok": true, "messages": page.records});
    if let Some(next) = page.next_offset {
        body["next_offset"] = json!(next);
    }
    Ok((wire::page_headers(&page), Json(body)))
}

/// `POST /account`: an Account with `tenant_id` in the body.
pub async fn add_account(
    State(state): State<AppState>,
    Posted { caller, body }: Posted,
) -> ApiResult {
    let id = required_str(&body, "id")?;
    let patch = wire::account_patch(&body)?;
    api::accounts::upsert(&state, &caller, named(&body, "tenant_id"), id, patch).await?;
    ok()
}

/// `GET /accounts?tenant_id=`.
pub async fn accounts(State(state): State<AppState>, Asked { caller, q }: Asked) -> ApiResult {
    let list = api::accounts::list(&state, &caller, param(&q, "tenant_id")).await?;
    let list: Vec<Value> = list.iter().map(|a| a.to_json(true)).collect();
    Ok(Json(json!({"ok": true, "accounts": list})))
}

/// `DELETE /account/{account_id}?tenant_id=`: 400 when unknown.
pub async fn delete_account(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult {
    api::accounts::delete(&state, &caller, param(&q, "tenant_id"), &id)
        .await
        .map_err(|e| match e {
            OpError::AccountNotFound(_) => {
                AppError::bad_request("account not found or not owned by tenant")
            }
            other => other.into(),
        })?;
    ok()
}

/// `POST /tenant` (admin): create or update; `api_key` once, when created.
pub async fn add_tenant(State(state): State<AppState>, _: AdminOnly, body: Body) -> ApiResult {
    let body = body.object()?;
    let id = required_str(&body, "id")?;
    let written = api::tenants::add(&state, id, wire::tenant_patch(&body)?).await?;
    let mut out = json!({"ok": true});
    if let Some(k) = written.api_key {
        out["api_key"] = json!(k);
    }
    Ok(Json(out))
}

/// `GET /tenants?active_only=` (admin).
pub async fn tenants(State(state): State<AppState>, _: AdminOnly, q: Query) -> ApiResult {
    let list = api::tenants::list(&state, flag(&q, "active_only")?).await?;
    let list: Vec<Value> = list.iter().map(|t| t.to_json(true)).collect();
    Ok(Json(json!({"ok": true, "tenants": list})))
}

/// `GET /tenants/sync-status` (also `/instance/get_sync_status`), admin.
pub async fn sync_status(State(state): State<AppState>, _: AdminOnly) -> ApiResult {
    let tenants = api::tenants::sync_status(&state).await?;
    Ok(Json(
        json!({"ok": true, "sync_interval_seconds": state.sync_interval, "tenants": tenants}),
    ))
}

/// `GET /tenant/{id}`: the Tenant, without nulls.
pub async fn tenant(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult {
    let t = api::tenants::get(&state, &caller, Some(&id)).await?;
    Ok(Json(t.to_json(true)))
}

/// `PUT /tenant/{id}`.
pub async fn update_tenant(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult {
    let patch = wire::tenant_patch(&body.object()?)?;
    api::tenants::update(&state, &caller, Some(&id), patch).await?;
    ok()
}

/// `DELETE /tenant/{id}` (admin).
pub async fn delete_tenant(
    State(state): State<AppState>,
    _: AdminOnly,
    Path(id): Path<String>,
) -> ApiResult {
    api::tenants::delete(&state, &id).await?;
    ok()
}

/// `POST /tenant/{id}/api-key` (admin), body `expires_at`?.
pub async fn create_key(
    State(state): State<AppState>,
    _: AdminOnly,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult {
    let expires = int_of(&body.object()?, "expires_at")?;
    let key = api::tenants::create_key(&state, &id, expires).await?;
    Ok(Json(json!({"ok": true, "api_key": key})))
}

/// `DELETE /tenant/{id}/api-key` (admin).
pub async fn revoke_key(
    State(state): State<AppState>,
    _: AdminOnly,
    Path(id): Path<String>,
) -> ApiResult {
    api::tenants::revoke_key(&state, &id).await?;
    ok()
}

/// `GET /instance` (admin): the Instance.
pub async fn instance(State(state): State<AppState>, _: AdminOnly) -> ApiResult {
    Ok(Json(api::instance::get(&state).await?))
}

/// `PUT /instance` (also `/instance/update`, `/instance/set_bounce_config`), admin.
pub async fn update_instance(State(state): State<AppState>, _: AdminOnly, body: Body) -> ApiResult {
    let update = wire::instance_update(&body.object()?)?;
    api::instance::update(&state, &update).await?;
    ok()
}

/// `POST /instance/reload-bounce` (also `/instance/reload_bounce`), admin.
pub async fn reload_bounce(State(state): State<AppState>, _: AdminOnly) -> ApiResult {
    api::instance::reload_bounce(&state).await?;
    ok()
}

/// `POST /instance/upgrade-to-ee` (also `/instance/upgrade_to_ee`), admin: every feature is
/// already on.
pub async fn upgrade_to_ee(_: AdminOnly) -> ApiResult {
    Ok(Json(
        json!({"ok": true, "edition": "ee", "message": "Already Enterprise Edition: every feature is available"}),
    ))
}

/// `GET /command-log?tenant_id&since_ts&until_ts&endpoint_filter&limit=100&offset=0` (admin):
/// entries without their answers, and how many match.
pub async fn command_log(State(state): State<AppState>, _: AdminOnly, q: Query) -> ApiResult {
    let filter = wire::command_filter(&q)?;
    let (limit, offset) = (int(&q, "limit", 100)?, int(&q, "offset", 0)?);
    let (entries, total) = api::instance::commands(&state, &filter, limit, offset).await?;
    let commands: Vec<Value> = entries
        .iter()
        .map(|c| {
            let mut v = c.to_json();
            if let Some(m) = v.as_object_mut() {
                m.remove("response_body");
            }
            v
        })
        .collect();
    Ok(Json(
        json!({"ok": true, "commands": commands, "total": total}),
    ))
}

/// `GET /command-log/export?tenant_id&since_ts&until_ts` (admin), at most 100,000 entries.
pub async fn command_log_export(
    State(state): State<AppState>,
    _: AdminOnly,
    q: Query,
) -> ApiResult {
    let commands = wire::export(&state, &q).await?;
    Ok(Json(json!({"ok": true, "commands": commands})))
}
