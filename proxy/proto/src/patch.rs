//! Partial updates of tenants and SMTP accounts (PROTOCOL.md §3.5), parsed once from a request
//! body of either dialect: each field absent (unchanged), `null` (cleared, or back to its
//! default) or a value of its type. The parsers are lenient where upstream is (a port as a
//! numeric string; the classic `smtp_*` aliases, canonical keys winning) and name the first field
//! of the wrong type ([`FieldError`], answered 400 `"<field>: expected …"`). Unknown keys are
//! ignored, as upstream does.

use serde_json::{Map, Value};

/// One field of a partial update.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Field<T> {
    /// Not in the body: unchanged.
    #[default]
    Absent,
    /// `null`: cleared (or back to the field's default).
    Null,
    /// A new value.
    Set(T),
}

impl<T> Field<T> {
    /// True when the body names the field (even as `null`).
    pub fn is_present(&self) -> bool {
        !matches!(self, Field::Absent)
    }

    /// Applies the field to an optional slot.
    pub fn apply_to(self, slot: &mut Option<T>) {
        match self {
            Field::Absent => {}
            Field::Null => *slot = None,
            Field::Set(v) => *slot = Some(v),
        }
    }

    /// Applies the field to a slot with a default for `null`.
    pub fn apply_or(self, slot: &mut T, default: T) {
        match self {
            Field::Absent => {}
            Field::Null => *slot = default,
            Field::Set(v) => *slot = v,
        }
    }
}

/// A field of the wrong type or out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field (`client_auth.method` for a nested one).
    pub field: String,
    /// What it must be.
    pub expected: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: expected {}", self.field, self.expected)
    }
}

impl std::error::Error for FieldError {}

fn wrong(field: &str, expected: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        expected: expected.into(),
    }
}

/// Reads one field with `parse` for its non-null value.
fn field<T>(
    body: &Map<String, Value>,
    key: &str,
    expected: &str,
    parse: impl Fn(&Value) -> Option<T>,
) -> Result<Field<T>, FieldError> {
    match body.get(key) {
        None => Ok(Field::Absent),
        Some(Value::Null) => Ok(Field::Null),
        Some(v) => parse(v).map(Field::Set).ok_or_else(|| wrong(key, expected)),
    }
}

fn string(body: &Map<String, Value>, key: &str) -> Result<Field<String>, FieldError> {
    field(body, key, "a string", |v| v.as_str().map(str::to_string))
}

fn integer(body: &Map<String, Value>, key: &str) -> Result<Field<i64>, FieldError> {
    field(body, key, "an integer", Value::as_i64)
}

fn boolean(body: &Map<String, Value>, key: &str) -> Result<Field<bool>, FieldError> {
    field(body, key, "a boolean", Value::as_bool)
}

fn object(body: &Map<String, Value>, key: &str) -> Result<Field<Value>, FieldError> {
    field(body, key, "an object", |v| v.is_object().then(|| v.clone()))
}

/// A tenant's fields as a partial update (`POST /tenant`, `PUT /tenant/{id}`, `/tenants/add`,
/// `/tenants/update`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantPatchV1 {
    /// Display name.
    pub name: Field<String>,
    /// Base URL of the tenant application: `http://` or `https://`.
    pub client_base_url: Field<String>,
    /// Sync path.
    pub client_sync_path: Field<String>,
    /// Attachment path.
    pub client_attachment_path: Field<String>,
    /// Account for messages that name none.
    pub default_account_id: Field<String>,
    /// `{"method": "none"|"bearer"|"basic", "token"?, "user"?, "password"?}`.
    pub client_auth: Field<Value>,
    /// Stored only.
    pub rate_limits: Field<Value>,
    /// Large-file configuration (stored).
    pub large_file_config: Field<Value>,
    /// `null` = true.
    pub active: Field<bool>,
    /// Expiry of the API key (Unix seconds).
    pub api_key_expires_at: Field<i64>,
}

impl TenantPatchV1 {
    /// Parses the tenant fields of a body.
    pub fn from_json(body: &Map<String, Value>) -> Result<Self, FieldError> {
        let patch = TenantPatchV1 {
            name: string(body, "name")?,
            client_base_url: string(body, "client_base_url")?,
            client_sync_path: string(body, "client_sync_path")?,
            client_attachment_path: string(body, "client_attachment_path")?,
            default_account_id: string(body, "default_account_id")?,
            client_auth: object(body, "client_auth")?,
            rate_limits: object(body, "rate_limits")?,
            large_file_config: object(body, "large_file_config")?,
            active: boolean(body, "active")?,
            api_key_expires_at: integer(body, "api_key_expires_at")?,
        };
        if let Field::Set(url) = &patch.client_base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(wrong("client_base_url", "an http:// or https:// URL"));
        }
        if let Field::Set(auth) = &patch.client_auth {
            match auth.get("method").and_then(Value::as_str).unwrap_or("none") {
                "none" | "bearer" | "basic" => {}
                other => {
                    return Err(wrong(
                        "client_auth.method",
                        format!("none, bearer or basic, got {other:?}"),
                    ));
                }
            }
        }
        Ok(patch)
    }

    /// The names of the fields the body sets (even to `null`).
    pub fn present(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_present()),
            ("client_base_url", self.client_base_url.is_present()),
            ("client_sync_path", self.client_sync_path.is_present()),
            (
                "client_attachment_path",
                self.client_attachment_path.is_present(),
            ),
            ("default_account_id", self.default_account_id.is_present()),
            ("client_auth", self.client_auth.is_present()),
            ("rate_limits", self.rate_limits.is_present()),
            ("large_file_config", self.large_file_config.is_present()),
            ("active", self.active.is_present()),
            ("api_key_expires_at", self.api_key_expires_at.is_present()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
    }
}

/// Stored-only fields of PEC accounts, kept as given (`imap_password` encrypted, never shown).
pub const ACCOUNT_EXTRA_KEYS: [&str; 6] = [
    "is_pec_account",
    "imap_host",
    "imap_port",
    "imap_user",
    "imap_password",
    "imap_folder",
];

/// An SMTP account's fields as a partial update (`POST /account`, `/accounts/add`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountPatchV1 {
    /// SMTP host (alias `smtp_host`); never null.
    pub host: Field<String>,
    /// 1..65535, a number or a numeric string (alias `smtp_port`).
    pub port: Field<i64>,
    /// Login user (alias `smtp_user`).
    pub user: Field<String>,
    /// Login password (alias `smtp_password`); write-only.
    pub password: Field<String>,
    /// Sends per minute.
    pub limit_per_minute: Field<i64>,
    /// Sends per hour.
    pub limit_per_hour: Field<i64>,
    /// Sends per day.
    pub limit_per_day: Field<i64>,
    /// Claim cap per pass.
    pub batch_size: Field<i64>,
    /// Idle lifetime of pooled connections, seconds (positive).
    pub ttl: Field<i64>,
    /// `defer` or `reject`; `null` = `defer`.
    pub limit_behavior: Field<String>,
    /// STARTTLS; `null` = auto.
    pub use_tls: Field<bool>,
    /// Implicit TLS; `null` = false.
    pub use_ssl: Field<bool>,
    /// From for messages that give none.
    pub sender_email: Field<String>,
    /// The stored-only PEC fields ([`ACCOUNT_EXTRA_KEYS`]) the body names.
    pub extra: Map<String, Value>,
}

impl AccountPatchV1 {
    /// Parses the account fields of a body.
    pub fn from_json(body: &Map<String, Value>) -> Result<Self, FieldError> {
        // The canonical key wins over its `smtp_*` alias; the error names the canonical key.
        let aliased = |canon: &str, alias: &str| {
            let mut one = Map::new();
            if let Some(v) = body.get(canon).or_else(|| body.get(alias)) {
                one.insert(canon.to_string(), v.clone());
            }
            one
        };
        let host = field(&aliased("host", "smtp_host"), "host", "a string", |v| {
            v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
        })?;
        let port = field(&aliased("port", "smtp_port"), "port", "1..65535", |v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .filter(|p| (1..=65535).contains(p))
        })?;
        let non_null = |f: Field<i64>, key: &str, expected: &str| match f {
            Field::Null => Err(wrong(key, expected)),
            other => Ok(other),
        };
        let patch = AccountPatchV1 {
            host: match host {
                Field::Null => return Err(wrong("host", "a string")),
                other => other,
            },
            port: non_null(port, "port", "1..65535")?,
            user: string(&aliased("user", "smtp_user"), "user")?,
            password: string(&aliased("password", "smtp_password"), "password")?,
            limit_per_minute: integer(body, "limit_per_minute")?,
            limit_per_hour: integer(body, "limit_per_hour")?,
            limit_per_day: integer(body, "limit_per_day")?,
            batch_size: integer(body, "batch_size")?,
            ttl: non_null(
                field(body, "ttl", "a positive integer", |v| {
                    v.as_i64().filter(|t| *t > 0)
                })?,
                "ttl",
                "a positive integer",
            )?,
            limit_behavior: field(body, "limit_behavior", "\"defer\" or \"reject\"", |v| {
                v.as_str()
                    .filter(|s| *s == "defer" || *s == "reject")
                    .map(str::to_string)
            })?,
            use_tls: field(body, "use_tls", "a boolean or null", Value::as_bool)?,
            use_ssl: boolean(body, "use_ssl")?,
            sender_email: string(body, "sender_email")?,
            extra: ACCOUNT_EXTRA_KEYS
                .iter()
                .filter_map(|k| Some((k.to_string(), body.get(*k)?.clone())))
                .collect(),
        };
        Ok(patch)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn absent_null_and_set_are_three_different_things() {
        let p = TenantPatchV1::from_json(&obj(json!({"name": null, "active": false}))).unwrap();
        assert_eq!(p.name, Field::Null);
        assert_eq!(p.active, Field::Set(false));
        assert_eq!(p.client_base_url, Field::Absent);
        assert_eq!(p.present(), ["name", "active"]);
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let err = |v| TenantPatchV1::from_json(&obj(v)).unwrap_err().to_string();
        assert_eq!(err(json!({"name": 5})), "name: expected a string");
        assert_eq!(err(json!({"active": "yes"})), "active: expected a boolean");
        assert_eq!(
            err(json!({"client_base_url": "ftp://x"})),
            "client_base_url: expected an http:// or https:// URL"
        );
        assert_eq!(
            err(json!({"client_auth": {"method": "oauth"}})),
            "client_auth.method: expected none, bearer or basic, got \"oauth\""
        );
        assert_eq!(
            err(json!({"rate_limits": []})),
            "rate_limits: expected an object"
        );
    }

    #[test]
    fn account_aliases_yield_to_canonical_keys_and_ports_may_be_strings() {
        let p = AccountPatchV1::from_json(&obj(json!({
            "smtp_host": "alias.test", "host": "canon.test", "smtp_port": "2525",
            "smtp_password": "pw", "imap_host": "imap.test", "unknown": 1
        })))
        .unwrap();
        assert_eq!(p.host, Field::Set("canon.test".into()));
        assert_eq!(p.port, Field::Set(2525));
        assert_eq!(p.password, Field::Set("pw".into()));
        assert_eq!(p.extra, obj(json!({"imap_host": "imap.test"})));
    }

    #[test]
    fn account_values_out_of_range_are_refused() {
        let err = |v| AccountPatchV1::from_json(&obj(v)).unwrap_err().to_string();
        assert_eq!(err(json!({"port": 0})), "port: expected 1..65535");
        assert_eq!(err(json!({"smtp_port": null})), "port: expected 1..65535");
        assert_eq!(err(json!({"host": ""})), "host: expected a string");
        assert_eq!(err(json!({"ttl": -1})), "ttl: expected a positive integer");
        assert_eq!(
            err(json!({"limit_behavior": "drop"})),
            "limit_behavior: expected \"defer\" or \"reject\""
        );
        assert_eq!(
            err(json!({"use_tls": "auto"})),
            "use_tls: expected a boolean or null"
        );
    }
}
