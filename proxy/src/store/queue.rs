//! The dispatcher's side of the store (PROTOCOL.md §6.1, §6.3, §7.4): batched claims with leases,
//! lease extension and release, batched outcome writes, and the shared rate-limit log.
//!
//! On PostgreSQL a claim locks its candidate rows with `FOR UPDATE SKIP LOCKED`, so replicas never
//! hold the same message; a replica that dies loses nothing, because its leases expire and the
//! rows become claimable again. On SQLite (one replica) the same statement runs in SQLite's single
//! write transaction.

use serde_json::Value;
use sqlx::Row;

use super::{
    Backend, Result, Store,
    messages::{SqlVal, bind_values},
    now_text,
};
use crate::model::stored::StoredMessage;

/// A message claimed for sending.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// Primary key.
    pub pk: String,
    /// The tenant's message id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Account id.
    pub account_id: Option<String>,
    /// Account primary key (None for rows stored without one).
    pub account_pk: Option<String>,
    /// Priority 0..3.
    pub priority: i64,
    /// Canonical payload JSON; None when larger than [`CLAIMED_PAYLOAD_MAX`] (inline content),
    /// to be loaded with [`Store::start_large`] when its send starts.
    pub payload: Option<String>,
    /// Size of the payload in bytes.
    pub payload_bytes: i64,
    /// True when sending it loads attachments: its payload lists some, or was too large to be
    /// claimed (inline content). The dispatcher keeps some send slots for the others.
    pub has_attachments: bool,
    /// Retries so far.
    pub retry_count: i64,
    /// Enqueue time, Unix µs.
    pub queued_us: i64,
}

/// What happened to one claimed message; written with its event in one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Message primary key.
    pub pk: String,
    /// Tenant (for the event row).
    pub tenant_id: String,
    /// Event time.
    pub ts: i64,
    /// The result.
    pub kind: OutcomeKind,
}

/// Result of an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum OutcomeKind {
    /// Accepted by the SMTP server; metadata may list refused recipients.
    Sent {
        /// Event metadata (refused recipients), if any.
        metadata: Option<Value>,
    },
    /// Retry at `until`.
    Deferred {
        /// Next attempt.
        until: i64,
        /// `rate_limit` or the error text.
        reason: String,
        /// Retry count after this attempt.
        retry_count: i64,
        /// Event metadata.
        metadata: Value,
    },
    /// Terminal failure.
    Error {
        /// Description.
        description: String,
        /// Event metadata.
        metadata: Option<Value>,
    },
}

/// The claim statement. `{BLOCKED}` is replaced by conditions on tenants that are inactive or
/// suspended; with none (the usual case) the candidates come straight off the `messages_pending`
/// index in priority order. A join with `tenants` here made PostgreSQL scan and sort the whole
/// backlog on every claim (200 ms at 60,000 pending rows instead of 40 ms).
///
/// The list behind `{BLOCKED}` is read just before, so a tenant suspended in between would still
/// be claimed; the `NOT EXISTS` of the `UPDATE` checks the few chosen rows against the tenants as
/// they are when the statement runs (one primary-key lookup per row). `{FIND}` is the backend's
/// substring position function (`strpos`, `instr`): exact and case-sensitive, unlike `LIKE`.
const CLAIM_SQL: &str = "WITH candidates AS ( \
      SELECT m.pk, m.account_pk, m.priority, m.queued_us FROM messages m \
      WHERE m.smtp_ts IS NULL AND (m.deferred_ts IS NULL OR m.deferred_ts <= $1) \
        AND (m.claimed_until IS NULL OR m.claimed_until < $1) {BLOCKED} \
      ORDER BY m.priority, m.queued_us, m.pk LIMIT $2 {LOCK} \
    ), ranked AS ( \
      SELECT c.pk, c.priority, c.queued_us, \
        ROW_NUMBER() OVER (PARTITION BY c.account_pk ORDER BY c.priority, c.queued_us, c.pk) AS rn, \
        COALESCE(a.batch_size, $3) AS cap \
      FROM candidates c LEFT JOIN accounts a ON a.pk = c.account_pk \
    ), chosen AS ( \
      SELECT pk FROM ranked WHERE rn <= cap ORDER BY priority, queued_us, pk LIMIT $4 \
    ) \
    UPDATE messages SET claimed_by = $5, claimed_until = $6 \
    WHERE pk IN (SELECT pk FROM chosen) \
      AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = messages.tenant_id AND ( \
        t.active = 0 OR t.suspended_batches = '*' OR (messages.batch_code IS NOT NULL \
        AND t.suspended_batches IS NOT NULL \
        AND {FIND}(',' || t.suspended_batches || ',', ',' || messages.batch_code || ',') > 0))) \
    RETURNING pk, id, tenant_id, account_id, account_pk, priority, retry_count, queued_us, \
      CASE WHEN {LEN} <= {SMALL} THEN payload END AS payload, {LEN} AS payload_bytes";

/// Largest payload a claim returns, in bytes. Larger ones (inline attachments) are loaded one at
/// a time when their send starts, under the memory budget: a claim of 200 rows once returned
/// 200 payloads of any size at once, enough to take a replica down.
pub const CLAIMED_PAYLOAD_MAX: i64 = 64 * 1024;

/// How long a replica reuses the list of blocked tenants. The claim's own check is authoritative
/// (see `CLAIM_SQL`), so a stale list costs at most this long a wait: a tenant activated
/// elsewhere is claimed this much later, and one suspended elsewhere only occupies candidate
/// slots meanwhile. Changes made through this replica's store drop the list at once.
pub const BLOCKED_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Tenants whose messages must not be claimed: inactive or wholly suspended (`*`), and the
/// suspended batches of the others.
#[derive(Debug, Default, Clone)]
pub(crate) struct Blocked {
    tenants: Vec<String>,
    batches: Vec<(String, Vec<String>)>,
}

impl Blocked {
    /// SQL conditions with placeholders from `$7` on, and the values to bind in order.
    fn sql(&self) -> (String, Vec<String>) {
        let (mut sql, mut values) = (String::new(), Vec::new());
        let next = |v: &str, values: &mut Vec<String>| {
            values.push(v.to_string());
            format!("${}", 6 + values.len())
        };
        if !self.tenants.is_empty() {
            let p: Vec<String> = self.tenants.iter().map(|t| next(t, &mut values)).collect();
            sql.push_str(&format!(" AND m.tenant_id NOT IN ({})", p.join(", ")));
        }
        for (tenant, batches) in &self.batches {
            let t = next(tenant, &mut values);
            let p: Vec<String> = batches.iter().map(|b| next(b, &mut values)).collect();
            sql.push_str(&format!(
                " AND NOT (m.tenant_id = {t} AND m.batch_code IS NOT NULL AND m.batch_code IN ({}))",
                p.join(", ")
            ));
        }
        (sql, values)
    }
}

impl Store {
    /// Claims up to `limit` eligible messages for `replica`, at most `per_account` per account
    /// (unless the account sets its own `batch_size`), in priority then enqueue order. Also
    /// returns the number of statements it ran (1, or 2 when the blocked list was refreshed).
    pub async fn claim(
        &self,
        replica: &str,
        limit: i64,
        per_account: i64,
        now: i64,
        lease_seconds: i64,
    ) -> Result<(Vec<Claimed>, u64)> {
        let cached = self.blocked.lock().ok().and_then(|c| {
            c.as_ref()
                .filter(|(at, _)| at.elapsed() < BLOCKED_TTL)
                .map(|(_, b)| b.clone())
        });
        let (blocked, statements) = match cached {
            Some(b) => (b, 1),
            None => {
                let b = self.blocked_tenants().await?;
                if let Ok(mut c) = self.blocked.lock() {
                    *c = Some((std::time::Instant::now(), b.clone()));
                }
                (b, 2)
            }
        };
        let rows = self
            .claim_with(&blocked, replica, limit, per_account, now, lease_seconds)
            .await?;
        Ok((rows, statements))
    }

    /// Drops the cached blocked list, after a change of a tenant's state through this store.
    pub(crate) fn forget_blocked(&self) {
        if let Ok(mut c) = self.blocked.lock() {
            *c = None;
        }
    }

    /// [`Store::claim`] with a given list of blocked tenants (a test hands it a stale one).
    async fn claim_with(
        &self,
        blocked: &Blocked,
        replica: &str,
        limit: i64,
        per_account: i64,
        now: i64,
        lease_seconds: i64,
    ) -> Result<Vec<Claimed>> {
        let (lock, find, len) = match self.backend {
            Backend::Postgres => (
                "FOR UPDATE OF m SKIP LOCKED",
                "strpos",
                // The stored size: no need to decompress a large value to measure it.
                "CAST(octet_length(payload) AS BIGINT)",
            ),
            Backend::Sqlite => ("", "instr", "CAST(length(CAST(payload AS BLOB)) AS BIGINT)"),
        };
        let (blocked_sql, blocked_values) = blocked.sql();
        let sql = CLAIM_SQL
            .replace("{LOCK}", lock)
            .replace("{FIND}", find)
            .replace("{LEN}", len)
            .replace("{SMALL}", &CLAIMED_PAYLOAD_MAX.to_string())
            .replace("{BLOCKED}", &blocked_sql);
        let mut q = sqlx::query(&sql)
            .bind(now)
            .bind(limit.saturating_mul(2))
            .bind(per_account)
            .bind(limit)
            .bind(replica)
            .bind(now + lease_seconds);
        for v in blocked_values {
            q = q.bind(v);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut claimed = rows
            .iter()
            .map(|r| {
                let payload: Option<String> = r.try_get("payload")?;
                Ok(Claimed {
                    has_attachments: payload
                        .as_deref()
                        .is_none_or(StoredMessage::lists_attachments),
                    pk: r.try_get("pk")?,
                    id: r.try_get("id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    account_id: r.try_get("account_id")?,
                    account_pk: r.try_get("account_pk")?,
                    priority: r.try_get("priority")?,
                    payload,
                    payload_bytes: r.try_get("payload_bytes")?,
                    retry_count: r.try_get("retry_count")?,
                    queued_us: r.try_get("queued_us")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|c| (c.priority, c.queued_us));
        Ok(claimed)
    }

    async fn blocked_tenants(&self) -> Result<Blocked> {
        let rows = sqlx::query(
            "SELECT id, active, suspended_batches FROM tenants \
             WHERE active = 0 OR suspended_batches IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut blocked = Blocked::default();
        for r in rows {
            let id: String = r.try_get("id")?;
            let suspended: Option<String> = r.try_get("suspended_batches")?;
            match (r.try_get::<i64, _>("active")? != 0, suspended.as_deref()) {
                (false, _) | (true, Some("*")) => blocked.tenants.push(id),
                (true, Some(list)) => {
                    let batches: Vec<String> = list
                        .split(',')
                        .filter(|b| !b.is_empty())
                        .map(str::to_string)
                        .collect();
                    if !batches.is_empty() {
                        blocked.batches.push((id, batches));
                    }
                }
                (true, None) => {}
            }
        }
        Ok(blocked)
    }

    /// Extends the leases of the rows `pks` that this replica still holds. Only rows really in
    /// flight are named: extending every row the replica ever claimed kept rows whose outcome
    /// had been lost claimed for as long as the replica stayed busy.
    pub async fn extend_leases(&self, replica: &str, pks: &[String], until: i64) -> Result<u64> {
        let mut extended = 0;
        for chunk in pks.chunks(500) {
            let sql = format!(
                "UPDATE messages SET claimed_until = $2 WHERE claimed_by = $1 \
                 AND smtp_ts IS NULL AND pk IN {}",
                placeholders(1, chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql).bind(replica).bind(until);
            for pk in chunk {
                q = q.bind(pk);
            }
            extended += q.execute(&self.pool).await?.rows_affected();
        }
        Ok(extended)
    }

    /// Starts the send of a message claimed without its payload: counts the start and returns
    /// the count with the payload, or with None once the count passes `max_starts` (the message
    /// is to be parked; its payload is not read). None when `replica` lost the claim. The count
    /// goes back to 0 with the message's next outcome, so it counts the replicas that died (or
    /// were stopped) while sending it.
    pub async fn start_large(
        &self,
        pk: &str,
        replica: &str,
        max_starts: i64,
    ) -> Result<Option<(i64, Option<String>)>> {
        let row = sqlx::query(
            "UPDATE messages SET starts_without_outcome = starts_without_outcome + 1 \
             WHERE pk = $1 AND claimed_by = $2 \
             RETURNING starts_without_outcome, \
               CASE WHEN starts_without_outcome <= $3 THEN payload END AS payload",
        )
        .bind(pk)
        .bind(replica)
        .bind(max_starts)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// Releases claims so other replicas (or this one) may take the rows at once.
    pub async fn release_claims(&self, replica: &str, pks: &[String]) -> Result<()> {
        for chunk in pks.chunks(500) {
            let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "UPDATE messages SET claimed_by = NULL, claimed_until = NULL \
                 WHERE claimed_by = $1 AND pk IN ({})",
                params.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(replica);
            for pk in chunk {
                q = q.bind(pk);
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Writes a batch of outcomes in one transaction: the messages' new state with their claims
    /// cleared, then the events of the messages written. Only rows `replica` still holds are
    /// written: a late outcome (the lease expired and another replica took the message over)
    /// must not overwrite that replica's result. Outcomes of messages deleted or taken over
    /// meanwhile are discarded; their pks are returned.
    pub async fn record_outcomes(
        &self,
        replica: &str,
        outcomes: &[Outcome],
    ) -> Result<Vec<String>> {
        let now = now_text();
        let mut stale = Vec::new();
        let mut tx = self.begin().await?;
        for chunk in outcomes.chunks(200) {
            let mut events = Vec::with_capacity(chunk.len());
            let mut updates = Vec::with_capacity(chunk.len());
            for o in chunk {
                let (event_type, desc, meta, smtp_ts, deferred_ts, retry) = match &o.kind {
                    OutcomeKind::Sent { metadata } => {
                        ("sent", None, metadata.clone(), Some(o.ts), None, None)
                    }
                    OutcomeKind::Deferred {
                        until,
                        reason,
                        retry_count,
                        metadata,
                    } => (
                        "deferred",
                        Some(reason.clone()),
                        Some(metadata.clone()),
                        None,
                        Some(*until),
                        Some(*retry_count),
                    ),
                    OutcomeKind::Error {
                        description,
                        metadata,
                    } => (
                        "error",
                        Some(description.clone()),
                        metadata.clone(),
                        Some(o.ts),
                        None,
                        None,
                    ),
                };
                events.push([
                    SqlVal::text(&o.pk),
                    SqlVal::text(&o.tenant_id),
                    SqlVal::text(event_type),
                    SqlVal::Int(Some(o.ts)),
                    SqlVal::Text(desc),
                    SqlVal::Text(meta.map(|m| m.to_string())),
                ]);
                updates.push([
                    SqlVal::text(&o.pk),
                    SqlVal::Int(smtp_ts),
                    SqlVal::Int(deferred_ts),
                    SqlVal::Int(retry),
                ]);
            }
            let sql = format!(
                "WITH u(pk, smtp_ts, deferred_ts, retry_count) AS (VALUES {}) \
                 UPDATE messages SET smtp_ts = u.smtp_ts, deferred_ts = u.deferred_ts, \
                   retry_count = COALESCE(u.retry_count, messages.retry_count), \
                   claimed_by = NULL, claimed_until = NULL, starts_without_outcome = 0, \
                   updated_at = $1 \
                 FROM u WHERE messages.pk = u.pk AND messages.claimed_by = $2 \
                 RETURNING messages.pk",
                placeholders(chunk.len(), 4, 3)
            );
            let mut q = sqlx::query(&sql).bind(&now).bind(replica);
            for u in &updates {
                q = bind_values(q, u);
            }
            let written = q
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<std::result::Result<std::collections::HashSet<_>, _>>()?;
            let (events, gone): (Vec<_>, Vec<_>) = chunk
                .iter()
                .zip(events)
                .partition(|(o, _)| written.contains(&o.pk));
            stale.extend(gone.into_iter().map(|(o, _)| o.pk.clone()));
            if events.is_empty() {
                continue;
            }
            let sql = format!(
                "INSERT INTO message_events \
                 (message_pk, tenant_id, event_type, event_ts, description, metadata) VALUES {}",
                placeholders(events.len(), 6, 1)
            );
            let mut q = sqlx::query(&sql);
            for (_, e) in &events {
                q = bind_values(q, e);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(stale)
    }

    /// Checks the account's windows and, when allowed, reserves a send in `send_log` in the same
    /// transaction. Returns the first exceeded window, or None when the send may go.
    pub async fn reserve_send(
        &self,
        account_pk: &str,
        windows: &[(i64, i64)],
        message_pk: &str,
        now: i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1)::bigint)")
                .bind(account_pk)
                .execute(&mut *tx)
                .await?;
        }
        let mut counts = Vec::with_capacity(windows.len());
        for (w, _) in windows {
            let row =
                sqlx::query("SELECT COUNT(*) AS n FROM send_log WHERE account_pk = $1 AND ts > $2")
                    .bind(account_pk)
                    .bind(now - w)
                    .fetch_one(&mut *tx)
                    .await?;
            counts.push(row.try_get::<i64, _>("n")?);
        }
        let exceeded = crate::model::ratelimit::exceeded(windows, &counts);
        if exceeded.is_none() {
            sqlx::query("INSERT INTO send_log (account_pk, ts, message_pk) VALUES ($1, $2, $3)")
                .bind(account_pk)
                .bind(now)
                .bind(message_pk)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(exceeded)
    }

    /// Drops a reservation after a failed send.
    pub async fn cancel_reservation(&self, message_pk: &str) -> Result<()> {
        sqlx::query("DELETE FROM send_log WHERE message_pk = $1")
            .bind(message_pk)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Prunes the send log beyond the day window.
    pub async fn prune_send_log(&self, now: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM send_log WHERE ts < $1")
            .bind(now - 86_400)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}

/// `($s, $s+1, …), (…)` for `rows` rows of `cols` parameters starting at `$start`.
pub(crate) fn placeholders(rows: usize, cols: usize, start: usize) -> String {
    (0..rows)
        .map(|r| {
            let p: Vec<String> = (0..cols)
                .map(|c| format!("${}", start + r * cols + c))
                .collect();
            format!("({})", p.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[path = "queue/tests.rs"]
mod tests;
