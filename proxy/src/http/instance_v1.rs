//! The instance and its command log in both dialects (PROTOCOL.md §3.3, §3.4), admin-only: the
//! instance record with its bounce settings (stored and returned, never acted on: D19), the
//! no-op upgrade, and reading, exporting and purging the command log.

use axum::{Json, extract::State};
use serde_json::{Map, Value, json};

use super::{
    AppState,
    auth::AdminOnly,
    input::{Body, Query, int, int_of, str_of},
};
use crate::{
    error::{ApiResult, AppError},
    store::admin::{CommandFilter, InstanceUpdate},
};

/// Most entries an export answers.
const MAX_EXPORT: i64 = 100_000;

/// Reads an optional nullable string: absent → None, null → Some(None).
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

/// The instance fields of an update body, checked.
fn update_of(body: &Map<String, Value>) -> Result<InstanceUpdate, AppError> {
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

/// `GET /instance`: the instance record.
pub async fn get_classic(State(state): State<AppState>, _: AdminOnly) -> ApiResult {
    Ok(Json(state.store.instance().await?))
}

/// `GET /instance/get`: the instance record with `ok`.
pub async fn get_generated(State(state): State<AppState>, _: AdminOnly) -> ApiResult {
    let mut instance = state.store.instance().await?;
    instance["ok"] = json!(true);
    Ok(Json(instance))
}

/// `PUT /instance`, `POST /instance/update`, `POST /instance/set_bounce_config`.
pub async fn update(State(state): State<AppState>, _: AdminOnly, body: Body) -> ApiResult {
    let update = update_of(&body.object()?)?;
    state.store.update_instance(&update).await?;
    Ok(Json(json!({"ok": true})))
}

/// `GET /instance/get_bounce_config`: the bounce settings (no password).
pub async fn bounce_config(State(state): State<AppState>, _: AdminOnly) -> ApiResult {
    let instance = state.store.instance().await?;
    let mut config: Map<String, Value> = instance
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("bounce_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    config.insert("ok".into(), json!(true));
    Ok(Json(Value::Object(config)))
}

/// `POST /instance/reload-bounce`, `/instance/reload_bounce`: bounce polling is not run here
/// (D19); refused when it is switched on without an IMAP host, as upstream does.
pub async fn reload_bounce(State(state): State<AppState>, _: AdminOnly) -> ApiResult {
    let instance = state.store.instance().await?;
    if instance["bounce_enabled"] == json!(true)
        && instance["bounce_imap_host"]
            .as_str()
            .is_none_or(str::is_empty)
    {
        return Err(AppError::bad_request(
            "Bounce enabled but imap_host not configured",
        ));
    }
    Ok(Json(json!({"ok": true})))
}

/// `POST /instance/upgrade-to-ee`, `/instance/upgrade_to_ee`: every feature is already on.
pub async fn upgrade_to_ee(_: AdminOnly) -> ApiResult {
    Ok(Json(
        json!({"ok": true, "edition": "ee", "message": "Already Enterprise Edition: every feature is available"}),
    ))
}

fn filter_of(q: &Query) -> Result<CommandFilter, AppError> {
    let opt_int = |key: &str| q.get(key).map(|_| int(q, key, 0)).transpose();
    Ok(CommandFilter {
        tenant_id: q.get("tenant_id").cloned(),
        since_ts: opt_int("since_ts")?,
        until_ts: opt_int("until_ts")?,
        endpoint_filter: q.get("endpoint_filter").cloned().filter(|f| !f.is_empty()),
    })
}

/// Entries of the command log: one page, and how many match.
async fn page(state: &AppState, q: &Query) -> Result<(Vec<Value>, i64), AppError> {
    let limit = int(q, "limit", 100)?.clamp(1, 10_000);
    let offset = int(q, "offset", 0)?.max(0);
    let (commands, total) = state.store.commands(&filter_of(q)?, limit, offset).await?;
    Ok((commands.iter().map(|c| c.to_json()).collect(), total))
}

/// `GET /command-log?tenant_id&since_ts&until_ts&endpoint_filter&limit=100&offset=0`.
pub async fn list_classic(State(state): State<AppState>, _: AdminOnly, q: Query) -> ApiResult {
    let (mut commands, total) = page(&state, &q).await?;
    for c in &mut commands {
        if let Some(m) = c.as_object_mut() {
            m.remove("response_body");
        }
    }
    Ok(Json(
        json!({"ok": true, "commands": commands, "total": total}),
    ))
}

/// `GET /command_log/list`: a bare array, with the answers.
pub async fn list_generated(State(state): State<AppState>, _: AdminOnly, q: Query) -> ApiResult {
    Ok(Json(Value::Array(page(&state, &q).await?.0)))
}

/// `GET /command_log/get?command_id=`.
pub async fn get_command(State(state): State<AppState>, _: AdminOnly, q: Query) -> ApiResult {
    let raw = q
        .get("command_id")
        .ok_or_else(|| AppError::missing("command_id"))?;
    let id = int(&q, "command_id", 0)?;
    state
        .store
        .command(id)
        .await?
        .map(|c| Json(c.to_json()))
        .ok_or_else(|| AppError::not_found(format!("Command '{raw}' not found")))
}

/// The entries for replaying elsewhere: `{endpoint, tenant_id, payload, command_ts}`.
async fn export(state: &AppState, q: &Query) -> Result<Vec<Value>, AppError> {
    let (commands, _) = state.store.commands(&filter_of(q)?, MAX_EXPORT, 0).await?;
    Ok(commands
        .iter()
        .map(|c| json!({"endpoint": c.endpoint, "tenant_id": c.tenant_id, "payload": c.payload, "command_ts": c.command_ts}))
        .collect())
}

/// `GET /command-log/export?tenant_id&since_ts&until_ts` (at most 100,000 entries).
pub async fn export_classic(State(state): State<AppState>, _: AdminOnly, q: Query) -> ApiResult {
    Ok(Json(
        json!({"ok": true, "commands": export(&state, &q).await?}),
    ))
}

/// `GET /command_log/export`: a bare array.
pub async fn export_generated(State(state): State<AppState>, _: AdminOnly, q: Query) -> ApiResult {
    Ok(Json(Value::Array(export(&state, &q).await?)))
}

/// `POST /command_log/purge` with `{"threshold_ts"}`: deletes older entries.
pub async fn purge(State(state): State<AppState>, _: AdminOnly, body: Body) -> ApiResult {
    let threshold = int_of(&body.object()?, "threshold_ts")?
        .ok_or_else(|| AppError::missing("threshold_ts"))?;
    let deleted = state.store.purge_commands(threshold).await?;
    Ok(Json(json!({"ok": true, "deleted": deleted})))
}
