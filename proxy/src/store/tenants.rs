//! Tenants (PROTOCOL.md §3.5, §7.1): partial upserts, listing, deletes, API keys, suspension and the
//! sync-state columns.

use mailproxy_proto::patch::TenantPatchV1;
use serde_json::{Map, Value, json};
use sqlx::{Row, any::AnyRow};

use super::{Result, Store, b, now_text};

/// A tenant as stored, secrets decrypted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tenant {
    /// Tenant id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// `{"method","token","user","password"}` (decrypted; never returned whole).
    pub client_auth: Option<Value>,
    /// Base URL of the tenant application.
    pub client_base_url: Option<String>,
    /// Sync path (null = default).
    pub client_sync_path: Option<String>,
    /// Attachment path (null = default).
    pub client_attachment_path: Option<String>,
    /// Account for messages that name none.
    pub default_account_id: Option<String>,
    /// Stored only.
    pub rate_limits: Option<Value>,
    /// Large-file configuration.
    pub large_file_config: Option<Value>,
    /// Inactive tenants are neither dispatched nor synced.
    pub active: bool,
    /// `*` or a sorted comma list of suspended batch codes.
    pub suspended_batches: Option<String>,
    /// Expiry of the API key (Unix seconds).
    pub api_key_expires_at: Option<i64>,
    /// Creation time.
    pub created_at: String,
    /// Last update.
    pub updated_at: String,
}

/// The tenant an API key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    /// Tenant id.
    pub id: String,
    /// False while the admin has the tenant suspended: its token is refused.
    pub active: bool,
}

const COLUMNS: &str = "id, name, client_auth, client_base_url, client_sync_path, \
    client_attachment_path, default_account_id, rate_limits, large_file_config, active, \
    suspended_batches, api_key_expires_at, created_at, updated_at";

impl Tenant {
    /// The sync path, defaulted (§3.5).
    pub fn sync_path(&self) -> &str {
        non_empty(&self.client_sync_path).unwrap_or("/mail-proxy/sync")
    }

    /// The attachment path, defaulted (§3.5).
    pub fn attachment_path(&self) -> &str {
        non_empty(&self.client_attachment_path).unwrap_or("/mail-proxy/attachments")
    }

    /// The response form: secrets removed; `classic` omits nulls and `suspended_batches`.
    pub fn to_json(&self, classic: bool) -> Value {
        let auth = self.client_auth.as_ref().map(|a| {
            let mut shown = Map::new();
            for key in ["method", "user"] {
                if let Some(v) = a.get(key) {
                    shown.insert(key.into(), v.clone());
                }
            }
            Value::Object(shown)
        });
        let mut v = json!({
            "id": self.id, "name": self.name, "client_auth": auth,
            "client_base_url": self.client_base_url, "client_sync_path": self.client_sync_path,
            "client_attachment_path": self.client_attachment_path,
            "default_account_id": self.default_account_id, "rate_limits": self.rate_limits,
            "large_file_config": self.large_file_config, "active": self.active,
            "suspended_batches": self.suspended_batches,
            "api_key_expires_at": self.api_key_expires_at,
            "created_at": self.created_at, "updated_at": self.updated_at,
        });
        if classic && let Some(map) = v.as_object_mut() {
            map.remove("suspended_batches");
            map.retain(|_, v| !v.is_null());
        }
        v
    }

    /// Applies the fields the update names (`active: null` is true).
    pub fn apply(&mut self, patch: TenantPatchV1) {
        patch.name.apply_to(&mut self.name);
        patch.client_base_url.apply_to(&mut self.client_base_url);
        patch.client_sync_path.apply_to(&mut self.client_sync_path);
        patch
            .client_attachment_path
            .apply_to(&mut self.client_attachment_path);
        patch
            .default_account_id
            .apply_to(&mut self.default_account_id);
        patch.client_auth.apply_to(&mut self.client_auth);
        patch.rate_limits.apply_to(&mut self.rate_limits);
        patch
            .large_file_config
            .apply_to(&mut self.large_file_config);
        patch.active.apply_or(&mut self.active, true);
        patch
            .api_key_expires_at
            .apply_to(&mut self.api_key_expires_at);
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

impl Store {
    fn tenant_from_row(&self, row: &AnyRow) -> Result<Tenant> {
        let json_col = |name: &str| -> Result<Option<Value>> {
            let raw: Option<String> = row.try_get(name)?;
            Ok(raw.map(|s| serde_json::from_str(&s)).transpose()?)
        };
        let auth: Option<String> = row.try_get("client_auth")?;
        let client_auth = match auth {
            Some(s) => Some(serde_json::from_str(&self.cipher.decrypt(&s)?)?),
            None => None,
        };
        Ok(Tenant {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            client_auth,
            client_base_url: row.try_get("client_base_url")?,
            client_sync_path: row.try_get("client_sync_path")?,
            client_attachment_path: row.try_get("client_attachment_path")?,
            default_account_id: row.try_get("default_account_id")?,
            rate_limits: json_col("rate_limits")?,
            large_file_config: json_col("large_file_config")?,
            active: row.try_get::<i64, _>("active")? != 0,
            suspended_batches: row.try_get("suspended_batches")?,
            api_key_expires_at: row.try_get("api_key_expires_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    /// One tenant by id.
    pub async fn tenant(&self, id: &str) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.tenant_from_row(&r)).transpose()
    }

    /// All tenants by id, optionally only active ones.
    pub async fn tenants(&self, active_only: bool) -> Result<Vec<Tenant>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM tenants {} ORDER BY id",
            if active_only { "WHERE active = 1" } else { "" }
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(|r| self.tenant_from_row(r)).collect()
    }

    /// Creates or partially updates a tenant: `created = true` when the row is new; None when
    /// `must_exist` and it does not.
    pub async fn upsert_tenant(
        &self,
        id: &str,
        patch: TenantPatchV1,
        must_exist: bool,
    ) -> Result<Option<(Tenant, bool)>> {
        let existing = self.tenant(id).await?;
        if must_exist && existing.is_none() {
            return Ok(None);
        }
        let created = existing.is_none();
        let now = now_text();
        let mut t = existing.unwrap_or_else(|| Tenant {
            id: id.to_string(),
            active: true,
            created_at: now.clone(),
            ..Tenant::default()
        });
        t.apply(patch);
        t.updated_at = now;
        let enc_auth = t
            .client_auth
            .as_ref()
            .map(|a| self.cipher.encrypt(&a.to_string()));
        sqlx::query(
            "INSERT INTO tenants (id, name, client_auth, client_base_url, client_sync_path, \
               client_attachment_path, default_account_id, rate_limits, large_file_config, \
               active, api_key_expires_at, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) \
             ON CONFLICT (id) DO UPDATE SET name=$2, client_auth=$3, client_base_url=$4, \
               client_sync_path=$5, client_attachment_path=$6, default_account_id=$7, \
               rate_limits=$8, large_file_config=$9, active=$10, api_key_expires_at=$11, \
               updated_at=$13",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(enc_auth)
        .bind(&t.client_base_url)
        .bind(&t.client_sync_path)
        .bind(&t.client_attachment_path)
        .bind(&t.default_account_id)
        .bind(t.rate_limits.as_ref().map(Value::to_string))
        .bind(t.large_file_config.as_ref().map(Value::to_string))
        .bind(b(t.active))
        .bind(t.api_key_expires_at)
        .bind(&t.created_at)
        .bind(&t.updated_at)
        .execute(&self.pool)
        .await?;
        self.forget_blocked();
        Ok(Some((t, created)))
    }

    /// Deletes a tenant with its accounts, messages and events. False when unknown.
    pub async fn delete_tenant(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Stores the SHA-256 of a new API key. False when the tenant is unknown.
    pub async fn set_api_key_hash(
        &self,
        id: &str,
        hash: Option<&str>,
        expires_at: Option<i64>,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE tenants SET api_key_hash = $2, api_key_expires_at = $3, updated_at = $4 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(hash)
        .bind(expires_at)
        .bind(now_text())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The tenant owning an API key hash, unless expired, and whether it is active.
    pub async fn tenant_by_key_hash(&self, hash: &str, now: i64) -> Result<Option<KeyOwner>> {
        let row = sqlx::query(
            "SELECT id, active FROM tenants WHERE api_key_hash = $1 \
             AND (api_key_expires_at IS NULL OR api_key_expires_at > $2)",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(KeyOwner {
                id: r.try_get("id")?,
                active: r.try_get::<i64, _>("active")? != 0,
            })
        })
        .transpose()
    }

    /// Sets the suspension list; returns the new value.
    pub async fn set_suspended(&self, id: &str, value: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE tenants SET suspended_batches = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(value)
            .bind(now_text())
            .execute(&self.pool)
            .await?;
        self.forget_blocked();
        Ok(())
    }

    /// Asks for a sync of one tenant as soon as possible (run-now): clears DND and backoff.
    pub async fn request_sync(&self, id: &str) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE tenants SET sync_requested = 1, dnd_until = NULL, sync_retry_at = NULL \
             WHERE id = $1",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }
}

impl Store {
    /// Sync status of every tenant (§4.6).
    pub async fn sync_status(
        &self,
        now: i64,
        interval: f64,
        max_attempts: i64,
    ) -> Result<Vec<Value>> {
        let rows = sqlx::query(
            "SELECT t.id, t.name, t.active, t.client_base_url, t.last_sync_ts, t.dnd_until, \
               t.sync_requested, t.sync_failures, \
               (SELECT COUNT(*) FROM message_events e WHERE e.tenant_id = t.id AND e.reported_ts IS NULL \
                  AND e.report_attempts < $1) AS pending_reports \
             FROM tenants t ORDER BY t.id",
        )
        .bind(max_attempts)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let last: Option<i64> = r.try_get("last_sync_ts")?;
                let dnd: Option<i64> = r.try_get("dnd_until")?;
                let requested = r.try_get::<i64, _>("sync_requested")? != 0;
                let in_dnd = dnd.is_some_and(|d| d > now);
                let interval_due = last.is_none_or(|l| now as f64 >= l as f64 + interval) && !in_dnd;
                let dnd_over = dnd.is_some_and(|d| now >= d);
                Ok(json!({
                    "id": r.try_get::<String, _>("id")?, "name": r.try_get::<Option<String>, _>("name")?,
                    "active": r.try_get::<i64, _>("active")? != 0,
                    "client_base_url": r.try_get::<Option<String>, _>("client_base_url")?,
                    "last_sync_ts": last, "next_sync_due": interval_due || dnd_over || requested,
                    "in_dnd": in_dnd, "dnd_until": dnd,
                    "sync_failures": r.try_get::<i64, _>("sync_failures")?,
                    "pending_reports": r.try_get::<i64, _>("pending_reports")?,
                }))
            })
            .collect()
    }
}
