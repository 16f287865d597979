//! The canonical message a tenant submits (PROTOCOL.md §3.6) and its attachments (§5.1).
//!
//! The proxy accepts looser input than these types (aliases such as `sender` and
//! `recipient_email`, priority labels, `to` as a comma-separated string); it normalises that input
//! itself. These types are what our own client emits and what tests build.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One message in canonical form, as carried by `add-messages` and by inline sync `messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MessageV1 {
    /// The tenant's own id for the message; unique per tenant.
    pub id: String,
    /// Owning tenant; optional on input (the request or the syncing tenant supplies it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// SMTP account to send through; absent means the tenant's default account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// `From` header, `addr` or `Name <addr>`; absent means the account's `sender_email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Recipients.
    pub to: Vec<String>,
    /// Carbon-copy recipients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cc: Option<Vec<String>>,
    /// Blind-copy recipients (envelope only, never a header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bcc: Option<Vec<String>>,
    /// Subject line; required and non-empty.
    pub subject: String,
    /// Body text (plain, or HTML when `content_type` is `html`).
    #[serde(default)]
    pub body: String,
    /// `plain` (default) or `html`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// HTML alternative; with it the mail is `multipart/alternative`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_html: Option<String>,
    /// 0 (immediate) to 3 (low); default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Not sent before this Unix second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_ts: Option<i64>,
    /// Batch for suspension, at most 64 characters without commas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_code: Option<String>,
    /// Extra headers copied into the mail.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Attachments, fetched by the proxy at send time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentV1>,
}

/// One attachment reference (§5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AttachmentV1 {
    /// Delivered file name; may carry an `{MD5:<hex>}` marker that the proxy strips.
    pub filename: String,
    /// Where the content comes from; meaning per `fetch_mode`.
    pub storage_path: String,
    /// `endpoint`, `http_url`, `base64` or `filesystem`; absent means inferred (§5.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_mode: Option<String>,
    /// MIME type; guessed from the file name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// MD5 of the content (32 hex): cache key, wins over the marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_md5: Option<String>,
}

/// Body of `POST /attachments` that the proxy sends to a tenant (`fetch_mode: endpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentFetchV1 {
    /// The attachment's `storage_path`, passed through unchanged.
    pub storage_path: String,
}

/// Body of `POST /commands/add-messages` (classic) and `/messages/add_batch` (generated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AddMessagesV1 {
    /// Tenant for messages that name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The messages, at most 1000.
    pub messages: Vec<MessageV1>,
    /// Priority for messages whose own priority is invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_priority: Option<i64>,
}

/// Response of add-messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddMessagesResponseV1 {
    /// False only if nothing was queued and some rejection is not `already sent`.
    pub ok: bool,
    /// Number of messages queued.
    pub queued: u64,
    /// Messages refused, with the exact reason of the contract.
    #[serde(default)]
    pub rejected: Vec<RejectedV1>,
}

/// One refused message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedV1 {
    /// The message id as given (may be absent for `missing id`).
    #[serde(default)]
    pub id: Option<String>,
    /// Reason, one of the contract's exact strings.
    pub reason: String,
}
