//! The typed requests of [`crate::api`], parsed once from a route's body or query, and the few
//! answers both dialects give alike: shared by the two dialect adapters, so a field is read in
//! one place. Failures are the contract's shapes (PROTOCOL.md §3.2): 422 for a missing or
//! ill-typed field, 400 for a field of a resource update that is out of its domain.

use axum::{
    Json,
    http::{HeaderMap, HeaderValue, StatusCode},
};
use mailproxy_proto::patch::{AccountPatchV1, TenantPatchV1};
use serde_json::{Map, Value, json};

use std::collections::HashMap;

use super::{
    AppState,
    input::{flag, int, int_of, str_of},
};
use crate::{
    api::{
        OpError,
        commands::Suspension,
        messages::{Add, Deleted, ListQuery, Page},
        storages::NewStorage,
    },
    error::{ApiResult, AppError},
    intake::Outcome,
    model::submit::parse_priority,
    store::admin::{CommandFilter, InstanceUpdate},
};

/// A tenant update (400 naming a field of the wrong type).
pub fn tenant_patch(body: &Map<String, Value>) -> Result<TenantPatchV1, AppError> {
    TenantPatchV1::from_json(body).map_err(|e| OpError::Field(e).into())
}

/// An account update (400 naming a field of the wrong type).
pub fn account_patch(body: &Map<String, Value>) -> Result<AccountPatchV1, AppError> {
    AccountPatchV1::from_json(body).map_err(|e| OpError::Field(e).into())
}

/// A named string field of a body (`tenant_id`, …), when it is one.
pub fn named<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

/// A named query parameter.
pub fn param<'a>(q: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    q.get(key).map(String::as_str)
}

/// A list field of a body: 422 when missing or not a list.
fn list<'a>(body: &'a Map<String, Value>, key: &str) -> Result<&'a Vec<Value>, AppError> {
    match body.get(key) {
        Some(Value::Array(a)) => Ok(a),
        None => Err(AppError::missing(key)),
        Some(_) => Err(AppError::unprocessable(
            key,
            "Input should be a valid list",
            "list_type",
        )),
    }
}

fn default_priority(body: &Map<String, Value>) -> Option<i64> {
    body.get("default_priority").and_then(parse_priority)
}

/// `{"tenant_id"?, "default_priority"?, "messages": [...]}`.
pub fn add_batch(body: &Map<String, Value>) -> Result<Add, AppError> {
    Ok(Add {
        tenant_id: named(body, "tenant_id").map(str::to_string),
        default_priority: default_priority(body),
        messages: list(body, "messages")?.clone(),
    })
}

/// One message as the body; its `tenant_id` and `default_priority` also act as the request's.
pub fn add_one(body: Map<String, Value>) -> Add {
    Add {
        tenant_id: named(&body, "tenant_id").map(str::to_string),
        default_priority: default_priority(&body),
        messages: vec![Value::Object(body)],
    }
}

/// The `ids` of a delete: the strings of the list.
pub fn ids(body: &Map<String, Value>) -> Result<Vec<String>, AppError> {
    Ok(list(body, "ids")?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect())
}

/// `?tenant_id=&active_only=&include_history=&limit=&offset=`.
pub fn list_query(q: &HashMap<String, String>) -> Result<ListQuery, AppError> {
    Ok(ListQuery {
        tenant_id: q.get("tenant_id").cloned(),
        active_only: flag(q, "active_only")?,
        include_history: flag(q, "include_history")?,
        limit: int(q, "limit", 1000)?,
        offset: int(q, "offset", 0)?,
    })
}

/// An optional integer query parameter.
pub fn opt_int(q: &HashMap<String, String>, key: &str) -> Result<Option<i64>, AppError> {
    q.get(key).map(|_| int(q, key, 0)).transpose()
}

/// Absent → None, null → Some(None), a string → Some(Some(..)).
fn nullable_str(body: &Map<String, Value>, key: &str) -> Result<Option<Option<String>>, AppError> {
    Ok(match body.get(key) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(_) => Some(str_of(body, key)?.map(str::to_string)),
    })
}

fn bool_of(body: &Map<String, Value>, key: &str) -> Result<Option<bool>, AppError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(AppError::unprocessable(
            key,
            "Input should be a valid boolean",
            "bool_type",
        )),
    }
}

/// The instance fields of an update body.
pub fn instance_update(body: &Map<String, Value>) -> Result<InstanceUpdate, AppError> {
    let owned = |key| Ok::<_, AppError>(str_of(body, key)?.map(str::to_string));
    Ok(InstanceUpdate {
        name: owned("name")?.filter(|n| !n.is_empty()),
        edition: owned("edition")?,
        bounce_enabled: bool_of(body, "bounce_enabled")?,
        imap_host: nullable_str(body, "bounce_imap_host")?,
        imap_port: int_of(body, "bounce_imap_port")?,
        imap_user: nullable_str(body, "bounce_imap_user")?,
        imap_password: nullable_str(body, "bounce_imap_password")?,
        imap_folder: owned("bounce_imap_folder")?,
        imap_ssl: bool_of(body, "bounce_imap_ssl")?,
        poll_interval: int_of(body, "bounce_poll_interval")?,
        return_path: nullable_str(body, "bounce_return_path")?,
    })
}

/// `?tenant_id=&since_ts=&until_ts=&endpoint_filter=`.
pub fn command_filter(q: &HashMap<String, String>) -> Result<CommandFilter, AppError> {
    Ok(CommandFilter {
        tenant_id: q.get("tenant_id").cloned(),
        since_ts: opt_int(q, "since_ts")?,
        until_ts: opt_int(q, "until_ts")?,
        endpoint_filter: q.get("endpoint_filter").cloned().filter(|f| !f.is_empty()),
    })
}

/// `{"name", "protocol", "config"?}`.
pub fn new_storage(body: &Map<String, Value>) -> Result<NewStorage, AppError> {
    Ok(NewStorage {
        name: super::input::required_str(body, "name")?.to_string(),
        protocol: super::input::required_str(body, "protocol")?.to_string(),
        config: body
            .get("config")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    })
}

/// Header of a listing that stopped at its `limit` while more rows follow: the `offset` of the
/// next page. Upstream returns every row; a listing here is paged (`limit` default 1,000, at
/// most 10,000), and this says when a page is not the last.
pub const NEXT_OFFSET: &str = "x-next-offset";

/// [`NEXT_OFFSET`] when rows follow.
pub fn page_headers(page: &Page) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(next) = page.next_offset {
        h.insert(NEXT_OFFSET, HeaderValue::from(next));
    }
    h
}

/// The answer of a submission, the same in both dialects: `{"ok","queued","rejected"}`, or 400
/// `{"detail":{"error":"No message queued","rejected":[…]}}` when nothing was queued and some
/// refusal is not `already sent`.
pub fn added(out: &Outcome) -> ApiResult {
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

/// A suspension change, the same in both dialects (PROTOCOL.md §3.3).
pub fn suspension(s: &Suspension) -> Json<Value> {
    let mut out = json!({"ok": true, "tenant_id": s.tenant_id,
        "suspended_batches": s.suspended_batches, "pending_messages": s.pending_messages});
    if let Some(b) = &s.batch_code {
        out["batch_code"] = json!(b);
    }
    Json(out)
}

/// What a delete by ids did, the same in both dialects.
pub fn deleted(d: &Deleted) -> Json<Value> {
    Json(
        json!({"ok": true, "removed": d.removed, "not_found": d.not_found,
        "unauthorized": d.unauthorized}),
    )
}

/// What a cleanup removed, the same in both dialects.
pub fn removed(n: u64) -> Json<Value> {
    Json(json!({"ok": true, "removed": n}))
}

/// `{"ok": true}`.
pub fn ok() -> ApiResult {
    Ok(Json(json!({"ok": true})))
}

/// The command log entries a filter in the query selects, as exported for replaying elsewhere
/// (`{endpoint, tenant_id, payload, command_ts}`).
pub async fn export(state: &AppState, q: &HashMap<String, String>) -> Result<Vec<Value>, AppError> {
    let entries = crate::api::instance::export(state, &command_filter(q)?).await?;
    Ok(entries.iter().map(|c| c.to_export_json()).collect())
}
