//! Classic REST bodies for registering tenants and SMTP accounts (§3.5), as the setup step sends
//! them. Only the fields our tools set are typed here; the proxy accepts every field of the
//! contract.

use serde::{Deserialize, Serialize};

/// `POST /tenant` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TenantV1 {
    /// Tenant id.
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the tenant is synced and dispatched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Base URL of the tenant application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_base_url: Option<String>,
    /// Path of the sync endpoint (default `/mail-proxy/sync`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_sync_path: Option<String>,
    /// Path of the attachment endpoint (default `/mail-proxy/attachments`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_attachment_path: Option<String>,
    /// Account used by messages that name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_account_id: Option<String>,
}

/// `POST /account` body, in the `smtp_*` alias form the seed's setup uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AccountV1 {
    /// Account id, unique per tenant.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// SMTP host.
    pub smtp_host: String,
    /// SMTP port.
    pub smtp_port: u16,
    /// SMTP user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_user: Option<String>,
    /// SMTP password (write-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_password: Option<String>,
    /// From address for messages that have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_email: Option<String>,
    /// STARTTLS: null = auto.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_tls: Option<bool>,
    /// Implicit TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_ssl: Option<bool>,
    /// Messages claimed per pass for this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
}

/// The usual `{"ok": true}` answer, with an optional API key on tenant creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct OkResponseV1 {
    /// Success flag.
    pub ok: bool,
    /// Raw tenant API key, returned once when a tenant is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// What the setup step registers: each tenant with its SMTP accounts. The operator's setup Job and
/// the local runner hand this to `client-sim setup` as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SetupPlanV1 {
    /// Tenants in registration order.
    pub tenants: Vec<SetupTenantV1>,
}

/// One tenant of a [`SetupPlanV1`] and its accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SetupTenantV1 {
    /// The tenant body for `POST /tenant`.
    pub tenant: TenantV1,
    /// Account bodies for `POST /account`.
    pub accounts: Vec<AccountV1>,
}
