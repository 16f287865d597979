//! Turns a [`SyncPlan`] into the messages of a sync answer: hashes fresh content (chunk by chunk,
//! so call this on a blocking thread) and builds each message in the configured shape, with the
//! measurement headers the sink reads.

use std::collections::BTreeMap;

use mailproxy_proto::headers;
use mailproxy_proto::message::{AttachmentV1, MessageV1};
use serde::Serialize;

use super::content::{self, ContentRef};
use super::generate::{AttachmentPlan, MessagePlan, SyncPlan};
use super::profile::{MessageFormat, ServeConfig};

/// A message in the upstream client's alias form (README, `serve`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamMessageV1 {
    /// Message id.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// `from` alias.
    pub sender: String,
    /// `to` alias (one address).
    pub recipient_email: String,
    /// Subject.
    pub subject: String,
    /// Plain body.
    pub body_text: String,
    /// HTML alternative.
    pub body_html: String,
    /// Priority 0..3.
    pub priority: i64,
    /// Measurement headers.
    pub headers: BTreeMap<String, String>,
    /// Attachments, with `content_type` as upstream names it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<UpstreamAttachmentV1>,
}

/// An attachment in the upstream alias form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamAttachmentV1 {
    /// File name, possibly with the marker.
    pub filename: String,
    /// `hash=..&size=..&seed=..`.
    pub storage_path: String,
    /// MIME type.
    pub content_type: String,
    /// Always `endpoint`.
    pub fetch_mode: String,
}

/// One generated message in either shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OutMessage {
    /// Canonical form.
    Canonical(MessageV1),
    /// Upstream alias form.
    Upstream(UpstreamMessageV1),
}

/// The messages of a sync and the fresh content to remember.
#[derive(Debug, Default)]
pub struct Materialised {
    /// Messages in plan order.
    pub messages: Vec<OutMessage>,
    /// Fresh content: `(md5 hex, content)`.
    pub fresh: Vec<(String, ContentRef)>,
}

/// Hashes fresh content and builds the messages. CPU-bound: run it off the async workers.
pub fn materialise(plan: &SyncPlan, cfg: &ServeConfig, created_us: u64) -> Materialised {
    let mut out = Materialised::default();
    for msg in &plan.messages {
        let attachment = msg.attachment.as_ref().map(|a| match a {
            AttachmentPlan::Reused { md5, content } => (md5.clone(), *content, true),
            AttachmentPlan::Fresh { content, marker } => {
                let md5 = hex::encode(content::md5_of(content.seed, content.size));
                out.fresh.push((md5.clone(), *content));
                (md5, *content, *marker)
            }
        });
        out.messages.push(build(msg, attachment, cfg, created_us));
    }
    out
}

/// The fields of one message, before they take a shape.
struct Fields {
    id: String,
    tenant: String,
    sender: String,
    recipient: String,
    subject: String,
    body_text: String,
    body_html: String,
    priority: i64,
    headers: BTreeMap<String, String>,
    /// `(filename, storage_path)`.
    attachment: Option<(String, String)>,
}

const ATTACHMENT_MIME: &str = "application/octet-stream";

fn build(
    msg: &MessagePlan,
    attachment: Option<(String, ContentRef, bool)>,
    cfg: &ServeConfig,
    created_us: u64,
) -> OutMessage {
    let fields = fields(msg, attachment, cfg, created_us);
    match cfg.message_format {
        MessageFormat::Canonical => OutMessage::Canonical(canonical(fields)),
        MessageFormat::Upstream => OutMessage::Upstream(upstream(fields)),
    }
}

fn fields(
    msg: &MessagePlan,
    attachment: Option<(String, ContentRef, bool)>,
    cfg: &ServeConfig,
    created_us: u64,
) -> Fields {
    let tenant = cfg.tenant_id.clone();
    let mut headers = BTreeMap::from([
        (
            headers::CREATED_AT_MICROS.to_owned(),
            created_us.to_string(),
        ),
        (headers::RUN_ID.to_owned(), cfg.run_id.clone()),
        (headers::TENANT_ID.to_owned(), tenant.clone()),
    ]);
    let short: String = msg.id.chars().take(8).collect();
    let attachment = attachment.map(|(md5, content, marker)| {
        headers.insert(headers::ATTACHMENT_MD5S.to_owned(), md5.clone());
        let filename = if marker {
            format!("document_{{MD5:{md5}}}.bin")
        } else {
            format!("document_{short}.bin")
        };
        (filename, content::storage_path(&md5, content))
    });
    Fields {
        id: msg.id.clone(),
        sender: format!("noreply@{tenant}.example.com"),
        recipient: format!("user-{}@example.com", msg.recipient),
        subject: format!("Message {short} - {}", clock_utc(created_us / 1_000_000)),
        body_text: format!("This is an automated message from {tenant}.\n").repeat(5),
        body_html: format!(
            "<html><body><p>This is an automated message from {tenant}.</p></body></html>"
        ),
        priority: msg.priority,
        headers,
        attachment,
        tenant,
    }
}

fn canonical(f: Fields) -> MessageV1 {
    MessageV1 {
        id: f.id,
        from: Some(f.sender),
        to: vec![f.recipient],
        subject: f.subject,
        body: f.body_text,
        body_html: Some(f.body_html),
        priority: Some(f.priority),
        headers: f.headers,
        attachments: f
            .attachment
            .into_iter()
            .map(|(filename, storage_path)| AttachmentV1 {
                filename,
                storage_path,
                fetch_mode: Some("endpoint".to_owned()),
                mime_type: Some(ATTACHMENT_MIME.to_owned()),
                content_md5: None,
            })
            .collect(),
        ..MessageV1::default()
    }
}

fn upstream(f: Fields) -> UpstreamMessageV1 {
    UpstreamMessageV1 {
        id: f.id,
        tenant_id: f.tenant,
        sender: f.sender,
        recipient_email: f.recipient,
        subject: f.subject,
        body_text: f.body_text,
        body_html: f.body_html,
        priority: f.priority,
        headers: f.headers,
        attachments: f
            .attachment
            .into_iter()
            .map(|(filename, storage_path)| UpstreamAttachmentV1 {
                filename,
                storage_path,
                content_type: ATTACHMENT_MIME.to_owned(),
                fetch_mode: "endpoint".to_owned(),
            })
            .collect(),
    }
}

/// `HH:MM:SS` (UTC) of a Unix time.
fn clock_utc(secs: u64) -> String {
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}
