//! The instance row, tenants' storages and the command log (PROTOCOL.md §3.3, §3.4, §7.1):
//! records kept and answered for upstream's clients. Bounce settings and storages are stored
//! only (D19); secrets in them are encrypted at rest and never returned.

use serde_json::{Map, Value, json};
use sqlx::{Row, any::AnyRow};

use super::{Result, Store, b, now_text};

/// The instance's bounce settings (stored, never acted on).
pub const BOUNCE_FIELDS: [&str; 9] = [
    "bounce_enabled",
    "bounce_imap_host",
    "bounce_imap_port",
    "bounce_imap_user",
    "bounce_imap_password",
    "bounce_imap_folder",
    "bounce_imap_ssl",
    "bounce_poll_interval",
    "bounce_return_path",
];

/// One entry of the command log.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Entry id.
    pub id: i64,
    /// When (Unix seconds).
    pub command_ts: i64,
    /// Operation name (`addMessages`, `addTenant`, …).
    pub endpoint: String,
    /// Tenant acted on, when known.
    pub tenant_id: Option<String>,
    /// The request, secrets and inline data redacted.
    pub payload: Value,
    /// HTTP status of the answer.
    pub response_status: i64,
    /// The answer, secrets redacted.
    pub response_body: Value,
}

impl Command {
    /// The entry as upstream answers it.
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "command_ts": self.command_ts, "endpoint": self.endpoint,
            "tenant_id": self.tenant_id, "payload": self.payload,
            "response_status": self.response_status, "response_body": self.response_body})
    }

    /// The entry as exported for replaying elsewhere.
    pub fn to_export_json(&self) -> Value {
        json!({"endpoint": self.endpoint, "tenant_id": self.tenant_id, "payload": self.payload,
            "command_ts": self.command_ts})
    }
}

/// Which entries of the command log to read.
#[derive(Debug, Clone, Default)]
pub struct CommandFilter {
    /// One tenant's entries.
    pub tenant_id: Option<String>,
    /// From this second on.
    pub since_ts: Option<i64>,
    /// Up to this second.
    pub until_ts: Option<i64>,
    /// Operation names containing this.
    pub endpoint_filter: Option<String>,
}

/// A tenant's storage (stored only): `config` decrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    /// Primary key.
    pub pk: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Name, unique per tenant.
    pub name: String,
    /// `local`.
    pub protocol: String,
    /// `{"base_path": …}`.
    pub config: Value,
    /// Creation time.
    pub created_at: String,
    /// Last update.
    pub updated_at: String,
}

impl Storage {
    /// The response form.
    pub fn to_json(&self) -> Value {
        json!({"pk": self.pk, "tenant_id": self.tenant_id, "name": self.name,
            "protocol": self.protocol, "config": self.config, "created_at": self.created_at,
            "updated_at": self.updated_at})
    }
}

const STORAGE_COLUMNS: &str = "pk, tenant_id, name, protocol, config, created_at, updated_at";

impl Store {
    /// The instance row as answered: bounce settings without the password.
    pub async fn instance(&self) -> Result<Value> {
        let row = sqlx::query(
            "SELECT id, name, edition, config, bounce_enabled, bounce_imap_host, \
               bounce_imap_port, bounce_imap_user, bounce_imap_folder, bounce_imap_ssl, \
               bounce_poll_interval, bounce_return_path, created_at, updated_at \
             FROM instance WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        let config: Option<String> = row.try_get("config")?;
        Ok(json!({
            "id": row.try_get::<i64, _>("id")?,
            "name": row.try_get::<String, _>("name")?,
            "edition": row.try_get::<String, _>("edition")?,
            "config": config.map(|c| serde_json::from_str::<Value>(&c)).transpose()?,
            "bounce_enabled": row.try_get::<i64, _>("bounce_enabled")? != 0,
            "bounce_imap_host": row.try_get::<Option<String>, _>("bounce_imap_host")?,
            "bounce_imap_port": row.try_get::<i64, _>("bounce_imap_port")?,
            "bounce_imap_user": row.try_get::<Option<String>, _>("bounce_imap_user")?,
            "bounce_imap_folder": row.try_get::<String, _>("bounce_imap_folder")?,
            "bounce_imap_ssl": row.try_get::<i64, _>("bounce_imap_ssl")? != 0,
            "bounce_poll_interval": row.try_get::<i64, _>("bounce_poll_interval")?,
            "bounce_return_path": row.try_get::<Option<String>, _>("bounce_return_path")?,
            "created_at": row.try_get::<String, _>("created_at")?,
            "updated_at": row.try_get::<String, _>("updated_at")?,
        }))
    }

    /// Updates the instance's name, edition and bounce settings (already checked); the bounce
    /// password is encrypted. Read, changed and written whole, so each value keeps its type.
    pub async fn update_instance(&self, update: &InstanceUpdate) -> Result<()> {
        let row = sqlx::query(
            "SELECT name, edition, bounce_enabled, bounce_imap_host, bounce_imap_port, \
               bounce_imap_user, bounce_imap_password, bounce_imap_folder, bounce_imap_ssl, \
               bounce_poll_interval, bounce_return_path FROM instance WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        let text = |name: &str| -> Result<Option<String>> { Ok(row.try_get(name)?) };
        let int = |name: &str| -> Result<i64> { Ok(row.try_get(name)?) };
        let or_keep = |new: &Option<Option<String>>, old: Option<String>| match new {
            Some(v) => v.clone(),
            None => old,
        };
        let password = match &update.imap_password {
            Some(p) => p.as_ref().map(|p| self.cipher.encrypt(p)),
            None => text("bounce_imap_password")?,
        };
        sqlx::query(
            "UPDATE instance SET name = $1, edition = $2, bounce_enabled = $3, \
               bounce_imap_host = $4, bounce_imap_port = $5, bounce_imap_user = $6, \
               bounce_imap_password = $7, bounce_imap_folder = $8, bounce_imap_ssl = $9, \
               bounce_poll_interval = $10, bounce_return_path = $11, updated_at = $12 WHERE id = 1",
        )
        .bind(update.name.clone().or(text("name")?))
        .bind(update.edition.clone().or(text("edition")?))
        .bind(update.bounce_enabled.map_or(int("bounce_enabled")?, b))
        .bind(or_keep(&update.imap_host, text("bounce_imap_host")?))
        .bind(update.imap_port.unwrap_or(int("bounce_imap_port")?))
        .bind(or_keep(&update.imap_user, text("bounce_imap_user")?))
        .bind(password)
        .bind(update.imap_folder.clone().or(text("bounce_imap_folder")?))
        .bind(update.imap_ssl.map_or(int("bounce_imap_ssl")?, b))
        .bind(update.poll_interval.unwrap_or(int("bounce_poll_interval")?))
        .bind(or_keep(&update.return_path, text("bounce_return_path")?))
        .bind(now_text())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records one command.
    pub async fn record_command(
        &self,
        endpoint: &str,
        tenant_id: Option<&str>,
        payload: &Value,
        status: u16,
        response: &Value,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO command_log (command_ts, endpoint, tenant_id, payload, response_status, \
               response_body) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(super::now_ts())
        .bind(endpoint)
        .bind(tenant_id)
        .bind(payload.to_string())
        .bind(i64::from(status))
        .bind(response.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Entries of the command log, oldest first, one page; and how many match.
    pub async fn commands(
        &self,
        filter: &CommandFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Command>, i64)> {
        const WHERE: &str = "WHERE ($1 IS NULL OR tenant_id = $1) \
            AND ($2 IS NULL OR command_ts >= $2) AND ($3 IS NULL OR command_ts <= $3) \
            AND ($4 IS NULL OR endpoint LIKE $4 ESCAPE '\\')";
        // The filter is a substring: its own `%`, `_` and `\` match themselves.
        let like = filter.endpoint_filter.as_ref().map(|f| {
            let escaped = f
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let rows = sqlx::query(&format!(
            "SELECT id, command_ts, endpoint, tenant_id, payload, response_status, response_body \
             FROM command_log {WHERE} ORDER BY id LIMIT $5 OFFSET $6"
        ))
        .bind(&filter.tenant_id)
        .bind(filter.since_ts)
        .bind(filter.until_ts)
        .bind(&like)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM command_log {WHERE}"))
            .bind(&filter.tenant_id)
            .bind(filter.since_ts)
            .bind(filter.until_ts)
            .bind(&like)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let commands = rows.iter().map(command_from_row).collect::<Result<_>>()?;
        Ok((commands, total))
    }

    /// One entry of the command log.
    pub async fn command(&self, id: i64) -> Result<Option<Command>> {
        let row = sqlx::query(
            "SELECT id, command_ts, endpoint, tenant_id, payload, response_status, response_body \
             FROM command_log WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(command_from_row).transpose()
    }

    /// Deletes the entries older than `threshold_ts`; how many.
    pub async fn purge_commands(&self, threshold_ts: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM command_log WHERE command_ts < $1")
            .bind(threshold_ts)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    fn storage_from_row(&self, row: &AnyRow) -> Result<Storage> {
        let config: Option<String> = row.try_get("config")?;
        let config = match config {
            Some(c) => serde_json::from_str(&self.cipher.decrypt(&c)?)?,
            None => Value::Object(Map::new()),
        };
        Ok(Storage {
            pk: row.try_get("pk")?,
            tenant_id: row.try_get("tenant_id")?,
            name: row.try_get("name")?,
            protocol: row.try_get("protocol")?,
            config,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    /// A tenant's storages, by name.
    pub async fn storages(&self, tenant_id: &str) -> Result<Vec<Storage>> {
        let rows = sqlx::query(&format!(
            "SELECT {STORAGE_COLUMNS} FROM storages WHERE tenant_id = $1 ORDER BY name"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.storage_from_row(r)).collect()
    }

    /// One storage of a tenant.
    pub async fn storage(&self, tenant_id: &str, name: &str) -> Result<Option<Storage>> {
        let row = sqlx::query(&format!(
            "SELECT {STORAGE_COLUMNS} FROM storages WHERE tenant_id = $1 AND name = $2"
        ))
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| self.storage_from_row(&r)).transpose()
    }

    /// Creates or replaces a storage of an existing tenant (checked by the caller).
    pub async fn upsert_storage(
        &self,
        tenant_id: &str,
        name: &str,
        protocol: &str,
        config: &Value,
    ) -> Result<Option<Storage>> {
        let now = now_text();
        sqlx::query(
            "INSERT INTO storages (pk, tenant_id, name, protocol, config, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (tenant_id, name) DO UPDATE SET \
               protocol = excluded.protocol, config = excluded.config, updated_at = excluded.updated_at",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(tenant_id)
        .bind(name)
        .bind(protocol)
        .bind(self.cipher.encrypt(&config.to_string()))
        .bind(&now)
        .execute(&self.pool)
        .await?;
        self.storage(tenant_id, name).await
    }

    /// Deletes a storage; false when unknown.
    pub async fn delete_storage(&self, tenant_id: &str, name: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM storages WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}

/// A change of the instance row: `None` leaves a field; for the nullable text fields,
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceUpdate {
    /// Display name.
    pub name: Option<String>,
    /// Edition (`ce`/`ee`, stored).
    pub edition: Option<String>,
    /// Bounce polling switched on (stored only).
    pub bounce_enabled: Option<bool>,
    /// IMAP host.
    pub imap_host: Option<Option<String>>,
    /// IMAP port.
    pub imap_port: Option<i64>,
    /// IMAP user.
    pub imap_user: Option<Option<String>>,
    /// IMAP password (encrypted at rest, never shown).
    pub imap_password: Option<Option<String>>,
    /// IMAP folder.
    pub imap_folder: Option<String>,
    /// IMAP over TLS.
    pub imap_ssl: Option<bool>,
    /// Poll interval, seconds.
    pub poll_interval: Option<i64>,
    /// Return path.
    pub return_path: Option<Option<String>>,
}

fn command_from_row(row: &AnyRow) -> Result<Command> {
    let json_col = |name: &str| -> Result<Value> {
        let raw: Option<String> = row.try_get(name)?;
        Ok(raw
            .map(|s| serde_json::from_str(&s))
            .transpose()?
            .unwrap_or(Value::Null))
    };
    Ok(Command {
        id: row.try_get("id")?,
        command_ts: row.try_get("command_ts")?,
        endpoint: row.try_get("endpoint")?,
        tenant_id: row.try_get("tenant_id")?,
        payload: json_col("payload")?,
        response_status: row
            .try_get::<Option<i64>, _>("response_status")?
            .unwrap_or(0),
        response_body: json_col("response_body")?,
    })
}
