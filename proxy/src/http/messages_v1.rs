//! Messages in both dialects (PROTOCOL.md §3.3, §3.4, §3.6): add in batches or one at a time, list,
//! get, delete, cleanup and counts. Every intake path goes through `Store::enqueue`.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode},
};
use serde_json::{Map, Value, json};

use super::{
    AppState,
    auth::{self, AdminOnly, Authed, Caller},
    input::{Body, Query, flag, int, int_of, required_str},
};
use crate::{
    error::{ApiResult, AppError},
    intake::{Outcome, Scope},
    metrics::TenantSource,
    model::submit::parse_priority,
    store::now_ts,
};

/// Largest REST batch.
const MAX_BATCH: usize = 1000;

/// Runs an intake for a REST caller and counts it.
async fn intake(
    state: &AppState,
    caller: &Caller,
    body: &Map<String, Value>,
    messages: &[Value],
) -> Result<Outcome, AppError> {
    let named = body.get("tenant_id").and_then(Value::as_str);
    let default_tenant = auth::scope(caller, named)?;
    let forced = match caller {
        Caller::Tenant(own) => Some(own.clone()),
        Caller::Admin => None,
    };
    let default_priority = body
        .get("default_priority")
        .and_then(parse_priority)
        .unwrap_or(state.default_priority);
    let out = state
        .store
        .enqueue(
            messages,
            Scope {
                default_tenant: default_tenant.as_deref(),
                forced_tenant: forced.as_deref(),
                default_priority,
                limits: state.limits,
            },
        )
        .await?;
    for (tenant, n) in &out.queued_by_tenant {
        state
            .metrics
            .enqueued
            .get_or_create(&TenantSource {
                tenant_id: tenant.clone(),
                source: "rest".into(),
            })
            .inc_by(*n);
    }
    for (tenant, n) in &out.rejected_by_tenant {
        state
            .metrics
            .rejected
            .get_or_create(&TenantSource {
                tenant_id: tenant.clone(),
                source: "rest".into(),
            })
            .inc_by(*n);
    }
    if out.queued > 0 {
        state.dispatch_wake.notify_one();
    }
    Ok(out)
}

fn messages_of(body: &Map<String, Value>) -> Result<&Vec<Value>, AppError> {
    let list = match body.get("messages") {
        Some(Value::Array(a)) => a,
        None => return Err(AppError::missing("messages")),
        Some(_) => {
            return Err(AppError::unprocessable(
                "messages",
                "Input should be a valid list",
                "list_type",
            ));
        }
    };
    if list.len() > MAX_BATCH {
        return Err(AppError {
            status: StatusCode::BAD_REQUEST,
            detail: json!({"error": "Cannot enqueue more than 1000 messages at once", "rejected": []}),
        });
    }
    Ok(list)
}

fn respond(out: &Outcome) -> ApiResult {
    if !out.ok() {
        return Err(AppError {
            status: StatusCode::BAD_REQUEST,
            detail: json!({"error": "No message queued", "rejected": out.rejected_json()}),
        });
    }
    Ok(Json(
        json!({"ok": true, "queued": out.queued, "rejected": out.rejected_json()}),
    ))
}

/// `POST /commands/add-messages`.
pub async fn add_classic(State(state): State<AppState>, caller: Authed, body: Body) -> ApiResult {
    let body = body.object()?;
    let out = intake(&state, &caller.0, &body, messages_of(&body)?).await?;
    respond(&out)
}

/// `POST /messages/add_batch`.
pub async fn add_batch_generated(state: State<AppState>, caller: Authed, body: Body) -> ApiResult {
    add_classic(state, caller, body).await
}

/// `POST /messages/add`: one message (`from_addr` = `from`) → `{"id","pk"}`, 400 with the reason.
pub async fn add_one_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: Body,
) -> ApiResult {
    let body = body.object()?;
    let out = intake(
        &state,
        &caller,
        &body,
        std::slice::from_ref(&Value::Object(body.clone())),
    )
    .await?;
    if let Some(r) = out.rejected.first() {
        return Err(AppError::bad_request(r.reason.as_str()));
    }
    let id = required_str(&body, "id")?;
    Ok(Json(json!({"id": id, "ok": true})))
}

/// Header of a listing that stopped at its `limit` while more rows follow: the `offset` of the
/// next page. Upstream returns every row; a listing here is paged (`limit` default 1,000, at
/// most 10,000), and this says when a page is not the last.
pub const NEXT_OFFSET: &str = "x-next-offset";

/// One page of a message listing.
struct Page {
    records: Vec<Value>,
    /// The next page's offset, when rows follow this page.
    next_offset: Option<i64>,
}

impl Page {
    /// [`NEXT_OFFSET`] when rows follow.
    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(next) = self.next_offset {
            h.insert(NEXT_OFFSET, HeaderValue::from(next));
        }
        h
    }
}

async fn list(state: &AppState, caller: &Caller, q: &Query) -> Result<Page, AppError> {
    let tenant_id = auth::scope_required(caller, q.get("tenant_id").map(String::as_str))?;
    let limit = int(q, "limit", 1000)?.clamp(1, 10_000);
    let offset = int(q, "offset", 0)?.max(0);
    // One row more than asked tells whether another page follows.
    let mut records = state
        .store
        .list_messages(
            &tenant_id,
            flag(q, "active_only")?,
            flag(q, "include_history")?,
            limit + 1,
            offset,
        )
        .await?;
    let more = records.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    records.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(Page {
        records,
        next_offset: more.then_some(offset + limit),
    })
}

/// `GET /messages?tenant_id=&active_only=&include_history=&limit=&offset=`; when more rows
/// follow, `next_offset` in the body and the [`NEXT_OFFSET`] header.
pub async fn list_classic(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let mut page = list(&state, &caller, &q).await?;
    for r in &mut page.records {
        if let Some(m) = r.as_object_mut() {
            let sent = m.get("status") == Some(&json!("sent"));
            let smtp = m.get("smtp_ts").cloned().unwrap_or(Value::Null);
            m.insert("sent_ts".into(), if sent { smtp } else { Value::Null });
            m.retain(|_, v| !v.is_null());
        }
    }
    let headers = page.headers();
    let mut body = json!({"ok": true, "messages": page.records});
    if let Some(next) = page.next_offset {
        body["next_offset"] = json!(next);
    }
    Ok((headers, Json(body)))
}

/// `GET /messages/list`: a bare array, as upstream's; the [`NEXT_OFFSET`] header when more rows
/// follow.
pub async fn list_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let page = list(&state, &caller, &q).await?;
    Ok((page.headers(), Json(Value::Array(page.records))))
}

/// `GET /messages/get?tenant_id=&message_id=`.
pub async fn get_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
) -> ApiResult {
    let tenant_id = auth::scope_required(&caller, q.get("tenant_id").map(String::as_str))?;
    let id = q
        .get("message_id")
        .ok_or_else(|| AppError::missing("message_id"))?;
    // One row by its id (it read up to a million rows and searched them).
    state
        .store
        .get_message(&tenant_id, id, flag(&q, "include_history")?)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::not_found(format!("Message '{id}' not found")))
}

async fn delete(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    body: &Map<String, Value>,
) -> ApiResult {
    let tenant_id = auth::scope_required(caller, named)?;
    let ids: Vec<String> = match body.get("ids") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        None => return Err(AppError::missing("ids")),
        Some(_) => {
            return Err(AppError::unprocessable(
                "ids",
                "Input should be a valid list",
                "list_type",
            ));
        }
    };
    let (removed, not_found, unauthorized) = state.store.delete_messages(&tenant_id, &ids).await?;
    Ok(Json(
        json!({"ok": true, "removed": removed, "not_found": not_found, "unauthorized": unauthorized}),
    ))
}

/// `POST /commands/delete-messages?tenant_id=` with `{"ids": [...]}`.
pub async fn delete_classic(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
    body: Body,
) -> ApiResult {
    let body = body.object()?;
    let named = q
        .get("tenant_id")
        .map(String::as_str)
        .or(body.get("tenant_id").and_then(Value::as_str));
    delete(&state, &caller, named, &body).await
}

/// `POST /messages/delete_batch` with `{"tenant_id", "ids"}`.
pub async fn delete_batch_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: Body,
) -> ApiResult {
    let body = body.object()?;
    delete(
        &state,
        &caller,
        body.get("tenant_id").and_then(Value::as_str),
        &body,
    )
    .await
}

async fn cleanup(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    older: Option<i64>,
) -> ApiResult {
    let tenant_id = auth::scope_required(caller, named)?;
    let older = older.unwrap_or(state.retention_seconds).max(0);
    let removed = state
        .store
        .cleanup_messages(Some(&tenant_id), older, now_ts())
        .await?;
    Ok(Json(json!({"ok": true, "removed": removed})))
}

/// `POST /commands/cleanup-messages?tenant_id=` with `{"older_than_seconds"?}`.
pub async fn cleanup_classic(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
    body: Body,
) -> ApiResult {
    let body = body.object()?;
    let named = q
        .get("tenant_id")
        .map(String::as_str)
        .or(body.get("tenant_id").and_then(Value::as_str));
    cleanup(&state, &caller, named, int_of(&body, "older_than_seconds")?).await
}

/// `GET`/`POST /messages/cleanup?tenant_id=&older_than_seconds=`.
pub async fn cleanup_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
) -> ApiResult {
    let older = q
        .get("older_than_seconds")
        .map(|_| int(&q, "older_than_seconds", 0))
        .transpose()?;
    cleanup(
        &state,
        &caller,
        q.get("tenant_id").map(String::as_str),
        older,
    )
    .await
}

/// `GET /messages/count_active` (admin): unsent messages of all tenants.
pub async fn count_active(State(state): State<AppState>, _: AdminOnly) -> ApiResult {
    Ok(Json(json!(state.store.count_pending().await?)))
}

/// `GET /messages/count_pending_for_tenant?tenant_id=&batch_code=`.
pub async fn count_pending_for_tenant(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
) -> ApiResult {
    let tenant_id = auth::scope_required(&caller, q.get("tenant_id").map(String::as_str))?;
    Ok(Json(json!(
        state
            .store
            .count_pending_for_tenant(&tenant_id, q.get("batch_code").map(String::as_str))
            .await?
    )))
}

/// `POST /messages/delete` with `{"message_pk", "tenant_id"?}`: one message by its primary key
/// (a tenant token reaches only its own).
pub async fn delete_one_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: Body,
) -> ApiResult {
    let body = body.object()?;
    let tenant = auth::scope(&caller, body.get("tenant_id").and_then(Value::as_str))?;
    let pk = required_str(&body, "message_pk")?;
    if !state
        .store
        .delete_message_by_pk(tenant.as_deref(), pk)
        .await?
    {
        return Err(AppError::not_found(format!("Message '{pk}' not found")));
    }
    Ok(Json(json!({"ok": true})))
}
