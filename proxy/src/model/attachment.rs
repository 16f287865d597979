//! Attachment names and modes (PROTOCOL.md §5.2, §5.4): the `{MD5:<hex>}` marker, filename cleaning,
//! fetch-mode inference and the MIME guess.

/// The lower-cased hex key of the first `{MD5:<hex>}` marker in a filename.
pub fn marker(filename: &str) -> Option<String> {
    let start = filename.find("{MD5:")?;
    let rest = &filename[start + 5..];
    let end = rest.find('}')?;
    let hex = &rest[..end];
    (!hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// The delivered filename: marker removed, runs of `_` collapsed, leading and trailing `_`
/// stripped, `_.` replaced by `.`.
pub fn clean_filename(filename: &str) -> String {
    let mut s = filename.to_string();
    while let Some(start) = s.find("{MD5:") {
        match s[start..].find('}') {
            Some(end) => s.replace_range(start..start + end + 1, ""),
            None => break,
        }
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let out = out.trim_matches('_').replace("_.", ".");
    if out.is_empty() {
        "attachment".into()
    } else {
        out
    }
}

/// The fetch mode of an attachment without `fetch_mode` (§5.2), and the path to use.
pub fn infer_mode(storage_path: &str) -> (&'static str, &str) {
    if let Some(rest) = storage_path.strip_prefix("base64:") {
        ("base64", rest)
    } else if storage_path.starts_with("http://") || storage_path.starts_with("https://") {
        ("http_url", storage_path)
    } else if storage_path.starts_with('/') || storage_path.contains(':') {
        ("filesystem", storage_path)
    } else {
        ("endpoint", storage_path)
    }
}

/// Normalises an explicit `fetch_mode`; None when unknown.
pub fn normalise_mode(mode: &str) -> Option<&'static str> {
    match mode {
        "endpoint" => Some("endpoint"),
        "http_url" => Some("http_url"),
        "base64" => Some("base64"),
        "filesystem" | "storage" => Some("filesystem"),
        _ => None,
    }
}

/// MIME type from a cleaned filename's extension.
pub fn guess_mime(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "xml" => "application/xml",
        "zip" => "application/zip",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_and_removed() {
        let name = "document_{MD5:9E107D9D372BB6826BD81D3542A419D6}.bin";
        assert_eq!(
            marker(name).as_deref(),
            Some("9e107d9d372bb6826bd81d3542a419d6")
        );
        assert_eq!(clean_filename(name), "document.bin");
        assert_eq!(clean_filename("a__b_{MD5:ab}_.pdf"), "a_b.pdf");
        assert_eq!(marker("plain.pdf"), None);
        assert_eq!(marker("x{MD5:zz}"), None);
    }

    #[test]
    fn modes_are_inferred_in_order() {
        assert_eq!(infer_mode("base64:SGk="), ("base64", "SGk="));
        assert_eq!(infer_mode("https://x/y").0, "http_url");
        assert_eq!(infer_mode("/abs/p").0, "filesystem");
        assert_eq!(infer_mode("mount:rel/p").0, "filesystem");
        assert_eq!(infer_mode("doc_id=1").0, "endpoint");
        assert_eq!(normalise_mode("storage"), Some("filesystem"));
        assert_eq!(guess_mime("report.PDF"), "application/pdf");
    }
}
