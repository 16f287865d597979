//! A fast path for attachment digests: walks the MIME tree of a raw message by its boundaries
//! and hashes each attachment's decoded bytes as it decodes them (base64 in 64 KiB chunks), so
//! verification costs one pass over the data and no copy of the attachment. Headers are parsed
//! with mail-parser.
//!
//! An attachment here is a leaf part with `Content-Disposition: attachment`, or any leaf part
//! that is neither `text/*` nor `message/*`; its content is hashed as decoded bytes, without the
//! charset conversion a full parse applies to text parts. Anything this walker does not handle
//! (quoted-printable, malformed structure, bad base64, deep nesting) returns `None`, and the
//! caller falls back to a full mail-parser parse.

use base64::Engine;
use mail_parser::{MessageParser, MimeHeaders};
use mailproxy_proto::md5::Md5;
use memchr::memmem;

const MAX_DEPTH: u32 = 8;
/// Base64 characters decoded per step (a multiple of 4).
const B64_CHUNK: usize = 64 * 1024;
/// Longest base64 line handled here (RFC 2045 says 76).
const MAX_B64_LINE: usize = 4096;

/// MD5 of every attachment in document order, or `None` when the message needs a full parse.
pub fn attachment_digests(raw: &[u8]) -> Option<Vec<[u8; 16]>> {
    let mut out = Vec::new();
    walk(raw, 0, &mut out)?;
    Some(out)
}

fn walk(entity: &[u8], depth: u32, out: &mut Vec<[u8; 16]>) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let (head, body) = split_head(entity)?;
    if head.is_empty() {
        return Some(()); // no headers: text/plain by default, a body part
    }
    let parsed = MessageParser::default().parse_headers(head)?;
    let content_type = parsed.content_type();
    let ctype = content_type.map_or("text".to_owned(), |c| c.ctype().to_ascii_lowercase());
    if ctype == "multipart" {
        let boundary = content_type?.attribute("boundary")?;
        for part in split_multipart(body, boundary.as_bytes())? {
            walk(part, depth + 1, out)?;
        }
        return Some(());
    }
    let disposed = parsed
        .content_disposition()
        .is_some_and(|d| d.is_attachment());
    if !disposed && (ctype == "text" || ctype == "message") {
        return Some(());
    }
    let encoding = parsed
        .content_transfer_encoding()
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    let digest = match encoding.as_str() {
        "base64" => md5_base64(body)?,
        "7bit" | "8bit" | "binary" => Md5::digest(body),
        _ => return None,
    };
    out.push(digest);
    Some(())
}

/// Splits an entity into its header block (with the final CRLF) and its body.
fn split_head(entity: &[u8]) -> Option<(&[u8], &[u8])> {
    if let Some(body) = entity.strip_prefix(b"\r\n") {
        return Some((&[], body));
    }
    let end = memmem::find(entity, b"\r\n\r\n")?;
    Some((&entity[..end + 2], &entity[end + 4..]))
}

/// The body parts of a multipart body (RFC 2046 §5.1.1), preamble and epilogue dropped.
fn split_multipart<'a>(body: &'a [u8], boundary: &[u8]) -> Option<Vec<&'a [u8]>> {
    let mut delimiter = b"\r\n--".to_vec();
    delimiter.extend_from_slice(boundary);
    let finder = memmem::Finder::new(&delimiter);
    // A delimiter is followed by `--` (the last one), or by optional padding and CRLF.
    let delimiter_at = |from: usize| -> Option<usize> {
        finder
            .find_iter(&body[from..])
            .map(|i| from + i)
            .find(|&i| {
                let rest = &body[i + delimiter.len()..];
                rest.starts_with(b"--")
                    || rest.starts_with(b"\r\n")
                    || rest.starts_with(b" ")
                    || rest.starts_with(b"\t")
            })
    };
    // The first delimiter may open the body, without the leading CRLF.
    let mut at = if body.starts_with(&delimiter[2..]) {
        0
    } else {
        delimiter_at(0)? + 2
    };
    let mut parts = Vec::new();
    loop {
        let after = at + delimiter.len() - 2;
        if body.get(after..)?.starts_with(b"--") {
            return Some(parts);
        }
        let start = after + memchr::memchr(b'\n', &body[after..])? + 1;
        let next = delimiter_at(start.saturating_sub(2).max(after))?;
        parts.push(body.get(start..next).unwrap_or_default());
        at = next + 2;
    }
}

/// MD5 of base64 text, decoded in chunks. Lines are copied whole (memchr for the line ends);
/// only trailing CR, spaces and tabs are trimmed, so whitespace inside a line makes the decode
/// fail and the caller fall back to the lenient full parse.
fn md5_base64(body: &[u8]) -> Option<[u8; 16]> {
    let engine = &base64::engine::general_purpose::STANDARD;
    let mut hasher = Md5::new();
    let mut pending: Vec<u8> = Vec::with_capacity(B64_CHUNK + MAX_B64_LINE);
    // Pending input stays below one chunk plus one line, so this holds any decode.
    let mut decoded = vec![0u8; (B64_CHUNK + MAX_B64_LINE) / 4 * 3 + 3];
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    for end in ends {
        let line = body[start..end].trim_ascii_end();
        start = end + 1;
        if line.len() > MAX_B64_LINE {
            return None; // not MIME-conformant line lengths: left to the full parse
        }
        pending.extend_from_slice(line);
        if pending.len() >= B64_CHUNK {
            let take = pending.len() / 4 * 4;
            let n = engine.decode_slice(&pending[..take], &mut decoded).ok()?;
            hasher.update(&decoded[..n]);
            pending.drain(..take);
        }
    }
    if !pending.is_empty() {
        let n = engine.decode_slice(&pending, &mut decoded).ok()?;
        hasher.update(&decoded[..n]);
    }
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_multipart_attachments_are_found_in_order() {
        let raw = b"Content-Type: multipart/mixed; boundary=\"out\"\r\n\r\npreamble\r\n--out\r\n\
            Content-Type: multipart/alternative; boundary=\"outer\"\r\n\r\n--outer\r\n\
            Content-Type: text/plain\r\n\r\ntext\r\n--outer\r\nContent-Type: text/html\r\n\r\n\
            <p>h</p>\r\n--outer--\r\n--out\r\nContent-Type: application/octet-stream\r\n\
            Content-Transfer-Encoding: base64\r\n\r\nYW\r\nJj\r\n--out\r\n\
            Content-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\n\
            xyz\r\n--out--\r\nepilogue";
        let digests = attachment_digests(raw).expect("walk");
        let want: Vec<[u8; 16]> = vec![Md5::digest(b"abc"), Md5::digest(b"xyz")];
        assert_eq!(digests, want);
    }

    #[test]
    fn unsupported_encodings_fall_back() {
        let raw =
            b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: quoted-printable\r\n\
            \r\n=41\r\n";
        assert_eq!(attachment_digests(raw), None);
        let bad =
            b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@@\r\n";
        assert_eq!(attachment_digests(bad), None);
    }

    #[test]
    fn long_base64_is_decoded_across_chunks() {
        let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&content);
        let mut raw =
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                .to_vec();
        for line in b64.as_bytes().chunks(76) {
            raw.extend_from_slice(line);
            raw.extend_from_slice(b"\r\n");
        }
        let want: [u8; 16] = Md5::digest(&content);
        assert_eq!(attachment_digests(&raw), Some(vec![want]));
    }
}
