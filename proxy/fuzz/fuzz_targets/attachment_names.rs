//! Attachment names and paths (`model::attachment`, `attachments::spec`, `attachments::endpoint`):
//! the `{MD5:…}` marker, filename cleaning, mode inference and endpoint URL building on arbitrary
//! strings never panic, and their results keep their promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailproxy::{
    attachments::{endpoint, spec::Spec},
    model::attachment,
    store::tenants::Tenant,
};
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(key) = attachment::marker(s) {
        assert!(!key.is_empty());
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
    let clean = attachment::clean_filename(s);
    assert!(!clean.is_empty());
    assert!(!clean.starts_with('_') && !clean.ends_with('_'), "{clean:?}");
    assert!(!clean.contains("__") && !clean.contains("_."), "{clean:?}");
    let _ = attachment::guess_mime(&clean);
    let (mode, path) = attachment::infer_mode(s);
    assert!(s.ends_with(path));
    assert!(attachment::normalise_mode(mode).is_some());
    // The same string as filename, storage path and content_md5 of an attachment object.
    let att = json!({"filename": s, "storage_path": s, "content_md5": s});
    if let Ok(spec) = Spec::parse(&att) {
        assert!(!spec.name.is_empty());
    }
    let tenant = Tenant {
        id: "t".into(),
        client_base_url: Some("http://127.0.0.1:8080/".into()),
        client_auth: Some(json!({"method": "bearer", "token": "secret"})),
        ..Tenant::default()
    };
    if let Ok(t) = endpoint::endpoint(s, None, Some(&tenant), None) {
        assert!(matches!(t.url.scheme(), "http" | "https"));
        // Tenant credentials go only to the tenant's own origin.
        if t.authorization.is_some() {
            assert!(endpoint::same_origin(&t.url, tenant.client_base_url.as_deref()));
        }
    }
    if let Ok(t) = endpoint::http_url(s, None, Some(&tenant))
        && t.authorization.is_some()
    {
        assert!(endpoint::same_origin(&t.url, tenant.client_base_url.as_deref()));
    }
});
