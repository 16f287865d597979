//! A formatted message kept in pieces, so that sending it never holds an encoded copy of its
//! attachments: the text lettre formats (headers, bodies, MIME boundaries) and, in between, each
//! attachment's raw content, base64-encoded a chunk at a time as the SMTP `DATA` goes out.
//!
//! The wire bytes are exactly what lettre's `Message::formatted()` writes (76-character lines,
//! CRLF between them, none after the last), so the encoding is lettre's; only its timing changes.
//! A 50 MiB attachment used to hold about 138 MiB while sent (lettre's base64 body, then the
//! formatted message and lettre's dot-stuffed copy of it); now it holds its 50 MiB of content and
//! one chunk ([`CHUNK_LINES`] lines).

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Raw bytes per base64 line (76 characters).
const LINE_RAW: usize = 57;
/// Base64 lines per chunk handed to the SMTP connection: 57 KiB raw, 78 KiB on the wire.
pub const CHUNK_LINES: usize = 1024;

/// One piece of a formatted message.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Bytes written as they are.
    Text(Vec<u8>),
    /// Raw content written as base64 lines.
    Base64(bytes::Bytes),
}

/// A formatted message: its pieces, in order.
#[derive(Debug, Clone, Default)]
pub struct Formatted {
    pieces: Vec<Piece>,
}

impl Formatted {
    /// A message of these pieces.
    pub fn new(pieces: Vec<Piece>) -> Self {
        Formatted { pieces }
    }

    /// The message's length in bytes (before SMTP dot-stuffing).
    pub fn len(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len(),
                Piece::Base64(raw) => encoded_len(raw.len()),
            })
            .sum()
    }

    /// Whether the message has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw attachment bytes the message holds (what a send keeps in memory besides a chunk).
    pub fn attachment_bytes(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(_) => 0,
                Piece::Base64(raw) => raw.len(),
            })
            .sum()
    }

    /// The message as consecutive chunks: text pieces borrowed, base64 encoded on demand.
    pub fn chunks(&self) -> Chunks<'_> {
        Chunks {
            pieces: &self.pieces,
            piece: 0,
            offset: 0,
        }
    }

    /// The whole message in one buffer (tests and small messages).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        for c in self.chunks() {
            out.extend_from_slice(&c);
        }
        out
    }
}

/// The chunks of a [`Formatted`], in order (see [`Formatted::chunks`]).
#[derive(Debug)]
pub struct Chunks<'a> {
    pieces: &'a [Piece],
    piece: usize,
    /// Raw bytes of the current base64 piece already encoded.
    offset: usize,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Cow<'a, [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        let piece = self.pieces.get(self.piece)?;
        match piece {
            Piece::Text(t) => {
                self.piece += 1;
                Some(Cow::Borrowed(t.as_slice()))
            }
            Piece::Base64(raw) => {
                let end = raw.len().min(self.offset + LINE_RAW * CHUNK_LINES);
                let more = end < raw.len();
                let chunk = encode_lines(&raw[self.offset..end], more);
                if more {
                    self.offset = end;
                } else {
                    self.piece += 1;
                    self.offset = 0;
                }
                Some(Cow::Owned(chunk))
            }
        }
    }
}

/// Base64 of `raw` in 76-character lines joined by CRLF; with `more`, a CRLF after the last
/// line too, since another chunk of the same content follows.
fn encode_lines(raw: &[u8], more: bool) -> Vec<u8> {
    let lines = raw.len().div_ceil(LINE_RAW);
    let mut out = vec![0; lines * 78];
    let mut at = 0;
    for (i, line) in raw.chunks(LINE_RAW).enumerate() {
        // 76 bytes always fit: 57 raw bytes encode to exactly 76.
        at += STANDARD.encode_slice(line, &mut out[at..]).unwrap_or(0);
        if more || i + 1 < lines {
            out[at..at + 2].copy_from_slice(b"\r\n");
            at += 2;
        }
    }
    out.truncate(at);
    out
}

/// The length of the base64 lines of `raw` bytes.
fn encoded_len(raw: usize) -> usize {
    let lines = raw.div_ceil(LINE_RAW);
    (raw.div_ceil(3) * 4) + lines.saturating_sub(1) * 2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: the whole content encoded at once, 76-character lines joined by CRLF
    /// (lettre's own encoding is compared in `build`'s tests).
    fn one_shot(raw: &[u8]) -> Vec<u8> {
        let lines: Vec<String> = raw.chunks(LINE_RAW).map(|c| STANDARD.encode(c)).collect();
        lines.join("\r\n").into_bytes()
    }

    #[test]
    fn base64_pieces_match_one_shot_encoding_at_every_boundary() {
        let step = LINE_RAW * CHUNK_LINES;
        for len in [
            0,
            1,
            56,
            57,
            58,
            114,
            step - 1,
            step,
            step + 1,
            2 * step,
            2 * step + 5,
        ] {
            let raw: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let f = Formatted::new(vec![
                Piece::Text(b"head\r\n".to_vec()),
                Piece::Base64(bytes::Bytes::from(raw.clone())),
                Piece::Text(b"\r\ntail".to_vec()),
            ]);
            let mut want = b"head\r\n".to_vec();
            want.extend(one_shot(&raw));
            want.extend(b"\r\ntail");
            assert_eq!(f.to_vec(), want, "length {len}");
            assert_eq!(f.len(), want.len(), "len() of {len}");
            assert_eq!(f.attachment_bytes(), len);
        }
    }

    #[test]
    fn chunks_are_bounded() {
        let raw = bytes::Bytes::from(vec![0u8; 5 * LINE_RAW * CHUNK_LINES + 3]);
        let f = Formatted::new(vec![Piece::Base64(raw)]);
        let sizes: Vec<usize> = f.chunks().map(|c| c.len()).collect();
        assert_eq!(sizes.len(), 6);
        assert!(sizes.iter().all(|&s| s <= CHUNK_LINES * 78), "{sizes:?}");
    }
}
