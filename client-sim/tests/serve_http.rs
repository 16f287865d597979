//! The simulated client over real HTTP: sync answers, report counting, message shapes, served
//! attachment bytes against their markers and headers, barriers, DND and bad input.

mod common;

use std::collections::HashMap;

use client_sim::serve::{MessageFormat, Profile, ServeConfig};
use md5::{Digest, Md5};
use serde_json::{Value, json};

fn config(seed: u64) -> ServeConfig {
    let mut c = ServeConfig::for_profile(Some(Profile::Standard), seed);
    c.large_attachment_rate = 0.0;
    c.dnd_probability = 0.0;
    c.run_id = "run-42".to_owned();
    c
}

async fn sync(http: &reqwest::Client, url: &str, body: Value) -> Value {
    let r = http.post(url).json(&body).send().await.expect("sync");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

async fn stats(http: &reqwest::Client, client: &common::Running) -> Value {
    http.get(client.url("/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn reports_are_counted_by_type_and_finalised_once() {
    let client = common::start_client(config(1)).await;
    let http = reqwest::Client::new();
    let reports = json!({"delivery_report": [
        {"id": "A", "sent_ts": 1},
        {"id": "B", "error_ts": 2, "error": "boom"},
        {"id": "C", "deferred_ts": 3, "deferred_reason": "rate_limit", "retry_at": 9},
        {"id": "D", "bounce_ts": 4, "bounce_type": "hard", "bounce_code": "550", "bounce_reason": "x"}
    ]});
    let answer = sync(&http, &client.url("/sync"), reports).await;
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["processed"], 4);
    assert!(answer.get("queued").is_none(), "never queued: {answer}");
    // The seed's key `reports` is read when `delivery_report` is absent.
    let again = json!({"reports": [{"id": "A", "sent_ts": 5}, {"id": "C", "sent_ts": 6}]});
    assert_eq!(
        sync(&http, &client.url("/sync"), again).await["processed"],
        2
    );
    let s = stats(&http, &client).await;
    assert_eq!(s["sync_calls"], 2);
    assert_eq!(s["reports_received"], 6);
    assert_eq!(
        s["reports_by_type"],
        json!({"sent": 3, "error": 1, "deferred": 1, "bounce": 1})
    );
    assert_eq!(s["messages_finalized"], 4);
    assert_eq!(s["errors"], 0);
}

#[tokio::test]
async fn canonical_messages_carry_the_measurement_headers() {
    let client = common::start_client(config(2)).await;
    let http = reqwest::Client::new();
    let mut messages = Vec::new();
    while messages.len() < 40 {
        let a = sync(&http, &client.url("/sync"), json!({"delivery_report": []})).await;
        messages.extend(a["messages"].as_array().cloned().unwrap_or_default());
    }
    let mut ids = std::collections::HashSet::new();
    for m in &messages {
        let id = m["id"].as_str().expect("id");
        assert!(id.starts_with("tenant-standard-") && id.len() == "tenant-standard-".len() + 12);
        assert!(ids.insert(id.to_owned()), "duplicate id {id}");
        assert!(m["from"].as_str().is_some_and(|f| f.contains('@')));
        assert!(m["to"][0].as_str().is_some_and(|t| t.starts_with("user-")));
        assert!(m["subject"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(m["body"].as_str().is_some() && m["body_html"].as_str().is_some());
        assert!(m["priority"].as_i64().is_some_and(|p| (0..=3).contains(&p)));
        assert!(m.get("account_id").is_none() && m.get("sender").is_none());
        let h = &m["headers"];
        assert_eq!(h["X-Pressure-Run-Id"], "run-42");
        assert_eq!(h["X-Pressure-Tenant"], "tenant-standard");
        let created: u64 = h["X-Pressure-Created-Us"]
            .as_str()
            .expect("created")
            .parse()
            .expect("us");
        assert!(created.abs_diff(client_sim::unix_micros()) < 60_000_000);
        if let Some(att) = m["attachments"].as_array() {
            assert_eq!(att.len(), 1);
            assert_eq!(att[0]["fetch_mode"], "endpoint");
            let md5 = h["X-Pressure-Attachment-Md5"].as_str().expect("md5 header");
            assert!(
                att[0]["storage_path"]
                    .as_str()
                    .expect("path")
                    .contains(&format!("hash={md5}"))
            );
        } else {
            assert!(h.get("X-Pressure-Attachment-Md5").is_none());
        }
    }
    let s = stats(&http, &client).await;
    assert_eq!(
        s["messages_generated"].as_u64(),
        Some(messages.len() as u64)
    );
}

#[tokio::test]
async fn upstream_form_uses_the_alias_fields() {
    let mut cfg = config(3);
    cfg.message_format = MessageFormat::Upstream;
    cfg.msg_rate_per_sync = 20.0;
    let client = common::start_client(cfg).await;
    let http = reqwest::Client::new();
    let a = sync(&http, &client.url("/sync"), json!({"delivery_report": []})).await;
    let m = &a["messages"][0];
    for key in [
        "sender",
        "recipient_email",
        "body_text",
        "body_html",
        "tenant_id",
        "priority",
    ] {
        assert!(m.get(key).is_some(), "missing {key} in {m}");
    }
    assert!(m.get("from").is_none() && m.get("to").is_none() && m.get("body").is_none());
}

/// Fetches an attachment and returns (md5 hex, length, X-Content-MD5).
async fn fetch(http: &reqwest::Client, url: &str, path: &str) -> (String, usize, String) {
    let r = http
        .post(url)
        .json(&json!({"storage_path": path}))
        .send()
        .await
        .expect("fetch");
    assert_eq!(r.status(), 200, "{path}");
    let header = r.headers()["X-Content-MD5"]
        .to_str()
        .expect("hdr")
        .to_owned();
    let bytes = r.bytes().await.expect("body");
    (hex::encode(Md5::digest(&bytes)), bytes.len(), header)
}

#[tokio::test]
async fn served_bytes_hash_to_markers_including_reused_content() {
    let mut cfg = config(4);
    cfg.attachment_cache_hit_rate = 1.0; // every attachment marked, every later one reused
    cfg.msg_rate_per_sync = 4.0;
    let client = common::start_client(cfg).await;
    let http = reqwest::Client::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..25 {
        let a = sync(&http, &client.url("/sync"), json!({"delivery_report": []})).await;
        for m in a["messages"].as_array().cloned().unwrap_or_default() {
            let Some(att) = m["attachments"].as_array().and_then(|a| a.first().cloned()) else {
                continue;
            };
            let name = att["filename"].as_str().expect("filename");
            let marker = name
                .strip_prefix("document_{MD5:")
                .and_then(|r| r.strip_suffix("}.bin"))
                .expect("marker in filename");
            let path = att["storage_path"].as_str().expect("path");
            let size: usize = path
                .split('&')
                .find_map(|p| p.strip_prefix("size="))
                .and_then(|s| s.parse().ok())
                .expect("size");
            let (md5, len, header) = fetch(&http, &client.url("/attachments"), path).await;
            assert_eq!(md5, marker, "served bytes must hash to the marker");
            assert_eq!(header, marker);
            assert_eq!(len, size, "reused content keeps its real size");
            assert_eq!(m["headers"]["X-Pressure-Attachment-Md5"], marker);
            *seen.entry(md5).or_default() += 1;
        }
    }
    assert!(
        seen.values().any(|n| *n > 1),
        "some content must be reused: {seen:?}"
    );
    let s = stats(&http, &client).await;
    assert!(s["cache_hit_rate"].as_f64().expect("rate") > 0.5, "{s}");
    let info: Value = http
        .get(client.url("/cache-info"))
        .send()
        .await
        .expect("ci")
        .json()
        .await
        .expect("j");
    assert!(info["cached_items"].as_u64().expect("items") >= 1);
    assert_eq!(info["max_cache_mb"], 100.0);
}

#[tokio::test]
async fn bad_requests_get_4xx_json_and_count_as_errors() {
    let client = common::start_client(config(5)).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: &'static str| {
        http.post(client.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = post("/sync", "{not json").await.expect("send");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["ok"], false);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid sync body")),
        "{body}"
    );
    assert_eq!(post("/sync", "[1,2]").await.expect("send").status(), 400);
    assert_eq!(
        post("/attachments", "nope").await.expect("send").status(),
        400
    );
    let r = post("/attachments", r#"{"storage_path":"garbage"}"#)
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let r = post(
        "/attachments",
        r#"{"storage_path":"hash=0123456789abcdef0123456789abcdef"}"#,
    )
    .await
    .expect("send");
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("Attachment not found"))
    );
    assert_eq!(
        post("/attachments", r#"{"storage_path":"doc_id=1"}"#)
            .await
            .expect("s")
            .status(),
        404
    );
    let s = stats(&http, &client).await;
    assert_eq!(s["errors"], 6);
    assert_eq!(s["sync_calls"], 2);
}

#[tokio::test]
async fn start_and_stop_barriers_gate_generation() {
    let now = client_sim::unix_micros() as f64 / 1e6;
    let mut early = config(6);
    early.msg_rate_per_sync = 50.0;
    early.start_at = Some(now + 100.0);
    let client = common::start_client(early).await;
    let http = reqwest::Client::new();
    let a = sync(
        &http,
        &client.url("/sync"),
        json!({"delivery_report": [{"id": "x", "sent_ts": 1}]}),
    )
    .await;
    assert!(a.get("messages").is_none(), "{a}");
    assert_eq!(a["processed"], 1);
    assert_eq!(a["next_sync_after"].as_f64(), Some(now + 100.0));

    let mut late = config(7);
    late.msg_rate_per_sync = 50.0;
    late.stop_at = Some(now - 1.0);
    let client = common::start_client(late).await;
    let a = sync(&http, &client.url("/sync"), json!({"delivery_report": []})).await;
    assert!(
        a.get("messages").is_none() && a.get("next_sync_after").is_none(),
        "{a}"
    );
    let s = stats(&http, &client).await;
    assert_eq!(
        (s["sync_calls"].as_u64(), s["messages_generated"].as_u64()),
        (Some(1), Some(0))
    );
}

#[tokio::test]
async fn stop_ends_the_load_at_once_and_keeps_taking_reports() {
    let mut cfg = config(9);
    cfg.msg_rate_per_sync = 20.0;
    let client = common::start_client(cfg).await;
    let http = reqwest::Client::new();
    let a = sync(&http, &client.url("/sync"), json!({"delivery_report": []})).await;
    let first = a["messages"].as_array().map_or(0, Vec::len);
    assert!(first > 0, "{a}");
    let stop = |http: reqwest::Client| {
        let url = client.url("/stop");
        async move {
            let r = http.post(url).send().await.expect("stop");
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.expect("json")
        }
    };
    let at = stop(http.clone()).await["stopped_at"]
        .as_f64()
        .expect("instant");
    assert_eq!(
        stop(http.clone()).await["stopped_at"].as_f64(),
        Some(at),
        "a second stop keeps the first instant"
    );
    let id = a["messages"][0]["id"].as_str().expect("id").to_string();
    let b = sync(
        &http,
        &client.url("/sync"),
        json!({"delivery_report": [{"id": id, "sent_ts": 1}]}),
    )
    .await;
    assert!(
        b.get("messages").is_none(),
        "no new messages after /stop: {b}"
    );
    assert_eq!(b["processed"], 1, "reports are still taken");
    let s = stats(&http, &client).await;
    assert_eq!(s["messages_generated"].as_u64(), Some(first as u64));
}

#[tokio::test]
async fn dnd_answers_fall_in_the_configured_window() {
    let mut cfg = config(8);
    cfg.dnd_probability = 1.0;
    cfg.msg_rate_per_sync = 0.0;
    let client = common::start_client(cfg).await;
    let http = reqwest::Client::new();
    for _ in 0..20 {
        let now = client_sim::unix_micros() as f64 / 1e6;
        let a = sync(&http, &client.url("/sync"), json!({"delivery_report": []})).await;
        let until = a["next_sync_after"].as_f64().expect("dnd");
        assert!(
            until >= now + 30.0 - 1.0 && until <= now + 300.0 + 1.0,
            "{until} vs {now}"
        );
    }
    let s = stats(&http, &client).await;
    assert_eq!(s["dnd_periods"], 20);
    let r = http
        .post(client.url("/reset-stats"))
        .send()
        .await
        .expect("reset");
    assert_eq!(
        r.json::<Value>().await.expect("j")["message"],
        "Stats reset"
    );
    assert_eq!(stats(&http, &client).await["dnd_periods"], 0);
    let metrics = http
        .get(client.url("/metrics"))
        .send()
        .await
        .expect("m")
        .text()
        .await
        .expect("t");
    assert!(
        metrics.contains("client_sim_dnd_periods_total{tenant=\"tenant-standard\"} 20"),
        "{metrics}"
    );
    let health: Value = http
        .get(client.url("/health"))
        .send()
        .await
        .expect("h")
        .json()
        .await
        .expect("j");
    assert_eq!(
        health,
        json!({"ok": true, "client_id": "standard-1", "tenant_id": "tenant-standard"})
    );
}

#[tokio::test]
async fn mean_messages_per_sync_over_http_matches_the_rate() {
    let mut cfg = config(9);
    cfg.msg_rate_per_sync = 6.0;
    cfg.attachment_cache_hit_rate = 0.0;
    let client = common::start_client(cfg).await;
    let http = reqwest::Client::new();
    let mut total = 0u64;
    let syncs = 300;
    for _ in 0..syncs {
        let a = sync(&http, &client.url("/sync"), json!({"delivery_report": []})).await;
        total += a["messages"].as_array().map_or(0, |m| m.len() as u64);
    }
    // E[max(0, trunc(N(6, 3)))] is about 5.54; 5 standard errors of the mean is about 0.87.
    let mean = total as f64 / syncs as f64;
    assert!((mean - 5.54).abs() < 0.87, "mean {mean}");
    let s = stats(&http, &client).await;
    assert_eq!(
        s["msg_per_sync"].as_f64(),
        Some((mean * 100.0).round() / 100.0)
    );
}
