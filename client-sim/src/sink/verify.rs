//! Checks one received message: reads the tenant, creation time and Message-ID from its headers
//! (mail-parser) and, when `X-Pressure-Attachment-Md5` is present, hashes every attachment's
//! decoded content ([`super::mime`], else a full mail-parser parse) and compares it with the
//! matching entry. CPU-bound for big messages: the caller runs those on a blocking thread.

use mail_parser::MessageParser;
use mailproxy_proto::headers;
use mailproxy_proto::md5::Md5;

/// Tenant label of messages without an `X-Pressure-Tenant` header.
pub const UNKNOWN_TENANT: &str = "unknown";

/// What the sink learned from one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Tenant from the header, or `unknown`.
    pub tenant: String,
    /// Message bytes after dot-unstuffing.
    pub bytes: u64,
    /// Attachments compared with a header entry.
    pub verified: u64,
    /// Attachments whose MD5 differed, or that the header lists but that did not arrive.
    pub mismatches: u64,
    /// Creation time at the simulated client, Unix microseconds.
    pub created_us: Option<u64>,
    /// The `Message-ID` header, if any.
    pub message_id: Option<String>,
}

/// Parses and verifies `raw` (the unstuffed message).
pub fn verify(raw: &[u8]) -> Verdict {
    let mut verdict = Verdict {
        tenant: UNKNOWN_TENANT.to_owned(),
        bytes: raw.len() as u64,
        verified: 0,
        mismatches: 0,
        created_us: None,
        message_id: None,
    };
    let parser = MessageParser::default();
    // Headers first: most messages carry no attachment to check and need no body parse.
    let Some(head) = parser.parse_headers(raw) else {
        return verdict;
    };
    let text = |name: &'static str| {
        head.header(name)
            .and_then(|v| v.as_text())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    if let Some(tenant) = text(headers::TENANT_ID) {
        verdict.tenant = tenant.to_owned();
    }
    verdict.created_us = text(headers::CREATED_AT_MICROS).and_then(|v| v.parse().ok());
    verdict.message_id = head.message_id().map(str::to_owned);
    let expected: Vec<String> = text(headers::ATTACHMENT_MD5S)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if expected.is_empty() {
        return verdict;
    }
    let digests = super::mime::attachment_digests(raw).or_else(|| full_parse_digests(raw));
    let mut digests = digests.unwrap_or_default().into_iter();
    for want in &expected {
        match digests.next() {
            Some(digest) => {
                verdict.verified += 1;
                if hex::encode(digest) != *want {
                    verdict.mismatches += 1;
                }
            }
            None => verdict.mismatches += 1,
        }
    }
    verdict
}

/// Attachment digests through a full mail-parser parse (the fallback of the fast walker).
fn full_parse_digests(raw: &[u8]) -> Option<Vec<[u8; 16]>> {
    let message = MessageParser::default().parse(raw)?;
    Some(
        message
            .attachments()
            .map(|part| Md5::digest(part.contents()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(md5_header: &str, content_b64: &str) -> Vec<u8> {
        format!(
            "From: a@x.test\r\nTo: b@y.test\r\nSubject: t\r\nMessage-ID: <m1@x>\r\n\
             X-Pressure-Tenant: acme\r\nX-Pressure-Created-Us: 1700000000000000\r\n\
             X-Pressure-Attachment-Md5: {md5_header}\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
             Content-Type: text/plain\r\n\r\nhello\r\n--b\r\n\
             Content-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename=\"d.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{content_b64}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn matching_attachment_verifies() {
        // base64("abc"); md5("abc") = 900150983cd24fb0d6963f7d28e17f72.
        let v = verify(&mail("900150983cd24fb0d6963f7d28e17f72", "YWJj"));
        assert_eq!((v.verified, v.mismatches), (1, 0));
        assert_eq!(v.tenant, "acme");
        assert_eq!(v.created_us, Some(1_700_000_000_000_000));
        assert_eq!(v.message_id.as_deref(), Some("m1@x"));
    }

    #[test]
    fn wrong_or_missing_attachment_is_a_mismatch() {
        let v = verify(&mail("00000000000000000000000000000000", "YWJj"));
        assert_eq!((v.verified, v.mismatches), (1, 1));
        let v = verify(&mail(
            "900150983cd24fb0d6963f7d28e17f72,900150983cd24fb0d6963f7d28e17f72",
            "YWJj",
        ));
        assert_eq!((v.verified, v.mismatches), (1, 1));
    }
}
