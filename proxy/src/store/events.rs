//! Message events and delivery reports (PROTOCOL.md §4.2, §4.4, §7.3): the unreported events of a
//! tenant, acknowledgement, refusal counting, and the message listing and deletes that read them.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use sqlx::Row;

use super::{Result, Store, queue::placeholders};

/// Marks events reported (acknowledged) or counts a refusal, a statement per 500 ids, on the
/// caller's connection (the sync call's closing transaction, `Store::sync_succeeded`).
pub(crate) async fn settle_reports(
    conn: &mut sqlx::AnyConnection,
    acked: &[i64],
    refused: &[i64],
    now: i64,
) -> Result<()> {
    for (ids, sql) in [
        (
            acked,
            "UPDATE message_events SET reported_ts = $1 WHERE id IN ({})",
        ),
        (
            refused,
            "UPDATE message_events SET report_attempts = report_attempts + 1 WHERE id IN ({})",
        ),
    ] {
        for chunk in ids.chunks(500) {
            let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = sql.replace("{}", &params.join(", "));
            let mut q = sqlx::query(&sql).bind(now);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// One unreported event, ready to become a delivery report.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingReport {
    /// Event id.
    pub event_id: i64,
    /// The tenant's message id.
    pub message_id: String,
    /// `sent`, `error`, `deferred`, `bounce`.
    pub event_type: String,
    /// Event time.
    pub event_ts: i64,
    /// Description (error text, deferral reason).
    pub description: Option<String>,
    /// Metadata JSON.
    pub metadata: Option<Value>,
}

impl Store {
    /// A tenant's unreported, non-dead events, oldest first.
    pub async fn pending_reports(
        &self,
        tenant_id: &str,
        limit: i64,
        max_attempts: i64,
    ) -> Result<Vec<PendingReport>> {
        let rows = sqlx::query(
            "SELECT e.id, m.id AS message_id, e.event_type, e.event_ts, e.description, e.metadata \
             FROM message_events e JOIN messages m ON m.pk = e.message_pk \
             WHERE e.tenant_id = $1 AND e.reported_ts IS NULL AND e.report_attempts < $2 \
             ORDER BY e.event_ts, e.id LIMIT $3",
        )
        .bind(tenant_id)
        .bind(max_attempts)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let meta: Option<String> = r.try_get("metadata")?;
                Ok(PendingReport {
                    event_id: r.try_get("id")?,
                    message_id: r.try_get("message_id")?,
                    event_type: r.try_get("event_type")?,
                    event_ts: r.try_get("event_ts")?,
                    description: r.try_get("description")?,
                    metadata: meta.and_then(|m| serde_json::from_str(&m).ok()),
                })
            })
            .collect()
    }

    /// Whether a tenant has unreported, non-dead events.
    pub async fn has_pending_reports(&self, tenant_id: &str, max_attempts: i64) -> Result<bool> {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM message_events WHERE tenant_id = $1 \
             AND reported_ts IS NULL AND report_attempts < $2) AS x",
        )
        .bind(tenant_id)
        .bind(max_attempts)
        .fetch_one(&self.pool)
        .await?;
        Ok(row
            .try_get::<bool, _>("x")
            .or_else(|_| row.try_get::<i64, _>("x").map(|v| v != 0))?)
    }

    /// One message of a tenant as a MessageRecord (§3.5), by its id.
    pub async fn get_message(
        &self,
        tenant_id: &str,
        id: &str,
        include_history: bool,
    ) -> Result<Option<Value>> {
        let found = self
            .message_records(tenant_id, Some(id), false, include_history, 1, 0)
            .await?;
        Ok(found.into_iter().next())
    }

    /// Lists a tenant's messages as MessageRecords (§3.5).
    pub async fn list_messages(
        &self,
        tenant_id: &str,
        active_only: bool,
        include_history: bool,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Value>> {
        self.message_records(tenant_id, None, active_only, include_history, limit, offset)
            .await
    }

    async fn message_records(
        &self,
        tenant_id: &str,
        id: Option<&str>,
        active_only: bool,
        include_history: bool,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Value>> {
        let sql = format!(
            "SELECT m.pk, m.id, m.tenant_id, t.name AS tenant_name, m.account_id, m.priority, \
               m.batch_code, m.deferred_ts, m.smtp_ts, m.retry_count, m.created_at, m.updated_at, \
               m.is_pec, m.payload, \
               (SELECT e.event_ts FROM message_events e WHERE e.message_pk = m.pk AND e.event_type = 'error' ORDER BY e.id DESC LIMIT 1) AS error_ts, \
               (SELECT e.description FROM message_events e WHERE e.message_pk = m.pk AND e.event_type = 'error' ORDER BY e.id DESC LIMIT 1) AS error \
             FROM messages m JOIN tenants t ON t.id = m.tenant_id \
             WHERE m.tenant_id = $1 {}{} ORDER BY m.queued_us, m.pk LIMIT $2 OFFSET $3",
            if active_only {
                "AND m.smtp_ts IS NULL"
            } else {
                ""
            },
            if id.is_some() { " AND m.id = $4" } else { "" }
        );
        let mut query = sqlx::query(&sql).bind(tenant_id).bind(limit).bind(offset);
        if let Some(id) = id {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let smtp_ts: Option<i64> = r.try_get("smtp_ts")?;
            let deferred_ts: Option<i64> = r.try_get("deferred_ts")?;
            let error: Option<String> = r.try_get("error")?;
            let status = match (smtp_ts, &error, deferred_ts) {
                (Some(_), Some(_), _) => "error",
                (Some(_), None, _) => "sent",
                (None, _, Some(_)) => "deferred",
                (None, _, None) => "pending",
            };
            let payload: String = r.try_get("payload")?;
            let mut message: Value = serde_json::from_str(&payload)?;
            redact_base64(&mut message);
            let pk: String = r.try_get("pk")?;
            let rec = json!({
                "pk": pk, "id": r.try_get::<String, _>("id")?, "tenant_id": r.try_get::<String, _>("tenant_id")?,
                "tenant_name": r.try_get::<Option<String>, _>("tenant_name")?,
                "account_id": r.try_get::<Option<String>, _>("account_id")?,
                "priority": r.try_get::<i64, _>("priority")?, "batch_code": r.try_get::<Option<String>, _>("batch_code")?,
                "deferred_ts": deferred_ts, "smtp_ts": smtp_ts, "retry_count": r.try_get::<i64, _>("retry_count")?,
                "created_at": r.try_get::<String, _>("created_at")?, "updated_at": r.try_get::<String, _>("updated_at")?,
                "is_pec": r.try_get::<i64, _>("is_pec")? != 0, "error_ts": r.try_get::<Option<i64>, _>("error_ts")?,
                "error": error, "status": status, "message": message,
            });
            out.push(rec);
        }
        if include_history {
            let pks: Vec<String> = out
                .iter()
                .filter_map(|r| r["pk"].as_str().map(str::to_string))
                .collect();
            let mut histories = self.histories(&pks).await?;
            for rec in &mut out {
                let pk = rec["pk"].as_str().unwrap_or_default().to_string();
                rec["history"] = Value::Array(histories.remove(&pk).unwrap_or_default());
            }
        }
        Ok(out)
    }

    /// The events of these messages by message pk, each list in event order: one query per 500
    /// messages (it was one per message: a page of 10,000 took 10,000 queries).
    async fn histories(&self, message_pks: &[String]) -> Result<HashMap<String, Vec<Value>>> {
        let mut by_pk: HashMap<String, Vec<Value>> = HashMap::new();
        for chunk in message_pks.chunks(500) {
            let sql = format!(
                "SELECT message_pk, id, event_type, event_ts, description, metadata, reported_ts \
                 FROM message_events WHERE message_pk IN {} ORDER BY message_pk, event_ts, id",
                placeholders(1, chunk.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for pk in chunk {
                q = q.bind(pk);
            }
            for r in q.fetch_all(&self.pool).await? {
                let meta: Option<String> = r.try_get("metadata")?;
                let event = json!({
                    "event_id": r.try_get::<i64, _>("id")?, "event_type": r.try_get::<String, _>("event_type")?,
                    "event_ts": r.try_get::<i64, _>("event_ts")?, "description": r.try_get::<Option<String>, _>("description")?,
                    "metadata": meta.and_then(|m| serde_json::from_str::<Value>(&m).ok()),
                    "reported_ts": r.try_get::<Option<i64>, _>("reported_ts")?,
                });
                by_pk
                    .entry(r.try_get::<String, _>("message_pk")?)
                    .or_default()
                    .push(event);
            }
        }
        Ok(by_pk)
    }

    /// Deletes one message (and its events) by primary key, of one tenant when given; false
    /// when there is none.
    pub async fn delete_message_by_pk(&self, tenant_id: Option<&str>, pk: &str) -> Result<bool> {
        let r =
            sqlx::query("DELETE FROM messages WHERE pk = $1 AND ($2 IS NULL OR tenant_id = $2)")
                .bind(pk)
                .bind(tenant_id)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Deletes a tenant's messages by id: (removed, not_found, unauthorized).
    pub async fn delete_messages(
        &self,
        tenant_id: &str,
        ids: &[String],
    ) -> Result<(u64, Vec<String>, Vec<String>)> {
        let mut owners: Vec<(String, String)> = Vec::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT id, tenant_id FROM messages WHERE id IN {}",
                placeholders(1, chunk.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&self.pool).await? {
                owners.push((r.try_get("id")?, r.try_get("tenant_id")?));
            }
        }
        let mine: HashSet<&str> = owners
            .iter()
            .filter(|(_, t)| t == tenant_id)
            .map(|(i, _)| i.as_str())
            .collect();
        let anyone: HashSet<&str> = owners.iter().map(|(i, _)| i.as_str()).collect();
        let not_found = ids
            .iter()
            .filter(|i| !anyone.contains(i.as_str()))
            .cloned()
            .collect();
        let unauthorized = ids
            .iter()
            .filter(|i| anyone.contains(i.as_str()) && !mine.contains(i.as_str()))
            .cloned()
            .collect();
        let mut removed = 0;
        let mine: Vec<&str> = mine.into_iter().collect();
        for chunk in mine.chunks(500) {
            let sql = format!(
                "DELETE FROM messages WHERE tenant_id = $1 AND id IN {}",
                placeholders(1, chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql).bind(tenant_id);
            for id in chunk {
                q = q.bind(*id);
            }
            removed += q.execute(&self.pool).await?.rows_affected();
        }
        Ok((removed, not_found, unauthorized))
    }

    /// Deletes a tenant's terminal, fully reported messages whose latest event is older than
    /// `now - older_than`.
    pub async fn cleanup_messages(
        &self,
        tenant_id: Option<&str>,
        older_than: i64,
        now: i64,
    ) -> Result<u64> {
        let r = sqlx::query(
            "DELETE FROM messages WHERE ($1 IS NULL OR tenant_id = $1) AND smtp_ts IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM message_events e WHERE e.message_pk = messages.pk AND e.reported_ts IS NULL) \
             AND COALESCE((SELECT MAX(e.event_ts) FROM message_events e WHERE e.message_pk = messages.pk), smtp_ts) < $2",
        )
        .bind(tenant_id)
        .bind(now - older_than)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }
}

/// Shows base64 attachment data as `"<N bytes>"`, and an attachment's own credentials
/// (`auth.token`, `auth.password`) as `"***"`: secrets are never returned.
fn redact_base64(message: &mut Value) {
    if let Some(atts) = message.get_mut("attachments").and_then(Value::as_array_mut) {
        for a in atts {
            if let Some(auth) = a.get_mut("auth").and_then(Value::as_object_mut) {
                for key in ["token", "password"] {
                    if let Some(v) = auth.get_mut(key) {
                        *v = json!("***");
                    }
                }
            }
            if a.get("fetch_mode").and_then(Value::as_str) == Some("base64") {
                let n = a
                    .get("storage_path")
                    .and_then(Value::as_str)
                    .map(|s| s.len() * 3 / 4)
                    .unwrap_or(0);
                a["storage_path"] = json!(format!("<{n} bytes>"));
            }
        }
    }
}
