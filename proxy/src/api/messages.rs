//! Messages (PROTOCOL.md §3.6, §3.3, §3.4): submission (every REST path goes through
//! [`add`], hence [`crate::intake`]), listing, reading one, deletes, cleanup and counts.

use serde_json::Value;

use super::{OpError, OpResult, scope, scope_required};
use crate::{
    http::{AppState, auth::Caller},
    intake::{Outcome, Scope},
    metrics::TenantSource,
    store::now_ts,
};

/// Largest REST batch.
pub const MAX_BATCH: usize = 1000;

/// A submission: the messages as sent (each is normalised, and accepted or refused, on its
/// own), the request's tenant and default priority.
#[derive(Debug, Clone, Default)]
pub struct Add {
    /// Tenant for messages that name none.
    pub tenant_id: Option<String>,
    /// Priority for messages with none or an invalid one (already parsed).
    pub default_priority: Option<i64>,
    /// The raw messages, at most [`MAX_BATCH`].
    pub messages: Vec<Value>,
}

/// Queues what it can of a submission and counts it (`gmp_messages_*_total{source="rest"}`).
pub async fn add(state: &AppState, caller: &Caller, add: &Add) -> OpResult<Outcome> {
    if add.messages.len() > MAX_BATCH {
        return Err(OpError::BatchTooLarge);
    }
    let default_tenant = scope(caller, add.tenant_id.as_deref())?;
    let forced = match caller {
        Caller::Tenant(own) => Some(own.as_str()),
        Caller::Admin => None,
    };
    let out = state
        .store
        .enqueue(
            &add.messages,
            Scope {
                default_tenant: default_tenant.as_deref(),
                forced_tenant: forced,
                default_priority: add.default_priority.unwrap_or(state.default_priority),
                limits: state.limits,
            },
        )
        .await?;
    for (family, by_tenant) in [
        (&state.metrics.enqueued, &out.queued_by_tenant),
        (&state.metrics.rejected, &out.rejected_by_tenant),
    ] {
        for (tenant, n) in by_tenant {
            family
                .get_or_create(&TenantSource {
                    tenant_id: tenant.clone(),
                    source: "rest".into(),
                })
                .inc_by(*n);
        }
    }
    if out.queued > 0 {
        state.dispatch_wake.notify_one();
    }
    Ok(out)
}

/// Which messages to list.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// The tenant named (a tenant token's own when none).
    pub tenant_id: Option<String>,
    /// Unsent messages only.
    pub active_only: bool,
    /// Each record with its events.
    pub include_history: bool,
    /// Page size, clamped to 1..10,000.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

/// One page of a listing.
#[derive(Debug)]
pub struct Page {
    /// Message records (§3.5).
    pub records: Vec<Value>,
    /// The next page's offset, when rows follow this page.
    pub next_offset: Option<i64>,
}

/// One page of a tenant's messages; says whether another follows.
pub async fn list(state: &AppState, caller: &Caller, q: &ListQuery) -> OpResult<Page> {
    let tenant_id = scope_required(caller, q.tenant_id.as_deref())?;
    let limit = q.limit.clamp(1, 10_000);
    let offset = q.offset.max(0);
    // One row more than asked tells whether another page follows.
    let mut records = state
        .store
        .list_messages(
            &tenant_id,
            q.active_only,
            q.include_history,
            limit + 1,
            offset,
        )
        .await?;
    let page = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = records.len() > page;
    records.truncate(page);
    Ok(Page {
        records,
        next_offset: more.then_some(offset + limit),
    })
}

/// One message by its id, read alone.
pub async fn get(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    id: &str,
    include_history: bool,
) -> OpResult<Value> {
    let tenant_id = scope_required(caller, named)?;
    state
        .store
        .get_message(&tenant_id, id, include_history)
        .await?
        .ok_or_else(|| OpError::MessageNotFound(id.to_string()))
}

/// What a delete by ids did.
#[derive(Debug)]
pub struct Deleted {
    /// Rows deleted (with their events).
    pub removed: u64,
    /// Ids no tenant has.
    pub not_found: Vec<String>,
    /// Ids only other tenants have.
    pub unauthorized: Vec<String>,
}

/// Deletes a tenant's messages by id, in any state.
pub async fn delete(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    ids: &[String],
) -> OpResult<Deleted> {
    let tenant_id = scope_required(caller, named)?;
    let (removed, not_found, unauthorized) = state.store.delete_messages(&tenant_id, ids).await?;
    Ok(Deleted {
        removed,
        not_found,
        unauthorized,
    })
}

/// Deletes one message by its primary key (a tenant token reaches only its own).
pub async fn delete_one(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    pk: &str,
) -> OpResult<()> {
    let tenant = scope(caller, named)?;
    if !state
        .store
        .delete_message_by_pk(tenant.as_deref(), pk)
        .await?
    {
        return Err(OpError::MessageNotFound(pk.to_string()));
    }
    Ok(())
}

/// Removes a tenant's terminal messages older than `older` seconds (default: the retention).
pub async fn cleanup(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    older: Option<i64>,
) -> OpResult<u64> {
    let tenant_id = scope_required(caller, named)?;
    let older = older.unwrap_or(state.retention_seconds).max(0);
    Ok(state
        .store
        .cleanup_messages(Some(&tenant_id), older, now_ts())
        .await?)
}

/// Unsent messages of all tenants (admin).
pub async fn count_active(state: &AppState) -> OpResult<i64> {
    Ok(state.store.count_pending().await?)
}

/// Unsent messages of one tenant, of one batch when given.
pub async fn count_pending(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    batch: Option<&str>,
) -> OpResult<i64> {
    let tenant_id = scope_required(caller, named)?;
    Ok(state
        .store
        .count_pending_for_tenant(&tenant_id, batch)
        .await?)
}
