//! Commands (PROTOCOL.md §3.3, §3.4, §4.5): run-now, and suspension of a tenant or of single
//! batches.

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use super::{
    AppState,
    auth::{self, Authed, Caller},
    input::{Body, Query},
};
use crate::error::{ApiResult, AppError};

/// `POST /commands/run-now` and `/instance/run_now`: with a tenant (body or a tenant token), ask
/// for its sync now, overriding DND and backoff; then wake the loops.
pub async fn run_now(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: Body,
) -> ApiResult {
    let body = body.object()?;
    if let Some(tenant) = auth::scope(&caller, body.get("tenant_id").and_then(Value::as_str))?
        && !state.store.request_sync(&tenant).await?
    {
        return Err(AppError::tenant_not_found(&tenant));
    }
    state.sync_wake.notify_one();
    state.dispatch_wake.notify_one();
    Ok(Json(json!({"ok": true})))
}

/// The new suspension list after suspending `batch` (None = everything).
fn suspended_after_suspend(current: Option<&str>, batch: Option<&str>) -> Option<String> {
    match (current, batch) {
        (_, None) | (Some("*"), _) => Some("*".into()),
        (cur, Some(b)) => {
            let mut list: Vec<&str> = cur
                .map(|c| c.split(',').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default();
            if !list.contains(&b) {
                list.push(b);
            }
            list.sort_unstable();
            Some(list.join(","))
        }
    }
}

/// The new suspension list after activating `batch` (None = everything); Err on the conflict.
fn suspended_after_activate(
    current: Option<&str>,
    batch: Option<&str>,
) -> Result<Option<String>, ()> {
    match (current, batch) {
        (_, None) => Ok(None),
        (Some("*"), Some(_)) => Err(()),
        (cur, Some(b)) => {
            let list: Vec<&str> = cur
                .map(|c| c.split(',').filter(|s| !s.is_empty() && *s != b).collect())
                .unwrap_or_default();
            Ok((!list.is_empty()).then(|| list.join(",")))
        }
    }
}

fn as_list(v: Option<&str>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

async fn change(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    batch: Option<&str>,
    suspend: bool,
    classic: bool,
) -> ApiResult {
    let tenant_id = auth::scope_required(caller, named)?;
    let batch = batch.filter(|b| !b.is_empty());
    let Some(tenant) = state.store.tenant(&tenant_id).await? else {
        return Err(if classic {
            AppError::bad_request(if suspend {
                "tenant not found"
            } else {
                "tenant not found or cannot activate single batch from full suspension"
            })
        } else {
            AppError::tenant_not_found(&tenant_id)
        });
    };
    let current = tenant.suspended_batches.as_deref();
    let new = if suspend {
        suspended_after_suspend(current, batch)
    } else {
        suspended_after_activate(current, batch).map_err(|()| {
            if classic {
                AppError::bad_request("tenant not found or cannot activate single batch from full suspension")
            } else {
                AppError::new(StatusCode::CONFLICT, "Cannot remove single batch when all suspended. Use activate_batch(None) first.")
            }
        })?
    };
    state
        .store
        .set_suspended(&tenant_id, new.as_deref())
        .await?;
    if !suspend {
        state.dispatch_wake.notify_one();
    }
    let pending = state
        .store
        .count_pending_for_tenant(&tenant_id, batch)
        .await?;
    let mut out = json!({"ok": true, "tenant_id": tenant_id, "suspended_batches": as_list(new.as_deref()), "pending_messages": pending});
    if let Some(b) = batch {
        out["batch_code"] = json!(b);
    }
    Ok(Json(out))
}

/// `POST /commands/suspend?tenant_id=&batch_code=`.
pub async fn suspend_classic(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
) -> ApiResult {
    change(
        &state,
        &caller,
        q.get("tenant_id").map(String::as_str),
        q.get("batch_code").map(String::as_str),
        true,
        true,
    )
    .await
}

/// `POST /commands/activate?tenant_id=&batch_code=`.
pub async fn activate_classic(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
) -> ApiResult {
    change(
        &state,
        &caller,
        q.get("tenant_id").map(String::as_str),
        q.get("batch_code").map(String::as_str),
        false,
        true,
    )
    .await
}

/// `POST /instance/suspend`, `/tenants/suspend_batch`.
pub async fn suspend_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: Body,
) -> ApiResult {
    let b = body.object()?;
    let s = |k: &str| b.get(k).and_then(Value::as_str);
    change(
        &state,
        &caller,
        s("tenant_id"),
        s("batch_code"),
        true,
        false,
    )
    .await
}

/// `POST /instance/activate`, `/tenants/activate_batch`.
pub async fn activate_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    body: Body,
) -> ApiResult {
    let b = body.object()?;
    let s = |k: &str| b.get(k).and_then(Value::as_str);
    change(
        &state,
        &caller,
        s("tenant_id"),
        s("batch_code"),
        false,
        false,
    )
    .await
}

/// `GET /tenants/get_suspended_batches?tenant_id=`.
pub async fn suspended_generated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    q: Query,
) -> ApiResult {
    let tenant_id = auth::scope_required(&caller, q.get("tenant_id").map(String::as_str))?;
    let t = state
        .store
        .tenant(&tenant_id)
        .await?
        .ok_or_else(|| AppError::tenant_not_found(&tenant_id))?;
    Ok(Json(
        json!({"ok": true, "tenant_id": tenant_id, "suspended_batches": as_list(t.suspended_batches.as_deref())}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspension_lists_follow_the_contract() {
        assert_eq!(suspended_after_suspend(None, None).as_deref(), Some("*"));
        assert_eq!(
            suspended_after_suspend(Some("b"), Some("a")).as_deref(),
            Some("a,b")
        );
        assert_eq!(
            suspended_after_suspend(Some("*"), Some("a")).as_deref(),
            Some("*")
        );
        assert_eq!(
            suspended_after_activate(Some("a,b"), Some("a")),
            Ok(Some("b".into()))
        );
        assert_eq!(suspended_after_activate(Some("a"), Some("a")), Ok(None));
        assert_eq!(suspended_after_activate(Some("*"), Some("a")), Err(()));
        assert_eq!(suspended_after_activate(Some("*"), None), Ok(None));
    }
}
