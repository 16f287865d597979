//! What one attachment object asks for (PROTOCOL.md §5.1, §5.2, §5.4): its names, fetch mode and
//! path, cache key, own credentials and MIME type.

use serde_json::Value;

use super::LoadError;
use crate::model::attachment as names;

/// One attachment to load.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// The filename as given (used in error descriptions).
    pub raw_name: &'a str,
    /// The delivered, cleaned filename.
    pub name: String,
    /// `endpoint`, `http_url`, `base64` or `filesystem`.
    pub mode: &'static str,
    /// The storage path, `base64:` prefix removed for inferred base64.
    pub path: &'a str,
    /// Cache key: `content_md5`, else the marker (lower-case hex).
    pub key: Option<String>,
    /// The attachment's own `auth`.
    pub auth: Option<&'a Value>,
    /// MIME type: `mime_type`/`content_type` when it contains `/`, else guessed.
    pub mime: String,
}

impl<'a> Spec<'a> {
    /// Reads one attachment object.
    pub fn parse(att: &'a Value) -> Result<Self, LoadError> {
        let raw_name = att
            .get("filename")
            .and_then(Value::as_str)
            .unwrap_or("attachment");
        let name = names::clean_filename(raw_name);
        let path = att
            .get("storage_path")
            .or_else(|| att.get("content"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (mode, path) = match att.get("fetch_mode").and_then(Value::as_str) {
            Some(m) => (
                names::normalise_mode(m).ok_or_else(|| {
                    LoadError::permanent(format!(
                        "Attachment fetch failed for {raw_name}: Unknown fetch_mode: {m}"
                    ))
                })?,
                path,
            ),
            None => names::infer_mode(path),
        };
        let key = att
            .get("content_md5")
            .and_then(Value::as_str)
            .filter(|k| k.len() == 32 && k.chars().all(|c| c.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase)
            .or_else(|| names::marker(raw_name));
        let mime = att
            .get("mime_type")
            .or_else(|| att.get("content_type"))
            .and_then(Value::as_str)
            .filter(|m| m.contains('/'))
            .map(str::to_string)
            .unwrap_or_else(|| names::guess_mime(&name).to_string());
        Ok(Spec {
            raw_name,
            name,
            mode,
            path,
            key,
            auth: att.get("auth").filter(|a| a.is_object()),
            mime,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_keys_modes_and_mime() {
        let md5 = "9e107d9d372bb6826bd81d3542a419d6";
        let a = json!({"filename": format!("document_{{MD5:{}}}.bin", md5.to_uppercase()),
            "storage_path": "doc_id=1"});
        let s = Spec::parse(&a).unwrap();
        assert_eq!(
            (s.name.as_str(), s.mode, s.key.as_deref()),
            ("document.bin", "endpoint", Some(md5))
        );
        assert_eq!(s.mime, "application/octet-stream");
        let other = "0123456789abcdef0123456789abcdef";
        let a = json!({"filename": format!("r_{{MD5:{md5}}}.pdf"), "content_md5": other,
            "content": "base64:SGk=", "content_type": "application/x-custom"});
        let s = Spec::parse(&a).unwrap();
        assert_eq!(s.key.as_deref(), Some(other), "content_md5 wins");
        assert_eq!((s.mode, s.path), ("base64", "SGk="));
        assert_eq!(s.mime, "application/x-custom");
        let bad = json!({"filename": "x", "storage_path": "p", "fetch_mode": "ftp"});
        assert!(!Spec::parse(&bad).unwrap_err().temporary);
    }
}
