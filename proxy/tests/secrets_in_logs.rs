//! Secrets never reach the logs (issue 10, PROTOCOL.md §7.2 and §3.5): the real binary runs at
//! `GMP_LOG_LEVEL=DEBUG` while a tenant with a bearer token, an SMTP account with a password and
//! an attachment with its own credentials go through intake, a failing and a successful sync, a
//! failing and a successful attachment fetch and an authenticated SMTP delivery; then the
//! captured output must contain none of the secrets (nor their base64 forms), and no API
//! response may carry them. The failed sync is a warning with the tenant and the cause.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use common::{
    Db, database, files::Files, process::Proxy, sink::Sink, tenant_app::TenantApp, wait_for,
};
use reqwest::StatusCode;
use serde_json::json;

const SYNC_TOKEN: &str = "sync-bearer-S3CRET-1";
const SMTP_PASSWORD: &str = "smtp-password-S3CRET-2";
const ATTACHMENT_TOKEN: &str = "attachment-token-S3CRET-3";
const WRONG_TOKEN: &str = "presented-token-S3CRET-4";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_debug_logs() {
    let (sink, tdb) = (Sink::start().await, database(Db::Postgres).await);
    let (app, files) = (TenantApp::start().await, Files::start().await);
    files.put("doc", b"%PDF-1.4 secret test".to_vec());
    // The first sync call fails (500): the failure path logs too.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    app.script(move |_| match seen.fetch_add(1, Ordering::SeqCst) {
        0 => (StatusCode::INTERNAL_SERVER_ERROR, "boom".into()),
        _ => (StatusCode::OK, r#"{"ok":true}"#.into()),
    });
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(
        &tdb.url,
        &[
            ("GMP_LOG_LEVEL", "DEBUG"),
            ("GMP_SYNC_INTERVAL", "1"),
            ("GMP_RETRY_DELAYS", "1"),
        ],
        dir.path(),
    )
    .await;
    let api = proxy.api.clone();
    let (s, created) = api
        .post(
            "/tenant",
            json!({"id": "sec", "client_base_url": app.url, "client_sync_path": "/sync",
                "client_attachment_path": "/attachments",
                "client_auth": {"method": "bearer", "token": SYNC_TOKEN}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{created}");
    let api_key = created["api_key"].as_str().unwrap().to_string();
    let tenant = api.with_token(Some(&api_key));
    let (s, b) = tenant
        .post(
            "/account",
            json!({"id": "smtp1", "host": "127.0.0.1", "port": sink.port,
            "user": "mailer", "password": SMTP_PASSWORD, "use_tls": false,
            "sender_email": "noreply@sec.test"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // A wrong token is refused, and not echoed anywhere.
    let (s, _) = api.with_token(Some(WRONG_TOKEN)).get("/status").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // One attachment that fails (404 from the files server), one that is fetched with its auth.
    let att = |path: &str| {
        json!([{"filename": "doc.pdf", "fetch_mode": "http_url",
            "storage_path": format!("{}/files/{path}", files.base),
            "auth": {"method": "bearer", "token": ATTACHMENT_TOKEN}}])
    };
    let (s, b) = tenant
        .post("/commands/add-messages", json!({"messages": [
            {"id": "ok", "to": ["r@x.io"], "subject": "s", "attachments": att("doc")},
            {"id": "missing", "to": ["r@x.io"], "subject": "s", "attachments": att("status-404")}]}))
        .await;
    assert_eq!((s, b["queued"].clone()), (StatusCode::OK, json!(2)), "{b}");
    // Delivered, and both outcomes reported to the tenant after its first sync failed.
    let reported = wait_for(30, || async {
        // Reports are acknowledged by the second call (the first answered 500).
        let r: Vec<_> = app
            .calls()
            .iter()
            .skip(1)
            .flat_map(|c| c.reports())
            .collect();
        r.iter()
            .any(|e| e["id"] == "ok" && e["sent_ts"].is_number())
            && r.iter()
                .any(|e| e["id"] == "missing" && e["error"].is_string())
    })
    .await;
    assert!(reported, "reports: {:?}", app.reports());
    assert_eq!(sink.count(), 1);
    assert!(calls.load(Ordering::SeqCst) >= 2);
    assert_eq!(
        app.calls()[0].auth.as_deref(),
        Some(format!("Bearer {SYNC_TOKEN}").as_str()),
        "the secrets were really used"
    );
    assert_eq!(
        files.calls_for("doc")[0].authorization.as_deref(),
        Some(format!("Bearer {ATTACHMENT_TOKEN}").as_str())
    );
    // API answers never carry them either.
    let mut answers = String::new();
    for path in [
        "/tenant/sec",
        "/tenants/list",
        "/accounts/list?tenant_id=sec",
        "/messages/list?tenant_id=sec&include_history=true",
        "/tenants/sync-status",
    ] {
        answers.push_str(&api.get(path).await.1.to_string());
    }
    let (elapsed, status) = proxy.terminate().await;
    let log = std::fs::read_to_string(dir.path().join(format!(
        "proxy-{}.log",
        api.base.rsplit(':').next().unwrap()
    )))
    .unwrap();
    println!(
        "log: {} lines, {} bytes; exited {status} {elapsed:?} after SIGTERM",
        log.lines().count(),
        log.len()
    );
    assert!(
        log.contains("DEBUG"),
        "the log is at debug level: {}",
        &log[..log.len().min(2000)]
    );
    // The failed sync call is a warning that names the tenant and the cause; the success after
    // it says so.
    let failed = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("Sync call failed"))
        .unwrap_or_else(|| {
            panic!(
                "no warning about the failed sync: {}",
                &log[..log.len().min(3000)]
            )
        });
    assert!(
        failed.contains("sec") && failed.contains("http_error") && failed.contains("HTTP 500"),
        "{failed}"
    );
    assert!(log.contains("Sync calls succeed again"), "no recovery line");
    let secrets = [
        SYNC_TOKEN.to_string(),
        SMTP_PASSWORD.to_string(),
        ATTACHMENT_TOKEN.to_string(),
        WRONG_TOKEN.to_string(),
        api_key.clone(),
        "admin-token".to_string(),
        common::process::KEY.to_string(),
        STANDARD.encode(format!("\0mailer\0{SMTP_PASSWORD}")),
        STANDARD.encode(SMTP_PASSWORD),
    ];
    for s in &secrets {
        let at = log.find(s.as_str());
        assert!(
            at.is_none(),
            "secret {s:?} in the log: {}",
            &log[at.unwrap().saturating_sub(300)..(at.unwrap() + 100).min(log.len())]
        );
        assert!(
            !answers.contains(s.as_str()),
            "secret {s:?} in an API answer"
        );
    }
}
