//! The `base64` fetch mode (PROTOCOL.md §5.3): optional `base64:` prefix, whitespace removed,
//! padding added, strict alphabet.

use base64::{
    Engine, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use bytes::Bytes;

/// The standard alphabet, padding optional (it is added when missing).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes inline base64 content. Content without whitespace (the usual case) is decoded in
/// place; only wrapped content is copied first without its whitespace, so a large attachment
/// costs its decoded bytes and not a second copy of its text.
pub fn decode(raw: &str) -> Result<Bytes, String> {
    let s = raw.strip_prefix("base64:").unwrap_or(raw);
    let decoded = if s.chars().any(char::is_whitespace) {
        let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        LENIENT.decode(clean.as_bytes())
    } else {
        LENIENT.decode(s.as_bytes())
    };
    decoded.map(Bytes::from).map_err(|e| e.to_string())
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
        assert_eq!(decode("SGk").unwrap(), Bytes::from_static(b"Hi"));
        assert!(decode("not*base64").is_err());
        assert!(decode("SGk===").is_err());
    }
}
