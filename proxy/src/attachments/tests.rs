//! Unit tests of [`Loader::load_all`] that need no server: the memory budget held by [`Loaded`],
//! the full descriptions of permanent failures, and the cap on inline content.

use std::time::Duration;

use ::base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

use super::*;
use crate::store::tenants::Tenant;

fn loader(f: impl FnOnce(&mut Config)) -> (Loader, Arc<Metrics>) {
    let mut c = Config::defaults();
    f(&mut c);
    let m = Metrics::new();
    (Loader::new(&c, m.clone()), m)
}

fn inline(n: usize) -> Vec<Value> {
    vec![json!({"filename": "a.bin", "fetch_mode": "base64",
        "storage_path": STANDARD.encode(vec![1u8; n])})]
}

#[tokio::test]
async fn the_budget_is_held_until_the_loaded_attachments_are_dropped() {
    let (l, m) = loader(|c| c.attachment_memory_budget_mb = 1);
    let l = Arc::new(l);
    let first = l.load_all(None, &inline(400 * 1024), None).await.unwrap();
    let held = budget::footprint(400 * 1024) as i64;
    assert_eq!(m.attachment_memory.get(), held);
    let l2 = l.clone();
    let second = tokio::spawn(async move { l2.load_all(None, &inline(400 * 1024), None).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!second.is_finished(), "two footprints exceed 1 MiB");
    let (atts, guard) = first.into_parts();
    drop(atts);
    assert!(
        !second.is_finished(),
        "the guard, not the bytes, holds the budget"
    );
    drop(guard);
    let second = second.await.unwrap().unwrap();
    assert_eq!(second.attachments[0].content.len(), 400 * 1024);
    assert_eq!(m.attachment_memory.get(), held);
    drop(second);
    assert_eq!(m.attachment_memory.get(), 0);
}

#[tokio::test]
async fn permanent_failures_carry_the_contract_text() {
    let (l, _) = loader(|c| c.max_attachment_bytes = 10);
    // A payload's attachment list, as the dispatcher hands it over.
    let err = |v: Value| {
        let l = &l;
        let list = v["attachments"].as_array().cloned().unwrap_or_default();
        async move {
            l.load_all(Some(&Tenant::default()), &list, None)
                .await
                .unwrap_err()
        }
    };
    let e = err(json!({"attachments": [{"filename": "d.pdf", "storage_path": "doc"}]})).await;
    assert_eq!(
        e,
        LoadError::permanent(
            "Attachment fetch failed for d.pdf: No default endpoint configured and path doesn't specify one"
        )
    );
    let e = err(json!({"attachments": [{"filename": "f.txt", "storage_path": "/etc/hostname"}]}));
    assert_eq!(
        e.await.text,
        "Attachment fetch failed for f.txt: Filesystem attachments are disabled"
    );
    let e = err(json!({ "attachments": inline(11) })).await;
    assert_eq!(
        e.text,
        "Attachment fetch failed for a.bin: Attachment 'a.bin' exceeds limit (10 bytes)"
    );
    let bad = json!({"attachments": [{"filename": "b.bin", "fetch_mode": "base64", "storage_path": "no*pe"}]});
    let e = err(bad).await;
    assert!(!e.temporary);
    assert!(
        e.text
            .starts_with("Attachment fetch failed for b.bin: Invalid base64 content: "),
        "{}",
        e.text
    );
}

#[tokio::test]
async fn large_file_reject_is_permanent_and_warn_attaches() {
    let (l, _) = loader(|_| {});
    let mut t = Tenant {
        large_file_config: Some(
            json!({"enabled": true, "max_size_mb": 0.0001, "action": "reject"}),
        ),
        ..Tenant::default()
    };
    let e = l.load_all(Some(&t), &inline(1000), None).await.unwrap_err();
    assert_eq!(
        e,
        LoadError::permanent("Attachment 'a.bin' (0.0 MB) exceeds limit (0.0001 MB)")
    );
    t.large_file_config = Some(json!({"enabled": true, "max_size_mb": 0.0001}));
    assert!(l.load_all(Some(&t), &inline(1000), None).await.is_ok());
}
