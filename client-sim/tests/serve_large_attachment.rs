//! A 50 MiB attachment is streamed: its bytes arrive with the right length and MD5 while the
//! process's resident memory grows far less than 50 MiB. (Alone in its own test binary so that
//! no other test moves the memory figure.)

mod common;

use client_sim::serve::content;
use client_sim::serve::{Profile, ServeConfig};
use futures_util::StreamExt;
use md5::{Digest, Md5};
use serde_json::json;

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn fifty_mib_attachment_streams_with_its_hash() {
    const SIZE: u64 = 52_428_800;
    let seed = 123_456_789;
    let md5 = hex::encode(content::md5_of(seed, SIZE));
    let client = common::start_client(ServeConfig::for_profile(Some(Profile::Documents), 1)).await;
    let http = reqwest::Client::new();
    let before = rss_kib();
    let path = format!("hash={md5}&size={SIZE}&seed={seed}");
    let response = http
        .post(client.url("/attachments"))
        .json(&json!({ "storage_path": path }))
        .send()
        .await
        .expect("fetch");
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(SIZE));
    let mut hasher = Md5::new();
    let mut len = 0u64;
    let mut body = response.bytes_stream();
    let mut peak = before.unwrap_or(0);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("chunk");
        len += chunk.len() as u64;
        hasher.update(&chunk);
        peak = peak.max(rss_kib().unwrap_or(0));
    }
    assert_eq!(len, SIZE);
    assert_eq!(hex::encode(hasher.finalize()), md5);
    if let Some(before) = before {
        let grew_kib = peak.saturating_sub(before);
        println!("RSS before {before} KiB, peak while streaming {peak} KiB (+{grew_kib} KiB)");
        assert!(
            grew_kib < 25 * 1024,
            "RSS grew by {grew_kib} KiB while streaming 50 MiB"
        );
    }
    let stats: serde_json::Value = http
        .get(client.url("/stats"))
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(stats["attachment_mb_served"], 50.0);
    assert_eq!(stats["attachments_served"], 1);
}
