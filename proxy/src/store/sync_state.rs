//! Sync scheduling state in the `tenants` table (PROTOCOL.md §4.5): which tenants are due, the
//! per-tenant lease that lets one replica at a time call a tenant, and the state after a call.

use sqlx::Row;

use super::{Result, Store};

/// What a successful sync call settles.
#[derive(Debug, Clone, Copy)]
pub struct SyncDone<'a> {
    /// When the call ended.
    pub now: i64,
    /// The client's do-not-disturb instant, if any.
    pub dnd_until: Option<i64>,
    /// Call again at once (the client has more, or more reports wait).
    pub requested: bool,
    /// Event ids the client acknowledged.
    pub acked: &'a [i64],
    /// Event ids the client refused.
    pub refused: &'a [i64],
}

impl Store {
    /// Tenants due for a sync call now, least recently synced first (§4.5 rules 1–4), skipping
    /// tenants backing off or leased by a replica. A tenant without any SMTP account is not
    /// called unless it has reports to deliver: the messages it would answer with could only
    /// fail (this closes the window between registering a tenant and its account). Calls made
    /// only to deliver reports keep `report_gap` seconds apart.
    pub async fn due_tenants(
        &self,
        now: i64,
        interval: i64,
        max_attempts: i64,
        limit: i64,
        report_gap: i64,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT t.id FROM tenants t WHERE t.active = 1 \
               AND t.client_base_url IS NOT NULL AND t.client_base_url <> '' \
               AND (t.sync_retry_at IS NULL OR t.sync_retry_at <= $1) \
               AND (t.sync_claimed_until IS NULL OR t.sync_claimed_until < $1) \
               AND (EXISTS (SELECT 1 FROM accounts a WHERE a.tenant_id = t.id) \
                 OR EXISTS (SELECT 1 FROM message_events e WHERE e.tenant_id = t.id \
                      AND e.reported_ts IS NULL AND e.report_attempts < $3)) \
               AND (t.sync_requested = 1 OR t.last_sync_ts IS NULL \
                 OR (t.dnd_until IS NOT NULL AND t.dnd_until <= $1) \
                 OR (t.dnd_until IS NULL AND t.last_sync_ts + $2 <= $1) \
                 OR ((t.last_sync_ts IS NULL OR t.last_sync_ts + $5 <= $1) \
                   AND EXISTS (SELECT 1 FROM message_events e WHERE e.tenant_id = t.id \
                      AND e.reported_ts IS NULL AND e.report_attempts < $3))) \
             ORDER BY t.last_sync_ts NULLS FIRST, t.id LIMIT $4",
        )
        .bind(now)
        .bind(interval)
        .bind(max_attempts)
        .bind(limit)
        .bind(report_gap)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// Takes the sync lease of a tenant: true when this replica may call it now.
    pub async fn claim_sync(&self, id: &str, replica: &str, now: i64, until: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE tenants SET sync_claimed_by = $2, sync_claimed_until = $3 WHERE id = $1 \
             AND (sync_claimed_until IS NULL OR sync_claimed_until < $4)",
        )
        .bind(id)
        .bind(replica)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records a successful call in one transaction: the acknowledged reports marked reported,
    /// the refused ones counted, the tenant's next-call state set and its lease released.
    pub async fn sync_succeeded(&self, id: &str, replica: &str, done: &SyncDone<'_>) -> Result<()> {
        let mut tx = self.begin().await?;
        super::events::settle_reports(&mut tx, done.acked, done.refused, done.now).await?;
        sqlx::query(
            "UPDATE tenants SET last_sync_ts = $3, dnd_until = $4, sync_requested = $5, \
               sync_failures = 0, sync_retry_at = NULL, sync_claimed_by = NULL, sync_claimed_until = NULL \
             WHERE id = $1 AND (sync_claimed_by = $2 OR sync_claimed_by IS NULL)",
        )
        .bind(id)
        .bind(replica)
        .bind(done.now)
        .bind(done.dnd_until)
        .bind(i64::from(done.requested))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed call: backoff `min(300, 5 × 2^(failures − 1))` s, lease released.
    pub async fn sync_failed(&self, id: &str, replica: &str, now: i64) -> Result<i64> {
        let row = sqlx::query("SELECT sync_failures FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let failures = row
            .map(|r| r.try_get::<i64, _>("sync_failures"))
            .transpose()?
            .unwrap_or(0)
            + 1;
        let backoff = crate::model::retry::sync_backoff_seconds(failures);
        sqlx::query(
            "UPDATE tenants SET sync_failures = $3, sync_retry_at = $4, sync_claimed_by = NULL, \
               sync_claimed_until = NULL WHERE id = $1 AND (sync_claimed_by = $2 OR sync_claimed_by IS NULL)",
        )
        .bind(id)
        .bind(replica)
        .bind(failures)
        .bind(now + backoff)
        .execute(&self.pool)
        .await?;
        Ok(failures)
    }
}
