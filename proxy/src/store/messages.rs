//! Message intake and management (PROTOCOL.md §3.6, §3.4): the reads and writes behind every
//! intake (the decisions are [`crate::intake`]'s), listing, deletes, cleanup and pending counts.
//!
//! An intake request is one transaction with a handful of statements whatever its size: one
//! lookup of the tenants' accounts, one of existing rows, then multi-row inserts.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use sqlx::Row;

use super::{Result, Store, now_text, now_ts, now_us};
use crate::intake::{self, AccountRef, Existing, Outcome, Plan, Scope, TenantAccounts};

impl Store {
    /// Normalises, validates and stores a batch of raw messages (§3.6): [`intake::place`], the
    /// two reads, [`intake::decide`], then the plan's writes in one transaction.
    pub async fn enqueue(&self, raws: &[Value], scope: Scope<'_>) -> Result<Outcome> {
        let placed = intake::place(raws, &scope);
        let mut known = HashMap::new();
        for tid in intake::tenants(&placed) {
            if let Some(accounts) = self.intake_accounts(tid).await? {
                known.insert(tid.to_string(), accounts);
            }
        }
        let mut tx = self.begin().await?;
        let existing = existing_rows(&mut tx, &intake::keys(&placed, &known)).await?;
        let plan = intake::decide(placed, &known, &existing, now_ts());
        self.write_plan(&mut tx, &plan).await?;
        tx.commit().await?;
        Ok(plan.outcome)
    }

    /// A tenant's default account and accounts; None when the tenant does not exist.
    async fn intake_accounts(&self, tid: &str) -> Result<Option<TenantAccounts>> {
        let Some(tenant) = self.tenant(tid).await? else {
            return Ok(None);
        };
        let accounts = self.accounts(tid).await?;
        Ok(Some(TenantAccounts {
            default_account_id: tenant.default_account_id,
            accounts: accounts
                .into_iter()
                .map(|a| AccountRef {
                    id: a.id,
                    pk: a.pk,
                    sender_email: a.sender_email,
                })
                .collect(),
        }))
    }

    /// Writes an intake plan: multi-row upserts of the accepted messages (an unsent row with the
    /// same id is replaced, a sent one never), then the refusals as terminal `error` rows.
    async fn write_plan(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        plan: &Plan,
    ) -> Result<()> {
        let now = now_ts();
        let (text_now, us) = (now_text(), now_us());
        let rows: Vec<[SqlVal; 9]> = plan
            .inserts
            .iter()
            .map(|m| {
                let mut payload = m.payload.clone();
                self.seal_attachment_auth(&mut payload);
                [
                    SqlVal::text(message_pk()),
                    SqlVal::text(&m.id),
                    SqlVal::text(&m.tenant_id),
                    SqlVal::text(&m.account.id),
                    SqlVal::text(&m.account.pk),
                    SqlVal::Int(Some(m.priority)),
                    SqlVal::text(Value::Object(payload).to_string()),
                    SqlVal::Text(m.batch_code.clone()),
                    SqlVal::Int(m.deferred_ts),
                ]
            })
            .collect();
        for chunk in rows.chunks(100) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p: Vec<String> = (1..=9).map(|c| format!("${}", i * 9 + c + 2)).collect();
                    format!("({}, $1, $2, $2)", p.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO messages (pk, id, tenant_id, account_id, account_pk, priority, payload, \
                   batch_code, deferred_ts, queued_us, created_at, updated_at) VALUES {} \
                 ON CONFLICT (tenant_id, id) DO UPDATE SET account_id = excluded.account_id, \
                   account_pk = excluded.account_pk, priority = excluded.priority, \
                   payload = excluded.payload, batch_code = excluded.batch_code, \
                   deferred_ts = excluded.deferred_ts, queued_us = excluded.queued_us, \
                   updated_at = excluded.updated_at \
                 WHERE messages.smtp_ts IS NULL",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(us).bind(&text_now);
            for row in chunk {
                q = bind_values(q, row);
            }
            q.execute(&mut **tx).await?;
        }
        for refused in &plan.refused_rows {
            let pk = message_pk();
            let stored = sqlx::query(
                "INSERT INTO messages (pk, id, tenant_id, priority, payload, smtp_ts, queued_us, created_at, updated_at) \
                 SELECT $1, $2, $3, 2, $4, $5, $6, $7, $7 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $3) \
                 ON CONFLICT (tenant_id, id) DO NOTHING",
            )
            .bind(&pk)
            .bind(&refused.id)
            .bind(&refused.tenant_id)
            .bind(json!({"id": refused.id, "tenant_id": refused.tenant_id}).to_string())
            .bind(now)
            .bind(us)
            .bind(&text_now)
            .execute(&mut **tx)
            .await?;
            if stored.rows_affected() > 0 {
                sqlx::query("INSERT INTO message_events (message_pk, tenant_id, event_type, event_ts, description) VALUES ($1, $2, 'error', $3, $4)")
                    .bind(&pk)
                    .bind(&refused.tenant_id)
                    .bind(now)
                    .bind(refused.reason.as_str())
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }

    /// Unsent messages of all tenants (the `gmp_pending_messages` gauge).
    pub async fn count_pending(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM messages WHERE smtp_ts IS NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Unsent messages per tenant.
    pub async fn count_pending_by_tenant(&self) -> Result<BTreeMap<String, i64>> {
        let rows = sqlx::query("SELECT tenant_id, COUNT(*) AS n FROM messages WHERE smtp_ts IS NULL GROUP BY tenant_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tenant_id")?, r.try_get("n")?)))
            .collect()
    }

    /// Unsent messages of one tenant, of one batch when given.
    pub async fn count_pending_for_tenant(
        &self,
        tenant_id: &str,
        batch: Option<&str>,
    ) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM messages WHERE smtp_ts IS NULL AND tenant_id = $1 \
             AND ($2 IS NULL OR batch_code = $2)",
        )
        .bind(tenant_id)
        .bind(batch)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}

/// A new message's primary key: a time-ordered UUID (version 7), so that new keys land at the
/// right edge of the `messages` and `message_events` indexes on it. Random (version 4) keys landed
/// anywhere: each insert dirtied another index page, and after every checkpoint each page's first
/// change wrote the whole page to the WAL.
fn message_pk() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The rows that exist under the given `(tenant, id)` keys: whether each was sent, and until
/// when a replica holds it. The keys are a `VALUES` list joined with `messages`, so each is one
/// probe of the `(tenant_id, id)` index whatever the planner knows of the table. An `OR` of one
/// condition per key cost about 1.5 ms of planning per 100 keys; `tenant_id = $1 AND id IN (…)`
/// plans fast, but before the table's first statistics PostgreSQL answered it by reading every
/// row of the tenant (seen under `bench/throughput.py` with `auto_explain`).
async fn existing_rows(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    keys: &[(&str, &str)],
) -> Result<HashMap<(String, String), Existing>> {
    let mut existing = HashMap::new();
    for chunk in keys.chunks(500) {
        let sql = format!(
            "WITH k(t, i) AS (VALUES {}) \
             SELECT m.tenant_id, m.id, m.smtp_ts, m.claimed_until \
             FROM k JOIN messages m ON m.tenant_id = k.t AND m.id = k.i",
            super::queue::placeholders(chunk.len(), 2, 1)
        );
        let mut q = sqlx::query(&sql);
        for (t, i) in chunk {
            q = q.bind(*t).bind(*i);
        }
        for row in q.fetch_all(&mut **tx).await? {
            existing.insert(
                (row.try_get("tenant_id")?, row.try_get("id")?),
                Existing {
                    smtp_ts: row.try_get("smtp_ts")?,
                    claimed_until: row.try_get("claimed_until")?,
                },
            );
        }
    }
    Ok(existing)
}

/// A typed SQL value for multi-row statements (typed nulls keep PostgreSQL's inference happy).
#[derive(Debug, Clone)]
pub(crate) enum SqlVal {
    /// Text or null text.
    Text(Option<String>),
    /// Integer or null integer.
    Int(Option<i64>),
}

impl SqlVal {
    pub(crate) fn text(s: impl Into<String>) -> Self {
        SqlVal::Text(Some(s.into()))
    }
}

/// Binds a row of typed values.
pub(crate) fn bind_values<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    row: &[SqlVal],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for v in row {
        q = match v {
            SqlVal::Text(s) => q.bind(s.clone()),
            SqlVal::Int(i) => q.bind(*i),
        };
    }
    q
}
