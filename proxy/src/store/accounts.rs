//! SMTP accounts (PROTOCOL.md §3.5): upserts that change only the keys present, with the `smtp_*`
//! aliases of the classic dialect; passwords encrypted at rest and never returned.

use mailproxy_proto::patch::AccountPatchV1;
use serde_json::{Map, Value, json};
use sqlx::{Row, any::AnyRow};

use super::{Result, Store, b, now_text};

/// An account as stored, password decrypted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Account {
    /// Primary key (UUID); rate limits and concurrency are per `pk`.
    pub pk: String,
    /// Account id, unique per tenant.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// SMTP host.
    pub host: String,
    /// SMTP port.
    pub port: i64,
    /// Login user.
    pub user: Option<String>,
    /// Login password (decrypted).
    pub password: Option<String>,
    /// Idle lifetime of pooled connections, seconds.
    pub ttl: i64,
    /// Sends per minute; null or ≤ 0 = unlimited.
    pub limit_per_minute: Option<i64>,
    /// Sends per hour.
    pub limit_per_hour: Option<i64>,
    /// Sends per day.
    pub limit_per_day: Option<i64>,
    /// `defer` or `reject`.
    pub limit_behavior: String,
    /// STARTTLS: None = auto.
    pub use_tls: Option<bool>,
    /// Implicit TLS.
    pub use_ssl: bool,
    /// From for messages without `from`.
    pub sender_email: Option<String>,
    /// Claim cap per pass.
    pub batch_size: Option<i64>,
    /// Stored-only PEC/IMAP fields.
    pub extra: Map<String, Value>,
    /// Creation time.
    pub created_at: String,
    /// Last update.
    pub updated_at: String,
}

impl Account {
    /// The response form: every field but secrets, plus `has_password`.
    pub fn to_json(&self, classic: bool) -> Value {
        let mut v = json!({
            "pk": self.pk, "id": self.id, "tenant_id": self.tenant_id, "host": self.host,
            "port": self.port, "user": self.user, "has_password": self.password.is_some(),
            "ttl": self.ttl, "limit_per_minute": self.limit_per_minute,
            "limit_per_hour": self.limit_per_hour, "limit_per_day": self.limit_per_day,
            "limit_behavior": self.limit_behavior, "use_tls": self.use_tls,
            "use_ssl": self.use_ssl, "sender_email": self.sender_email,
            "batch_size": self.batch_size, "created_at": self.created_at,
            "updated_at": self.updated_at,
        });
        if let Some(map) = v.as_object_mut() {
            for (k, val) in &self.extra {
                if k != "imap_password" {
                    map.insert(k.clone(), val.clone());
                }
            }
            if classic {
                map.retain(|_, v| !v.is_null());
            }
        }
        v
    }

    /// Applies the fields the update names.
    pub fn apply(&mut self, patch: AccountPatchV1) {
        patch.host.apply_or(&mut self.host, String::new());
        patch.port.apply_or(&mut self.port, 0);
        patch.user.apply_to(&mut self.user);
        patch.password.apply_to(&mut self.password);
        patch.limit_per_minute.apply_to(&mut self.limit_per_minute);
        patch.limit_per_hour.apply_to(&mut self.limit_per_hour);
        patch.limit_per_day.apply_to(&mut self.limit_per_day);
        patch.batch_size.apply_to(&mut self.batch_size);
        patch.ttl.apply_or(&mut self.ttl, 300);
        patch
            .limit_behavior
            .apply_or(&mut self.limit_behavior, "defer".into());
        patch.use_tls.apply_to(&mut self.use_tls);
        patch.use_ssl.apply_or(&mut self.use_ssl, false);
        patch.sender_email.apply_to(&mut self.sender_email);
        self.extra.extend(patch.extra);
    }
}

const COLUMNS: &str = "pk, id, tenant_id, host, port, smtp_user, password, ttl, \
    limit_per_minute, limit_per_hour, limit_per_day, limit_behavior, use_tls, use_ssl, \
    sender_email, batch_size, extra, created_at, updated_at";

impl Store {
    fn account_from_row(&self, row: &AnyRow) -> Result<Account> {
        let secret = |name: &str| -> Result<Option<String>> {
            let raw: Option<String> = row.try_get(name)?;
            Ok(raw.map(|s| self.cipher.decrypt(&s)).transpose()?)
        };
        let extra = match secret("extra")? {
            Some(s) => serde_json::from_str(&s)?,
            None => Map::new(),
        };
        Ok(Account {
            pk: row.try_get("pk")?,
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            host: row.try_get("host")?,
            port: row.try_get("port")?,
            user: row.try_get("smtp_user")?,
            password: secret("password")?,
            ttl: row.try_get("ttl")?,
            limit_per_minute: row.try_get("limit_per_minute")?,
            limit_per_hour: row.try_get("limit_per_hour")?,
            limit_per_day: row.try_get("limit_per_day")?,
            limit_behavior: row.try_get("limit_behavior")?,
            use_tls: row.try_get::<Option<i64>, _>("use_tls")?.map(|v| v != 0),
            use_ssl: row.try_get::<i64, _>("use_ssl")? != 0,
            sender_email: row.try_get("sender_email")?,
            batch_size: row.try_get("batch_size")?,
            extra,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    /// One account of a tenant.
    pub async fn account(&self, tenant_id: &str, id: &str) -> Result<Option<Account>> {
        let sql = format!("SELECT {COLUMNS} FROM accounts WHERE tenant_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.account_from_row(&r)).transpose()
    }

    /// One account by primary key (the dispatcher's lookup).
    pub async fn account_by_pk(&self, pk: &str) -> Result<Option<Account>> {
        let sql = format!("SELECT {COLUMNS} FROM accounts WHERE pk = $1");
        let row = sqlx::query(&sql)
            .bind(pk)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.account_from_row(&r)).transpose()
    }

    /// A tenant's accounts by id.
    pub async fn accounts(&self, tenant_id: &str) -> Result<Vec<Account>> {
        let sql = format!("SELECT {COLUMNS} FROM accounts WHERE tenant_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| self.account_from_row(r)).collect()
    }

    /// Creates or partially updates an account; None when a new account would lack its host
    /// or port.
    pub async fn upsert_account(
        &self,
        tenant_id: &str,
        id: &str,
        patch: AccountPatchV1,
    ) -> Result<Option<Account>> {
        let now = now_text();
        let existing = self.account(tenant_id, id).await?;
        let is_new = existing.is_none();
        let mut a = existing.unwrap_or_else(|| Account {
            pk: uuid::Uuid::new_v4().to_string(),
            id: id.into(),
            tenant_id: tenant_id.into(),
            ttl: 300,
            limit_behavior: "defer".into(),
            created_at: now.clone(),
            ..Account::default()
        });
        a.apply(patch);
        if is_new && (a.host.is_empty() || a.port == 0) {
            return Ok(None);
        }
        a.updated_at = now;
        let extra = (!a.extra.is_empty()).then(|| {
            self.cipher
                .encrypt(&Value::Object(a.extra.clone()).to_string())
        });
        sqlx::query(
            "INSERT INTO accounts (pk, id, tenant_id, host, port, smtp_user, password, ttl, \
               limit_per_minute, limit_per_hour, limit_per_day, limit_behavior, use_tls, use_ssl, \
               sender_email, batch_size, extra, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET host=$4, port=$5, smtp_user=$6, \
               password=$7, ttl=$8, limit_per_minute=$9, limit_per_hour=$10, limit_per_day=$11, \
               limit_behavior=$12, use_tls=$13, use_ssl=$14, sender_email=$15, batch_size=$16, \
               extra=$17, updated_at=$19",
        )
        .bind(&a.pk)
        .bind(&a.id)
        .bind(&a.tenant_id)
        .bind(&a.host)
        .bind(a.port)
        .bind(&a.user)
        .bind(a.password.as_ref().map(|p| self.cipher.encrypt(p)))
        .bind(a.ttl)
        .bind(a.limit_per_minute)
        .bind(a.limit_per_hour)
        .bind(a.limit_per_day)
        .bind(&a.limit_behavior)
        .bind(a.use_tls.map(b))
        .bind(b(a.use_ssl))
        .bind(&a.sender_email)
        .bind(a.batch_size)
        .bind(extra)
        .bind(&a.created_at)
        .bind(&a.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(Some(a))
    }

    /// Deletes an account of a tenant; false when unknown.
    pub async fn delete_account(&self, tenant_id: &str, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM accounts WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
