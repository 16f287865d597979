//! The `base64` fetch mode (contract §5.3): optional `base64:` prefix, whitespace removed,
//! padding added, strict alphabet.

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;

/// Decodes inline base64 content.
pub fn decode(raw: &str) -> Result<Bytes, String> {
    let s = raw.strip_prefix("base64:").unwrap_or(raw);
    let mut clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    while !clean.len().is_multiple_of(4) {
        clean.push('=');
    }
    STANDARD
        .decode(clean.as_bytes())
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_with_prefix_whitespace_and_missing_padding() {
        assert_eq!(
            decode("base64:SGVs\nbG8").unwrap(),
            Bytes::from_static(b"Hello")
        );
        assert_eq!(
            decode("VGVzdCBkYXRhIGNvbnRlbnQ=").unwrap(),
            Bytes::from_static(b"Test data content")
        );
        assert!(decode("not*base64").is_err());
    }
}
