//! The sync call (PROTOCOL.md §4): `POST {client_base_url}{client_sync_path}` from the proxy
//! to a tenant application, carrying delivery reports, answered with acknowledgements, scheduling
//! hints and inline messages.

use serde::{Deserialize, Serialize};

use crate::message::MessageV1;

/// Request body the proxy sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SyncRequestV1 {
    /// One entry per unreported event, oldest first.
    pub delivery_report: Vec<DeliveryReportV1>,
    /// Present only when the global `GMP_CLIENT_SYNC_URL` endpoint is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// One delivery report; which fields are set depends on the event type (§4.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DeliveryReportV1 {
    /// The tenant's message id.
    pub id: String,
    /// `sent`: SMTP acceptance time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_ts: Option<i64>,
    /// `sent` after a partial refusal: the refused recipients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_recipients: Option<Vec<RejectedRecipientV1>>,
    /// `error`: time of the terminal failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_ts: Option<i64>,
    /// `error`: description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `deferred`: event time (upstream-compatible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_ts: Option<i64>,
    /// `deferred`: `rate_limit` or the error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_reason: Option<String>,
    /// `deferred`: when the next attempt is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<i64>,
    /// `bounce`: time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_ts: Option<i64>,
    /// `bounce`: `hard` or `soft`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_type: Option<String>,
    /// `bounce`: SMTP code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_code: Option<String>,
    /// `bounce`: reason text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_reason: Option<String>,
}

impl DeliveryReportV1 {
    /// The event type this entry reports: `sent`, `error`, `deferred`, `bounce` or `unknown`.
    pub fn kind(&self) -> &'static str {
        if self.sent_ts.is_some() {
            "sent"
        } else if self.error_ts.is_some() {
            "error"
        } else if self.bounce_ts.is_some() {
            "bounce"
        } else if self.deferred_ts.is_some() {
            "deferred"
        } else {
            "unknown"
        }
    }

    /// True when the report is final for its message (sent, error or bounce).
    pub fn is_final(&self) -> bool {
        matches!(self.kind(), "sent" | "error" | "bounce")
    }
}

/// A recipient refused while others were accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRecipientV1 {
    /// Refused address.
    pub address: String,
    /// SMTP reply code.
    pub code: u16,
    /// Reply text.
    pub reason: String,
}

/// Response body of a tenant application (§4.3). Unknown keys are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SyncResponseV1 {
    /// Must be true to acknowledge anything.
    #[serde(default)]
    pub ok: bool,
    /// More work waiting at the client: the proxy calls again at once while > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<u64>,
    /// Do not disturb until this Unix time (may be fractional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sync_after: Option<f64>,
    /// Ids whose reports the client failed to process (not acknowledged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Vec<String>>,
    /// Ids the client does not know (acknowledged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_found: Option<Vec<String>>,
    /// Inline messages to enqueue for this tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<MessageV1>>,
    /// Number of reports processed (the simulated client's own key; ignored by the proxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed: Option<u64>,
}
