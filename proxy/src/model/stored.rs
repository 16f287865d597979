//! The stored form of an accepted message, as the dispatcher reads it (PROTOCOL.md §7.1
//! `messages.payload`, written by [`crate::intake`] from the normaliser's canonical payload):
//! parsed once when a claimed message is sent, then read as typed fields by the MIME builder.
//! Attachments stay JSON objects: the attachment loader reads their modes, paths and sealed
//! credentials (§5.1). Fields the dispatcher does not need (priority, batch, tenant) are left in
//! the row's columns.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A message about to be sent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct StoredMessage {
    /// The tenant's message id (`X-Genro-Mail-ID`).
    #[serde(default)]
    pub id: String,
    /// `From`, resolved at intake (the message's, else its account's `sender_email`).
    #[serde(default)]
    pub from: String,
    /// Recipients.
    #[serde(default, deserialize_with = "addresses")]
    pub to: Vec<String>,
    /// Carbon-copy recipients.
    #[serde(default, deserialize_with = "addresses")]
    pub cc: Vec<String>,
    /// Blind-copy recipients (envelope only).
    #[serde(default, deserialize_with = "addresses")]
    pub bcc: Vec<String>,
    /// Subject.
    #[serde(default)]
    pub subject: String,
    /// Body text (HTML when `content_type` is `html`).
    #[serde(default)]
    pub body: String,
    /// `plain` or `html`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// HTML alternative.
    #[serde(default)]
    pub body_html: Option<String>,
    /// `Reply-To`.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Envelope sender, else `from`.
    #[serde(default)]
    pub return_path: Option<String>,
    /// `Message-ID`, else one derived from the row's key.
    #[serde(default)]
    pub message_id: Option<String>,
    /// Custom headers (string values; others are ignored).
    #[serde(default, deserialize_with = "string_map")]
    pub headers: BTreeMap<String, String>,
    /// Attachment objects (§5.1), credentials sealed.
    #[serde(default)]
    pub attachments: Vec<Value>,
}

impl StoredMessage {
    /// True when the stored payload `text` lists at least one attachment (or cannot be read,
    /// which the send reports). A payload without the key is answered without parsing it.
    pub fn lists_attachments(text: &str) -> bool {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(default)]
            attachments: Vec<serde::de::IgnoredAny>,
        }
        text.contains("\"attachments\"")
            && serde_json::from_str::<Probe>(text).map_or(true, |p| !p.attachments.is_empty())
    }

    /// True when the body is HTML.
    pub fn is_html(&self) -> bool {
        self.content_type.as_deref() == Some("html")
    }
}

/// A list of addresses, or one comma-separated string; items that are not strings are dropped.
fn addresses<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => s
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect(),
        _ => Vec::new(),
    })
}

/// An object of strings; values that are not strings are dropped.
fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Object(m) => m
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
            .collect(),
        _ => BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tells_payloads_with_attachments_from_the_others() {
        let with =
            json!({"id": "a", "attachments": [{"filename": "a.txt", "fetch_mode": "endpoint"}]});
        assert!(StoredMessage::lists_attachments(&with.to_string()));
        for without in [
            json!({"id": "b", "body": "no attachments here"}),
            json!({"id": "c", "attachments": []}),
            // The key inside a value is not the message's own list.
            json!({"id": "d", "body": "\"attachments\": [1]", "headers": {"X-Note": "\"attachments\""}}),
        ] {
            assert!(
                !StoredMessage::lists_attachments(&without.to_string()),
                "{without}"
            );
        }
        // A payload that cannot be read counts as one with attachments: its send reports it.
        assert!(StoredMessage::lists_attachments(r#"{"attachments": 5"#));
    }

    #[test]
    fn reads_what_intake_writes_and_tolerates_older_shapes() {
        let m: StoredMessage = serde_json::from_value(json!({
            "id": "M-1", "from": "s@a.io", "to": ["a@x.io", 5], "cc": "b@y.io, ,c@z.io",
            "subject": "s", "body": "b", "content_type": "html", "priority": 2,
            "headers": {"X-A": "1", "X-B": 2}, "attachments": [{"filename": "a.txt"}],
            "tenant_id": "t", "account_id": "a"
        }))
        .expect("a stored message");
        assert_eq!(m.to, ["a@x.io"]);
        assert_eq!(m.cc, ["b@y.io", "c@z.io"]);
        assert!(m.bcc.is_empty());
        assert!(m.is_html());
        assert_eq!(m.headers, BTreeMap::from([("X-A".into(), "1".into())]));
        assert_eq!(m.attachments.len(), 1);
        let empty: StoredMessage = serde_json::from_value(json!({})).expect("defaults");
        assert_eq!((empty.from.as_str(), empty.to.len()), ("", 0));
    }
}
