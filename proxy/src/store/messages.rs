//! Message intake and management (contract §3.6, §3.4): the one upsert behind every entry point,
//! listing, deletes, cleanup and pending counts.
//!
//! An intake request is one transaction with a handful of statements whatever its size: one
//! lookup of the tenant's accounts, one of existing rows, then multi-row inserts.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};
use sqlx::Row;

use super::{Result, Store, accounts::Account, now_text, now_ts, now_us};
use crate::model::submit::{self, Draft, Rejection};

/// Where a batch of messages comes from, which decides their tenant.
#[derive(Debug, Clone, Copy)]
pub struct Intake<'a> {
    /// Tenant for messages that name none (the request's `tenant_id` or the token's tenant).
    pub default_tenant: Option<&'a str>,
    /// When set, every message must belong to this tenant (a tenant token, or the syncing
    /// tenant for inline messages); another value is `tenant mismatch`.
    pub forced_tenant: Option<&'a str>,
    /// Priority for messages with an invalid one (already normalised).
    pub default_priority: i64,
    /// Size limits of one message (recipients, headers, subject).
    pub limits: submit::Limits,
}

/// Result of an intake.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnqueueOutcome {
    /// Messages queued.
    pub queued: u64,
    /// Refused messages with their reasons, in request order.
    pub rejected: Vec<Rejection>,
    /// Queued per tenant (metrics).
    pub queued_by_tenant: BTreeMap<String, u64>,
    /// Rejected per tenant (metrics).
    pub rejected_by_tenant: BTreeMap<String, u64>,
}

impl EnqueueOutcome {
    /// `ok` of the response: false only if nothing was queued and some rejection is not
    /// `already sent`.
    pub fn ok(&self) -> bool {
        self.queued > 0 || self.rejected.iter().all(|r| r.reason == "already sent")
    }

    /// The `rejected` list of the response.
    pub fn rejected_json(&self) -> Value {
        Value::Array(
            self.rejected
                .iter()
                .map(|r| json!({"id": r.id, "reason": r.reason}))
                .collect(),
        )
    }
}

/// A tenant's default account id and its accounts.
type TenantAccounts = (Option<String>, Vec<Account>);

/// A message resolved against its tenant and account, ready to store.
struct Ready {
    draft: Draft,
    tenant_id: String,
    account: Account,
}

/// Why a message has no tenant it may be filed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoTenant {
    /// It names a tenant other than the caller's own.
    Mismatch,
    /// It names none and the request gives none.
    Missing,
}

impl NoTenant {
    fn reason(self) -> &'static str {
        match self {
            NoTenant::Mismatch => "tenant mismatch",
            NoTenant::Missing => "missing tenant_id",
        }
    }
}

impl Intake<'_> {
    /// The tenant a message belongs to, from the tenant it names (untrusted) and the request.
    fn tenant_for(&self, named: Option<&str>) -> std::result::Result<String, NoTenant> {
        match (
            named.filter(|t| !t.is_empty()),
            self.forced_tenant,
            self.default_tenant,
        ) {
            (Some(t), Some(f), _) if t != f => Err(NoTenant::Mismatch),
            (Some(t), _, _) => Ok(t.to_string()),
            (None, Some(f), _) | (None, None, Some(f)) => Ok(f.to_string()),
            (None, None, None) => Err(NoTenant::Missing),
        }
    }
}

impl Store {
    /// Normalises, validates and stores a batch of raw messages (§3.6).
    ///
    /// A refused message is recorded (an `error` row, so its tenant gets a report, and a count in
    /// `gmp_messages_rejected_total`) only under a tenant that exists and that the caller may act
    /// on: the tenant it is filed under, never one it merely names. A message from a tenant
    /// token (or an inline sync message) naming another tenant is `tenant mismatch`, whatever
    /// else is wrong with it, and is filed under the caller's own tenant.
    pub async fn enqueue(&self, raws: &[Value], intake: Intake<'_>) -> Result<EnqueueOutcome> {
        let mut out = EnqueueOutcome::default();
        let mut accounts: HashMap<String, Option<TenantAccounts>> = HashMap::new();
        let mut ready = Vec::new();
        let mut filed: Vec<(Rejection, String)> = Vec::new();
        for raw in raws {
            let normalised =
                submit::normalise_limited(raw, intake.default_priority, &intake.limits);
            let named = match &normalised {
                Ok(d) => d.tenant_id.clone(),
                Err(r) => r.tenant_id.clone(),
            };
            let id = match &normalised {
                Ok(d) => Some(d.id.clone()),
                Err(r) => r.id.clone(),
            };
            let (reason, home) = match (normalised, intake.tenant_for(named.as_deref())) {
                (_, Err(NoTenant::Mismatch)) => (
                    NoTenant::Mismatch.reason().to_string(),
                    intake.forced_tenant.map(str::to_string),
                ),
                (Err(r), tenant) => (r.reason, tenant.ok()),
                (Ok(_), Err(missing)) => (missing.reason().to_string(), None),
                (Ok(draft), Ok(tid)) => {
                    let entry = self.tenant_accounts(&mut accounts, &tid).await?;
                    match resolve(&draft, entry) {
                        Ok(account) => {
                            ready.push(Ready {
                                draft,
                                tenant_id: tid,
                                account,
                            });
                            continue;
                        }
                        Err(reason) => (reason.to_string(), Some(tid)),
                    }
                }
            };
            let rejection = Rejection {
                id,
                tenant_id: home.clone(),
                reason,
            };
            // Only an existing tenant gets a row and a metric series.
            if let Some(tid) = home
                && self.tenant_accounts(&mut accounts, &tid).await?.is_some()
            {
                *out.rejected_by_tenant.entry(tid.clone()).or_default() += 1;
                filed.push((rejection.clone(), tid));
            }
            out.rejected.push(rejection);
        }
        self.write_intake(ready, filed, &mut out).await?;
        Ok(out)
    }

    /// A tenant's default account and accounts, looked up once per request; None when the
    /// tenant does not exist.
    async fn tenant_accounts<'m>(
        &self,
        cache: &'m mut HashMap<String, Option<TenantAccounts>>,
        tid: &str,
    ) -> Result<Option<&'m TenantAccounts>> {
        if !cache.contains_key(tid) {
            let entry = match self.tenant(tid).await? {
                Some(t) => Some((t.default_account_id, self.accounts(tid).await?)),
                None => None,
            };
            cache.insert(tid.to_string(), entry);
        }
        Ok(cache.get(tid).and_then(Option::as_ref))
    }

    async fn write_intake(
        &self,
        ready: Vec<Ready>,
        rejections: Vec<(Rejection, String)>,
        out: &mut EnqueueOutcome,
    ) -> Result<()> {
        let now = now_ts();
        let mut tx = self.begin().await?;
        // Existing rows decide between insert, replace, `already sent` and `in progress`.
        let mut existing: HashMap<(String, String), (Option<i64>, Option<i64>)> = HashMap::new();
        let mut keys: Vec<(&str, &str)> = ready
            .iter()
            .map(|r| (r.tenant_id.as_str(), r.draft.id.as_str()))
            .collect();
        keys.extend(
            rejections
                .iter()
                .filter_map(|(r, t)| Some((t.as_str(), r.id.as_deref()?))),
        );
        for chunk in keys.chunks(400) {
            let mut sql =
                String::from("SELECT tenant_id, id, smtp_ts, claimed_until FROM messages WHERE ");
            let conds: Vec<String> = (0..chunk.len())
                .map(|i| format!("(tenant_id = ${} AND id = ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            sql.push_str(&conds.join(" OR "));
            let mut q = sqlx::query(&sql);
            for (t, i) in chunk {
                q = q.bind(*t).bind(*i);
            }
            for row in q.fetch_all(&mut *tx).await? {
                existing.insert(
                    (row.try_get("tenant_id")?, row.try_get("id")?),
                    (row.try_get("smtp_ts")?, row.try_get("claimed_until")?),
                );
            }
        }
        let (text_now, us) = (now_text(), now_us());
        let mut rows: Vec<[SqlVal; 9]> = Vec::new();
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        for r in ready {
            let key = (r.tenant_id.clone(), r.draft.id.clone());
            let reason = match existing.get(&key) {
                Some((Some(_), _)) => Some("already sent"),
                Some((None, Some(until))) if *until > now => Some("in progress"),
                _ => None,
            };
            if let Some(reason) = reason {
                *out.rejected_by_tenant
                    .entry(r.tenant_id.clone())
                    .or_default() += 1;
                out.rejected.push(Rejection {
                    id: Some(r.draft.id),
                    tenant_id: Some(r.tenant_id),
                    reason: reason.into(),
                });
                continue;
            }
            let mut payload: Map<String, Value> = r.draft.payload.clone();
            payload.insert("tenant_id".into(), json!(r.tenant_id));
            payload.insert("account_id".into(), json!(r.account.id));
            let from = r
                .draft
                .from
                .clone()
                .or(r.account.sender_email.clone())
                .unwrap_or_default();
            payload.insert("from".into(), json!(from));
            self.seal_attachment_auth(&mut payload);
            let row = [
                SqlVal::text(uuid::Uuid::new_v4().to_string()),
                SqlVal::text(&r.draft.id),
                SqlVal::text(&r.tenant_id),
                SqlVal::text(&r.account.id),
                SqlVal::text(&r.account.pk),
                SqlVal::Int(Some(r.draft.priority)),
                SqlVal::text(Value::Object(payload).to_string()),
                SqlVal::Text(r.draft.batch_code.clone()),
                SqlVal::Int(r.draft.deferred_ts),
            ];
            // A second copy of the same id in one request replaces the first.
            match seen.get(&key) {
                Some(&i) => rows[i] = row,
                None => {
                    seen.insert(key, rows.len());
                    rows.push(row);
                }
            }
            out.queued += 1;
            *out.queued_by_tenant.entry(r.tenant_id).or_default() += 1;
        }
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
            q.execute(&mut *tx).await?;
        }
        for (rej, tenant) in rejections {
            let Some(id) = rej.id.as_deref() else {
                continue;
            };
            let tenant = tenant.as_str();
            if existing.contains_key(&(tenant.to_string(), id.to_string())) {
                continue;
            }
            let pk = uuid::Uuid::new_v4().to_string();
            let stored = sqlx::query(
                "INSERT INTO messages (pk, id, tenant_id, priority, payload, smtp_ts, queued_us, created_at, updated_at) \
                 SELECT $1, $2, $3, 2, $4, $5, $6, $7, $7 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $3) \
                 ON CONFLICT (tenant_id, id) DO NOTHING",
            )
            .bind(&pk)
            .bind(id)
            .bind(tenant)
            .bind(json!({"id": id, "tenant_id": tenant}).to_string())
            .bind(now)
            .bind(us)
            .bind(&text_now)
            .execute(&mut *tx)
            .await?;
            if stored.rows_affected() > 0 {
                sqlx::query("INSERT INTO message_events (message_pk, tenant_id, event_type, event_ts, description) VALUES ($1, $2, 'error', $3, $4)")
                    .bind(&pk)
                    .bind(tenant)
                    .bind(now)
                    .bind(&rej.reason)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
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

/// Picks the account of a draft: the named one, else the tenant's default, else its first.
fn resolve(draft: &Draft, entry: Option<&TenantAccounts>) -> Result<Account, &'static str> {
    let Some((default_id, accounts)) = entry else {
        return Err("tenant not found");
    };
    let wanted = draft.account_id.clone().or(default_id.clone());
    let account = match wanted {
        Some(id) => accounts
            .iter()
            .find(|a| a.id == id)
            .ok_or("account not found for tenant")?,
        None => accounts.first().ok_or("missing account_id")?,
    };
    if draft.from.is_none() && account.sender_email.as_deref().is_none_or(str::is_empty) {
        return Err("missing from");
    }
    Ok(account.clone())
}
