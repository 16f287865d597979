//! The instance and its command log (PROTOCOL.md §3.3, §3.4), admin-only: the instance record
//! with its bounce settings (stored and returned, never acted on: D19), and reading, exporting
//! and purging the command log.

use serde_json::Value;

use super::{OpError, OpResult};
use crate::{
    http::AppState,
    store::admin::{Command, CommandFilter, InstanceUpdate},
};

/// Most entries an export answers.
pub const MAX_EXPORT: i64 = 100_000;

/// The instance record (never the bounce password).
pub async fn get(state: &AppState) -> OpResult<Value> {
    Ok(state.store.instance().await?)
}

/// Changes the instance's name, edition and bounce settings.
pub async fn update(state: &AppState, update: &InstanceUpdate) -> OpResult<()> {
    Ok(state.store.update_instance(update).await?)
}

/// Bounces are not polled here (D19), so nothing is reloaded; refused, as upstream does, when
/// bounce polling is on without an IMAP host.
pub async fn reload_bounce(state: &AppState) -> OpResult<()> {
    let instance = state.store.instance().await?;
    if instance["bounce_enabled"] == Value::Bool(true)
        && instance["bounce_imap_host"]
            .as_str()
            .is_none_or(str::is_empty)
    {
        return Err(OpError::Refused(
            "Bounce enabled but imap_host not configured".into(),
        ));
    }
    Ok(())
}

/// One page of the command log, oldest first, and how many entries match.
pub async fn commands(
    state: &AppState,
    filter: &CommandFilter,
    limit: i64,
    offset: i64,
) -> OpResult<(Vec<Command>, i64)> {
    Ok(state
        .store
        .commands(filter, limit.clamp(1, 10_000), offset.max(0))
        .await?)
}

/// Every matching entry, up to [`MAX_EXPORT`], for replaying elsewhere.
pub async fn export(state: &AppState, filter: &CommandFilter) -> OpResult<Vec<Command>> {
    Ok(state.store.commands(filter, MAX_EXPORT, 0).await?.0)
}

/// One entry.
pub async fn command(state: &AppState, id: &str) -> OpResult<Command> {
    let found = match id.trim().parse::<i64>() {
        Ok(n) => state.store.command(n).await?,
        Err(_) => None,
    };
    found.ok_or_else(|| OpError::CommandNotFound(id.to_string()))
}

/// Deletes the entries older than `threshold_ts`; how many.
pub async fn purge(state: &AppState, threshold_ts: i64) -> OpResult<u64> {
    Ok(state.store.purge_commands(threshold_ts).await?)
}
