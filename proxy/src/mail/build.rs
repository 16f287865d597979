//! The MIME message of a stored message (PROTOCOL.md §6.6): headers (`From`, `To`, `Cc`,
//! `Subject`, `Reply-To`, `Date`, a stable `Message-ID`, `X-Genro-Mail-ID`, custom headers),
//! a text or HTML body, `multipart/alternative` with `body_html`, `multipart/mixed` with base64
//! attachments, and the envelope (`return_path` or `from`; `to` + `cc` + `bcc`, deduplicated).

use super::formatted::{Formatted, Piece};
use crate::model::{address, stored::StoredMessage};
use lettre::{
    Address, Message,
    address::Envelope,
    message::{
        Attachment, Body, Mailbox, MultiPart, SinglePart,
        header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue},
    },
};

/// An attachment whose content is loaded.
#[derive(Debug, Clone)]
pub struct LoadedAttachment {
    /// Delivered (cleaned) file name.
    pub filename: String,
    /// MIME type.
    pub mime: String,
    /// Content.
    pub content: bytes::Bytes,
}

/// A message ready for SMTP.
#[derive(Debug)]
pub struct Built {
    /// Envelope sender and recipients.
    pub envelope: Envelope,
    /// The formatted message, attachments still raw (encoded as sent).
    pub message: Formatted,
}

/// Why a payload could not become a message: always permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

fn mailbox(raw: &str, what: &str) -> Result<Mailbox, BuildError> {
    raw.trim()
        .parse()
        .map_err(|e| BuildError(format!("invalid {what} address {raw:?}: {e}")))
}

fn bare(raw: &str, what: &str) -> Result<Address, BuildError> {
    let a =
        address::parse(raw).ok_or_else(|| BuildError(format!("invalid {what} address {raw:?}")))?;
    a.parse()
        .map_err(|e| BuildError(format!("invalid {what} address {raw:?}: {e}")))
}

/// A non-empty optional text.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Builds the message of a stored message with its loaded attachments.
pub fn build(
    msg: &StoredMessage,
    pk: &str,
    attachments: Vec<LoadedAttachment>,
) -> Result<Built, BuildError> {
    let from = Some(msg.from.as_str())
        .filter(|f| !f.is_empty())
        .ok_or_else(|| BuildError("missing 'from'".into()))?;
    let (to, cc, bcc) = (&msg.to, &msg.cc, &msg.bcc);
    if to.is_empty() {
        return Err(BuildError("missing 'to'".into()));
    }
    let mut builder = Message::builder()
        .from(mailbox(from, "from")?)
        .subject(msg.subject.as_str());
    for t in to {
        builder = builder.to(mailbox(t, "to")?);
    }
    for c in cc {
        builder = builder.cc(mailbox(c, "cc")?);
    }
    if let Some(r) = given(&msg.reply_to) {
        builder = builder.reply_to(mailbox(r, "reply_to")?);
    }
    let domain = address::domain(from).unwrap_or("localhost");
    let message_id = given(&msg.message_id)
        .map(str::to_string)
        .unwrap_or_else(|| format!("<{pk}@{domain}>"));
    builder = builder.date_now().message_id(Some(message_id));
    let mut headers: Vec<(String, String)> = Vec::new();
    if !msg.id.is_empty() {
        headers.push(("X-Genro-Mail-ID".into(), msg.id.clone()));
    }
    for (k, v) in &msg.headers {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
        headers.push((k.clone(), v.clone()));
    }
    for (name, value) in headers {
        let name = HeaderName::new_from_ascii(name.clone())
            .map_err(|_| BuildError(format!("invalid header name {name:?}")))?;
        builder = builder.raw_header(HeaderValue::new(name, value));
    }
    // Envelope: return_path or from; every recipient once.
    let sender = bare(given(&msg.return_path).unwrap_or(from), "return_path")?;
    let mut rcpts: Vec<Address> = Vec::new();
    for r in to.iter().chain(cc).chain(bcc) {
        let a = bare(r, "recipient")?;
        if !rcpts.contains(&a) {
            rcpts.push(a);
        }
    }
    let envelope = Envelope::new(Some(sender), rcpts)
        .map_err(|e| BuildError(format!("invalid envelope: {e}")))?;
    let body = body_part(msg);
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let message = if attachments.is_empty() {
        match body {
            TextBody::Single(p) => builder.singlepart(p),
            TextBody::Alternative(m) => builder.multipart(m),
        }
    } else {
        let mut mixed = match body {
            TextBody::Single(p) => MultiPart::mixed().singlepart(p),
            TextBody::Alternative(m) => MultiPart::mixed().multipart(m),
        };
        for (i, a) in attachments.iter().enumerate() {
            let ct = ContentType::parse(&a.mime).unwrap_or(
                ContentType::parse("application/octet-stream")
                    .map_err(|e| BuildError(e.to_string()))?,
            );
            let stand_in = Body::dangerous_pre_encoded(
                placeholder(&nonce, i),
                ContentTransferEncoding::Base64,
            );
            mixed = mixed.singlepart(Attachment::new(a.filename.clone()).body(stand_in, ct));
        }
        builder.multipart(mixed)
    }
    .map_err(|e| BuildError(format!("cannot build message: {e}")))?;
    let message = splice(message.formatted(), &nonce, attachments)?;
    Ok(Built { envelope, message })
}

/// The stand-in body of attachment `i`: NUL bytes and a nonce drawn for this message, so no
/// header or text body can hold it (lettre base64-encodes a text body with a NUL byte).
fn placeholder(nonce: &str, i: usize) -> Vec<u8> {
    format!("\0gmp-attachment-{nonce}-{i}\0").into_bytes()
}

/// Cuts the skeleton at each stand-in and puts the attachment's content there, to be encoded
/// while it is sent.
fn splice(
    skeleton: Vec<u8>,
    nonce: &str,
    attachments: Vec<LoadedAttachment>,
) -> Result<Formatted, BuildError> {
    let mut pieces = Vec::with_capacity(attachments.len() * 2 + 1);
    let mut rest = skeleton.as_slice();
    for (i, a) in attachments.into_iter().enumerate() {
        let mark = placeholder(nonce, i);
        let at = rest
            .windows(mark.len())
            .position(|w| w == mark.as_slice())
            .ok_or_else(|| BuildError(format!("attachment {i} lost while formatting")))?;
        pieces.push(Piece::Text(rest[..at].to_vec()));
        pieces.push(Piece::Base64(a.content));
        rest = &rest[at + mark.len()..];
    }
    pieces.push(Piece::Text(rest.to_vec()));
    Ok(Formatted::new(pieces))
}

enum TextBody {
    Single(SinglePart),
    Alternative(MultiPart),
}

fn body_part(msg: &StoredMessage) -> TextBody {
    let text = msg.body.clone();
    let html_type = msg.is_html();
    match msg.body_html.as_deref() {
        Some(html) if !html_type => {
            TextBody::Alternative(MultiPart::alternative_plain_html(text, html.to_string()))
        }
        _ if html_type => TextBody::Single(SinglePart::html(text)),
        _ => TextBody::Single(SinglePart::plain(text)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn stored(v: Value) -> StoredMessage {
        serde_json::from_value(v).expect("a stored message")
    }

    #[test]
    fn headers_envelope_and_body_follow_the_contract() {
        let payload = json!({"id":"MSG-1","from":"Sender <s@acme.com>","to":["a@x.io","b@y.io"],
            "cc":["a@x.io"],"bcc":["c@z.io"],"subject":"Hi","body":"hello","content_type":"plain",
            "headers":{"X-Foo":"1"},"return_path":"bounce@acme.com"});
        let built = build(&stored(payload.clone()), "pk-1", Vec::new()).unwrap();
        let text = String::from_utf8(built.message.to_vec()).unwrap();
        assert!(text.contains("Message-ID: <pk-1@acme.com>"), "{text}");
        assert!(text.contains("X-Genro-Mail-ID: MSG-1"));
        assert!(text.contains("X-Foo: 1"));
        assert!(text.contains("Date: "));
        assert!(!text.contains("c@z.io"), "no Bcc header");
        assert_eq!(
            built.envelope.from().unwrap().to_string(),
            "bounce@acme.com"
        );
        let rcpts: Vec<String> = built
            .envelope
            .to()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(rcpts, ["a@x.io", "b@y.io", "c@z.io"]);
    }

    #[test]
    fn alternative_and_attachments() {
        let payload = json!({"id":"m","from":"s@a.io","to":["t@b.io"],"subject":"s","body":"plain","body_html":"<p>h</p>"});
        let att = LoadedAttachment {
            filename: "r.pdf".into(),
            mime: "application/pdf".into(),
            content: bytes::Bytes::from_static(b"%PDF-1.4"),
        };
        let text = String::from_utf8(
            build(&stored(payload.clone()), "pk", vec![att])
                .unwrap()
                .message
                .to_vec(),
        )
        .unwrap();
        assert!(text.contains("multipart/mixed"));
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("filename=\"r.pdf\""));
    }

    #[test]
    fn attachments_go_out_exactly_as_lettre_encodes_them() {
        let payload =
            json!({"id":"m","from":"s@a.io","to":["t@b.io"],"subject":"s","body":"plain"});
        // Sizes around the line (57 bytes) and chunk boundaries of the streamed encoding.
        let chunk = 57 * crate::mail::formatted::CHUNK_LINES;
        let atts: Vec<LoadedAttachment> = [5, 57, chunk, 2 * chunk + 1]
            .iter()
            .enumerate()
            .map(|(i, &n)| LoadedAttachment {
                filename: format!("f{i}.bin"),
                mime: "application/octet-stream".into(),
                content: bytes::Bytes::from((0..n).map(|b| (b % 253) as u8).collect::<Vec<u8>>()),
            })
            .collect();
        let built = build(&stored(payload.clone()), "pk", atts.clone()).unwrap();
        assert_eq!(
            built.message.attachment_bytes(),
            atts.iter().map(|a| a.content.len()).sum::<usize>()
        );
        let wire = built.message.to_vec();
        assert_eq!(wire.len(), built.message.len());
        for a in atts {
            let ct = ContentType::parse(&a.mime).unwrap();
            // Always base64 (PROTOCOL.md §6.6); lettre alone would pick 7bit for some contents.
            let body = Body::new_with_encoding(a.content.to_vec(), ContentTransferEncoding::Base64)
                .unwrap();
            let part = Attachment::new(a.filename.clone())
                .body(body, ct)
                .formatted();
            assert!(
                wire.windows(part.len()).any(|w| w == part.as_slice()),
                "{} ({} bytes) differs from lettre's base64 part",
                a.filename,
                a.content.len()
            );
        }
        assert!(!wire.contains(&0), "no stand-in left");
    }

    #[test]
    fn missing_fields_are_permanent_errors() {
        assert_eq!(
            build(&stored(json!({"to":["a@b"]})), "pk", vec![])
                .unwrap_err()
                .0,
            "missing 'from'"
        );
        assert_eq!(
            build(&stored(json!({"from":"a@b"})), "pk", vec![])
                .unwrap_err()
                .0,
            "missing 'to'"
        );
    }
}
