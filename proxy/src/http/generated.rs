//! The generated dialect (PROTOCOL.md §3.4): `/{entity}/{method}` routes, as upstream's current
//! clients call them. `GET` routes read the query, `POST` routes the JSON body. Each handler
//! parses its input ([`super::wire`]), calls one operation of [`crate::api`] and answers in this
//! dialect's shape: bare records and arrays, 404 for what is not there, 409 for a conflict.
//! Routes whose wire is the same in both dialects (run-now, sync status, the instance commands)
//! are served by the classic handlers.

use axum::{Json, extract::State, http::HeaderMap};
use serde_json::{Value, json};

use super::{
    AppState,
    auth::AdminOnly,
    input::{Asked, Body, Posted, Query, flag, int, int_of, required_str},
    wire::{self, named, ok, param},
};
use crate::{api, error::ApiResult};

/// `POST /instance/suspend`, `/tenants/suspend_batch`: `tenant_id`, `batch_code`?.
pub async fn suspend(state: State<AppState>, call: Posted) -> ApiResult {
    change(state, call, true).await
}

/// `POST /instance/activate`, `/tenants/activate_batch`: `tenant_id`, `batch_code`?.
pub async fn activate(state: State<AppState>, call: Posted) -> ApiResult {
    change(state, call, false).await
}

async fn change(
    State(state): State<AppState>,
    Posted { caller, body }: Posted,
    suspend: bool,
) -> ApiResult {
    let (tenant, batch) = (named(&body, "tenant_id"), named(&body, "batch_code"));
    let s = api::commands::change(&state, &caller, tenant, batch, suspend).await?;
    Ok(wire::suspension(&s))
}

/// `GET /tenants/get_suspended_batches?tenant_id=`.
pub async fn suspended_batches(
    State(state): State<AppState>,
    Asked { caller, q }: Asked,
) -> ApiResult {
    let (tenant, batches) =
        api::commands::suspended(&state, &caller, param(&q, "tenant_id")).await?;
    Ok(Json(
        json!({"ok": true, "tenant_id": tenant, "suspended_batches": batches}),
    ))
}

/// `POST /tenants/add` (admin): the Tenant, with `api_key` once, when created.
pub async fn add_tenant(State(state): State<AppState>, _: AdminOnly, body: Body) -> ApiResult {
    let body = body.object()?;
    let id = required_str(&body, "id")?;
    let written = api::tenants::add(&state, id, wire::tenant_patch(&body)?).await?;
    let mut tenant = written.tenant.to_json(false);
    if let Some(k) = written.api_key {
        tenant["api_key"] = json!(k);
    }
    Ok(Json(tenant))
}

/// `POST /tenants/update`: `tenant_id` and the fields to change → the Tenant.
pub async fn update_tenant(
    State(state): State<AppState>,
    Posted { caller, body }: Posted,
) -> ApiResult {
    let patch = wire::tenant_patch(&body)?;
    let tenant = api::tenants::update(&state, &caller, named(&body, "tenant_id"), patch).await?;
    Ok(Json(tenant.to_json(false)))
}

/// `GET /tenants/get?tenant_id=`.
pub async fn tenant(State(state): State<AppState>, Asked { caller, q }: Asked) -> ApiResult {
    let t = api::tenants::get(&state, &caller, param(&q, "tenant_id")).await?;
    Ok(Json(t.to_json(false)))
}

/// `GET /tenants/list?active_only=` (admin): a bare array.
pub async fn tenants(State(state): State<AppState>, _: AdminOnly, q: Query) -> ApiResult {
    let list = api::tenants::list(&state, flag(&q, "active_only")?).await?;
    Ok(Json(list.iter().map(|t| t.to_json(false)).collect()))
}

/// `POST /tenants/delete` (admin): `tenant_id`.
pub async fn delete_tenant(State(state): State<AppState>, _: AdminOnly, body: Body) -> ApiResult {
    let body = body.object()?;
    api::tenants::delete(&state, required_str(&body, "tenant_id")?).await?;
    ok()
}

/// `POST /tenants/create_api_key` (admin): `tenant_id`, `expires_at`?.
pub async fn create_key(State(state): State<AppState>, _: AdminOnly, body: Body) -> ApiResult {
    let body = body.object()?;
    let id = required_str(&body, "tenant_id")?;
    let key = api::tenants::create_key(&state, id, int_of(&body, "expires_at")?).await?;
    Ok(Json(
        json!({"ok": true, "tenant_id": id, "api_key": key, "message": "Save this API key - it will not be shown again."}),
    ))
}

/// `POST /tenants/revoke_api_key` (admin): `tenant_id`.
pub async fn revoke_key(State(state): State<AppState>, _: AdminOnly, body: Body) -> ApiResult {
    let body = body.object()?;
    let id = required_str(&body, "tenant_id")?;
    api::tenants::revoke_key(&state, id).await?;
    Ok(Json(
        json!({"ok": true, "tenant_id": id, "message": "API key revoked"}),
    ))
}

/// `POST /accounts/add`: an Account → the Account.
pub async fn add_account(
    State(state): State<AppState>,
    Posted { caller, body }: Posted,
) -> ApiResult {
    let (id, patch) = (required_str(&body, "id")?, wire::account_patch(&body)?);
    let account =
        api::accounts::upsert(&state, &caller, named(&body, "tenant_id"), id, patch).await?;
    Ok(Json(account.to_json(false)))
}

/// `POST /accounts/add_pec`: as `/accounts/add`, marked `is_pec_account`.
pub async fn add_pec_account(state: State<AppState>, mut call: Posted) -> ApiResult {
    call.body.insert("is_pec_account".into(), Value::Bool(true));
    add_account(state, call).await
}

/// `GET /accounts/get?tenant_id=&account_id=`.
pub async fn account(State(state): State<AppState>, Asked { caller, q }: Asked) -> ApiResult {
    let id =
        param(&q, "account_id").ok_or_else(|| crate::error::AppError::missing("account_id"))?;
    let a = api::accounts::get(&state, &caller, param(&q, "tenant_id"), id).await?;
    Ok(Json(a.to_json(false)))
}

/// `GET /accounts/list?tenant_id=`: a bare array.
pub async fn accounts(State(state): State<AppState>, Asked { caller, q }: Asked) -> ApiResult {
    let list = api::accounts::list(&state, &caller, param(&q, "tenant_id")).await?;
    Ok(Json(list.iter().map(|a| a.to_json(false)).collect()))
}

/// `GET /accounts/list_pec?tenant_id=`: the PEC accounts.
pub async fn pec_accounts(State(state): State<AppState>, Asked { caller, q }: Asked) -> ApiResult {
    let list = api::accounts::list_pec(&state, &caller, param(&q, "tenant_id")).await?;
    Ok(Json(list.iter().map(|a| a.to_json(false)).collect()))
}

/// `GET /accounts/get_pec_ids?tenant_id=`: the ids of the PEC accounts.
pub async fn pec_account_ids(
    State(state): State<AppState>,
    Asked { caller, q }: Asked,
) -> ApiResult {
    let list = api::accounts::list_pec(&state, &caller, param(&q, "tenant_id")).await?;
    Ok(Json(list.into_iter().map(|a| json!(a.id)).collect()))
}

/// `POST /accounts/delete`: `tenant_id`, `account_id`; 404 when unknown.
pub async fn delete_account(
    State(state): State<AppState>,
    Posted { caller, body }: Posted,
) -> ApiResult {
    let id = required_str(&body, "account_id")?;
    api::accounts::delete(&state, &caller, named(&body, "tenant_id"), id).await?;
    ok()
}

/// `POST /messages/add`: the body is one message → `{"id","ok":true}`; a refusal is 400 with
/// its reason.
pub async fn add_message(
    State(state): State<AppState>,
    Posted { caller, body }: Posted,
) -> ApiResult {
    let id = body.get("id").cloned();
    let out = api::messages::add(&state, &caller, &wire::add_one(body)).await?;
    if let Some(r) = out.rejected.first() {
        return Err(crate::error::AppError::bad_request(r.reason.as_str()));
    }
    Ok(Json(json!({"id": id, "ok": true})))
}

/// `GET /messages/get?tenant_id=&message_id=&include_history=`: one record, read alone.
pub async fn message(State(state): State<AppState>, Asked { caller, q }: Asked) -> ApiResult {
    let id =
        param(&q, "message_id").ok_or_else(|| crate::error::AppError::missing("message_id"))?;
    let history = flag(&q, "include_history")?;
    let record = api::messages::get(&state, &caller, param(&q, "tenant_id"), id, history).await?;
    Ok(Json(record))
}

/// `GET /messages/list`: a bare array of records; the `x-next-offset` header when more rows
/// follow.
pub async fn messages(
    State(state): State<AppState>,
    Asked { caller, q }: Asked,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let page = api::messages::list(&state, &caller, &wire::list_query(&q)?).await?;
    Ok((wire::page_headers(&page), Json(Value::Array(page.records))))
}

/// `POST /messages/delete_batch`: `tenant_id`, `ids`.
pub async fn delete_messages(
    State(state): State<AppState>,
    Posted { caller, body }: Posted,
) -> ApiResult {
    let ids = wire::ids(&body)?;
    let d = api::messages::delete(&state, &caller, named(&body, "tenant_id"), &ids).await?;
    Ok(wire::deleted(&d))
}

/// `POST /messages/delete`: `message_pk`, `tenant_id`?; 404 when there is none (for a tenant
/// token, none of its own).
pub async fn delete_message(
    State(state): State<AppState>,
    Posted { caller, body }: Posted,
) -> ApiResult {
    let pk = required_str(&body, "message_pk")?;
    api::messages::delete_one(&state, &caller, named(&body, "tenant_id"), pk).await?;
    ok()
}

/// `GET` or `POST /messages/cleanup?tenant_id=&older_than_seconds=` (the query only).
pub async fn cleanup(State(state): State<AppState>, Asked { caller, q }: Asked) -> ApiResult {
    let older = wire::opt_int(&q, "older_than_seconds")?;
    let removed = api::messages::cleanup(&state, &caller, param(&q, "tenant_id"), older).await?;
    Ok(wire::removed(removed))
}

/// `GET /messages/count_active` (admin): unsent messages of all tenants.
pub async fn count_active(State(state): State<AppState>, _: AdminOnly) -> ApiResult {
    Ok(Json(json!(api::messages::count_active(&state).await?)))
}

/// `GET /messages/count_pending_for_tenant?tenant_id=&batch_code=`.
pub async fn count_pending(State(state): State<AppState>, Asked { caller, q }: Asked) -> ApiResult {
    let (tenant, batch) = (param(&q, "tenant_id"), param(&q, "batch_code"));
    let n = api::messages::count_pending(&state, &caller, tenant, batch).await?;
    Ok(Json(json!(n)))
}

/// `GET /instance/get` (admin): the Instance with `ok`.
pub async fn instance(State(state): State<AppState>, _: AdminOnly) -> ApiResult {
    let mut instance = api::instance::get(&state).await?;
    instance["ok"] = json!(true);
    Ok(Json(instance))
}

/// `GET /instance/get_bounce_config` (admin): the `bounce_*` fields (never the password).
pub async fn bounce_config(State(state): State<AppState>, _: AdminOnly) -> ApiResult {
    let instance = api::instance::get(&state).await?;
    let mut config: serde_json::Map<String, Value> = instance
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("bounce_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    config.insert("ok".into(), json!(true));
    Ok(Json(Value::Object(config)))
}

/// `GET /command_log/list` (admin): a bare array of entries with their answers.
pub async fn command_log(State(state): State<AppState>, _: AdminOnly, q: Query) -> ApiResult {
    let filter = wire::command_filter(&q)?;
    let (limit, offset) = (int(&q, "limit", 100)?, int(&q, "offset", 0)?);
    let (entries, _) = api::instance::commands(&state, &filter, limit, offset).await?;
    Ok(Json(entries.iter().map(|c| c.to_json()).collect()))
}

/// `GET /command_log/get?command_id=` (admin).
pub async fn command(State(state): State<AppState>, _: AdminOnly, q: Query) -> ApiResult {
    let id =
        param(&q, "command_id").ok_or_else(|| crate::error::AppError::missing("command_id"))?;
    Ok(Json(api::instance::command(&state, id).await?.to_json()))
}

/// `GET /command_log/export` (admin): a bare array.
pub async fn command_log_export(
    State(state): State<AppState>,
    _: AdminOnly,
    q: Query,
) -> ApiResult {
    Ok(Json(Value::Array(wire::export(&state, &q).await?)))
}

/// `POST /command_log/purge` (admin): `threshold_ts` → how many older entries were deleted.
pub async fn purge_command_log(
    State(state): State<AppState>,
    _: AdminOnly,
    body: Body,
) -> ApiResult {
    let threshold = int_of(&body.object()?, "threshold_ts")?
        .ok_or_else(|| crate::error::AppError::missing("threshold_ts"))?;
    let deleted = api::instance::purge(&state, threshold).await?;
    Ok(Json(json!({"ok": true, "deleted": deleted})))
}

/// `POST /storages/add`: `tenant_id`, `name`, `protocol`, `config` → the Storage.
pub async fn add_storage(
    State(state): State<AppState>,
    Posted { caller, body }: Posted,
) -> ApiResult {
    let new = wire::new_storage(&body)?;
    let s = api::storages::add(&state, &caller, named(&body, "tenant_id"), &new).await?;
    Ok(Json(s.to_json()))
}

/// `POST /storages/delete`: `tenant_id`, `name` → `{"ok": <deleted>, "tenant_id", "name"}`.
pub async fn delete_storage(
    State(state): State<AppState>,
    Posted { caller, body }: Posted,
) -> ApiResult {
    let name = required_str(&body, "name")?;
    let (tenant, ok) =
        api::storages::delete(&state, &caller, named(&body, "tenant_id"), name).await?;
    Ok(Json(json!({"ok": ok, "tenant_id": tenant, "name": name})))
}

/// `GET /storages/get?tenant_id=&name=`.
pub async fn storage(State(state): State<AppState>, Asked { caller, q }: Asked) -> ApiResult {
    let name = param(&q, "name").ok_or_else(|| crate::error::AppError::missing("name"))?;
    let s = api::storages::get(&state, &caller, param(&q, "tenant_id"), name).await?;
    Ok(Json(s.to_json()))
}

/// `GET /storages/list?tenant_id=`.
pub async fn storages(State(state): State<AppState>, Asked { caller, q }: Asked) -> ApiResult {
    let list = api::storages::list(&state, &caller, param(&q, "tenant_id")).await?;
    Ok(Json(list.iter().map(|s| s.to_json()).collect()))
}
