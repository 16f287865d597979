//! Attacks of issue 15 (items 1, 6, 9, 10) over real HTTP, SMTP and both stores: a tenant cannot
//! squat another tenant's message ids with refused messages (REST or inline sync), nor grow
//! `/metrics` with made-up tenant names; a tenant cannot lift its own suspension or extend its own
//! key, and a suspended tenant's token is refused; JSON bodies must say `application/json`; an
//! attachment's own credentials are not stored in clear; the proxy without an admin token listens
//! on loopback only and says so, and never shows the database password.

#![allow(clippy::unwrap_used)]

mod common;

use std::{path::Path, process::Stdio, time::Duration};

use common::{
    Api, Db, database, files::Files, process, records, sink::Sink, start, tenant_app::TenantApp,
    wait_for,
};
use mailproxy::config::Hosts;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

/// A test config whose loopback servers are reachable whatever the address guard refuses.
fn config(url: &str) -> mailproxy::config::Config {
    let mut c = common::config(url);
    c.attachment_allowed_hosts = Hosts(vec!["127.0.0.1".into()]);
    c
}

/// A new API key for an existing tenant.
async fn key(admin: &Api, tenant: &str) -> Api {
    let (s, b) = admin
        .post(&format!("/tenant/{tenant}/api-key"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    admin.with_token(b["api_key"].as_str())
}

fn find<'a>(records: &'a [Value], id: &str) -> Option<&'a Value> {
    records.iter().find(|m| m["id"] == id)
}

/// The `gmp_messages_rejected_total` lines of `/metrics`.
async fn rejected_series(api: &Api) -> Vec<String> {
    let text = reqwest::get(format!("{}/metrics", api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("gmp_messages_rejected_total"))
        .map(str::to_string)
        .collect()
}

/// Submits `id` as the tenant `api` belongs to and waits until the sink has it.
async fn b_sends_its_own(api: &Api, sink: &Sink, id: &str) {
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"messages": [{"id": id, "to": ["billing@b.io"], "subject": format!("Invoice {id}")}]}),
        )
        .await;
    assert_eq!(
        (s, b["queued"].clone()),
        (StatusCode::OK, json!(1)),
        "tb's own {id} must be queued: {b}"
    );
    let delivered = wait_for(10, || async {
        sink.messages()
            .iter()
            .any(|m| common::sink::header(&m.data, "X-Genro-Mail-ID").as_deref() == Some(id))
    })
    .await;
    assert!(delivered, "tb's {id} was never sent");
}

async fn rejections_touch_only_the_callers_tenant(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let server = start(config(&tdb.url)).await;
    let admin = Api::new(&server);
    admin.setup_tenant("ta", sink.port).await;
    admin.setup_tenant("tb", sink.port).await;
    let (ta, tb) = (key(&admin, "ta").await, key(&admin, "tb").await);
    // tenant A files a broken message (no subject) under B's name and B's next invoice id.
    let (s, b) = ta
        .post(
            "/commands/add-messages",
            json!({"messages": [{"id": "INV-42", "tenant_id": "tb", "to": ["a@b.io"]}]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let reason = b["detail"]["rejected"][0]["reason"].clone();
    // The same through the one-message route (where the message's tenant is the request's).
    let (s, _) = ta
        .post(
            "/messages/add",
            json!({"id": "INV-43", "tenant_id": "tb", "to": ["a@b.io"]}),
        )
        .await;
    assert!(s.is_client_error(), "{s}");
    // The admin names a tenant that does not exist: refused, nothing recorded anywhere.
    let (s, _) = admin
        .post(
            "/commands/add-messages",
            json!({"messages": [{"id": "x1", "tenant_id": "zz-nobody", "to": ["a@b.io"]}]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let ta_records = records(&admin, "ta").await;
    assert!(
        find(&records(&admin, "tb").await, "INV-42").is_none(),
        "A's refused message must not touch B"
    );
    assert_eq!(
        find(&ta_records, "INV-42").map(|m| m["error"].clone()),
        Some(json!("tenant mismatch")),
        "filed under A, the caller: {ta_records:?}"
    );
    b_sends_its_own(&tb, &sink, "INV-42").await;
    b_sends_its_own(&tb, &sink, "INV-43").await;
    assert_eq!(reason, "tenant mismatch", "A is told why");
    let series = rejected_series(&admin).await;
    assert!(
        series
            .iter()
            .all(|l| !l.contains("zz-nobody") && !l.contains("tenant_id=\"tb\"")),
        "{series:?}"
    );
    assert!(
        series
            .iter()
            .any(|l| l.contains("tenant_id=\"ta\"") && l.ends_with(" 1")),
        "A's refusal is counted under A: {series:?}"
    );
    server.stop().await;
}

async fn inline_rejections_touch_only_the_syncing_tenant(db: Db) {
    let (sink, tdb, app) = (
        Sink::start().await,
        database(db).await,
        TenantApp::start().await,
    );
    app.script(|body| {
        let first = body["delivery_report"].as_array().is_none_or(Vec::is_empty);
        let messages = if first {
            json!([{"id": "INV-7", "tenant_id": "tb", "to": ["a@b.io"]}])
        } else {
            json!([])
        };
        (
            StatusCode::OK,
            json!({"ok": true, "messages": messages}).to_string(),
        )
    });
    let server = start(config(&tdb.url)).await;
    let admin = Api::new(&server);
    admin.setup_tenant("tb", sink.port).await;
    let tb = key(&admin, "tb").await;
    admin.setup_tenant("ta", sink.port).await;
    let (s, b) = admin
        .post(
            "/tenant",
            json!({"id": "ta", "client_base_url": app.url, "client_sync_path": "/sync"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let filed = wait_for(10, || async {
        find(&records(&admin, "ta").await, "INV-7").is_some()
            || find(&records(&admin, "tb").await, "INV-7").is_some()
    })
    .await;
    assert!(filed, "the inline message was never taken in");
    assert!(
        find(&records(&admin, "tb").await, "INV-7").is_none(),
        "A's inline message must not touch B"
    );
    b_sends_its_own(&tb, &sink, "INV-7").await;
    server.stop().await;
}

async fn a_tenant_cannot_lift_its_own_suspension(db: Db) {
    let tdb = database(db).await;
    let server = start(config(&tdb.url)).await;
    let admin = Api::new(&server);
    let (s, b) = admin.post("/tenant", json!({"id": "t1"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let t1 = admin.with_token(b["api_key"].as_str());
    let put = |api: &Api, body: Value| {
        let api = api.clone();
        async move { api.call(Method::PUT, "/tenant/t1", Some(body)).await }
    };
    // Its own name is the tenant's to change; its key's expiry and its activity are not.
    assert_eq!(put(&t1, json!({"name": "T one"})).await.0, StatusCode::OK);
    let (s, b) = put(&t1, json!({"api_key_expires_at": 4_102_444_800_i64})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("api_key_expires_at"));
    let (s, _) = t1
        .post(
            "/tenants/update",
            json!({"tenant_id": "t1", "active": false}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The admin suspends it; its token is refused everywhere, a lift included.
    assert_eq!(
        put(&admin, json!({"active": false})).await.0,
        StatusCode::OK
    );
    let (s, b) = t1.get("/tenant/t1").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("inactive"), "{b}");
    assert_eq!(
        put(&t1, json!({"active": true})).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, _) = t1
        .post(
            "/tenants/update",
            json!({"tenant_id": "t1", "active": true}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t1
        .post(
            "/commands/add-messages",
            json!({"messages": [{"id": "m", "to": ["a@b.io"], "subject": "s"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, tenant) = admin.get("/tenant/t1").await;
    assert_eq!(
        (tenant["active"].clone(), tenant.get("api_key_expires_at")),
        (json!(false), None),
        "{tenant}"
    );
    // Reactivated by the admin, the same token works again.
    assert_eq!(put(&admin, json!({"active": true})).await.0, StatusCode::OK);
    assert_eq!(t1.get("/tenant/t1").await.0, StatusCode::OK);
    // With a token configured, /health carries no warning.
    assert_eq!(admin.get("/health").await.1, json!({"status": "ok"}));
    server.stop().await;
}

/// One POST with a raw body and the given `Content-Type` (none when `None`), no token.
async fn post_as(
    base: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .body(body.to_string());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn json_bodies_must_say_so(db: Db) {
    let tdb = database(db).await;
    let mut c = config(&tdb.url);
    // The cross-site attack needs no token at all: a replica run without one.
    c.api_token = None;
    c.scheduler_active = false;
    let server = start(c).await;
    let api = Api::new(&server).with_token(None);
    let tenant = r#"{"id": "planted"}"#;
    for ct in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let (s, b) = post_as(&api.base, "/tenant", ct, tenant).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}: {b}");
        assert!(
            b["detail"].as_str().unwrap().contains("application/json"),
            "{b}"
        );
    }
    let (_, list) = api.get("/tenants/list").await;
    assert_eq!(list, json!([]), "no tenant was created");
    let (s, b) = post_as(
        &api.base,
        "/tenant",
        Some("application/json; charset=utf-8"),
        tenant,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // A POST without a body needs no Content-Type (`{}`).
    let (s, b) = post_as(&api.base, "/commands/run-now", None, "").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, health) = api.get("/health").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["admin_token_required"], false, "{health}");
    assert!(
        health["warning"]
            .as_str()
            .unwrap()
            .contains("GMP_API_TOKEN")
    );
    server.stop().await;
}

async fn attachment_credentials_are_not_stored_in_clear(db: Db) {
    let (sink, files, tdb) = (
        Sink::start().await,
        Files::start().await,
        database(db).await,
    );
    files.put("doc-9", &b"%PDF-1.4 invoice"[..]);
    let server = start(config(&tdb.url)).await;
    let api = Api::new(&server);
    api.setup_tenant("tf", sink.port).await;
    let (s, b) = api
        .post(
            "/tenant",
            json!({"id": "tf", "client_base_url": files.base, "client_attachment_path": "/attachments"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let secret = "att-secret-7f3a9c";
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": "tf", "messages": [{"id": "m-auth", "to": ["r@x.io"], "subject": "s",
                "attachments": [{"filename": "doc.pdf", "storage_path": "doc-9", "fetch_mode": "endpoint",
                    "auth": {"method": "bearer", "token": secret}}]}]}),
        )
        .await;
    assert_eq!((s, b["queued"].clone()), (StatusCode::OK, json!(1)), "{b}");
    let sent = wait_for(10, || async {
        find(&records(&api, "tf").await, "m-auth").is_some_and(|m| m["status"] == "sent")
    })
    .await;
    assert!(sent, "{:?}", records(&api, "tf").await);
    // The credentials still reach the attachment server...
    assert_eq!(
        files.calls_for("doc-9")[0].authorization.as_deref(),
        Some(format!("Bearer {secret}").as_str())
    );
    // ...but the stored row does not hold them.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&tdb.url).await.unwrap();
    let payload: String = sqlx::query_scalar("SELECT payload FROM messages WHERE id = 'm-auth'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!payload.contains(secret), "{payload}");
    assert!(payload.contains("bearer"), "{payload}");
    conn.close().await.unwrap();
    server.stop().await;
}

on_both_stores!(
    rejections_touch_only_the_callers_tenant,
    inline_rejections_touch_only_the_syncing_tenant,
    a_tenant_cannot_lift_its_own_suspension,
    json_bodies_must_say_so,
    attachment_credentials_are_not_stored_in_clear,
);

/// The binary with a SQLite database in `dir`, no admin token, and `env`.
fn proxy_without_token(dir: &Path, env: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mailproxy"));
    for k in [
        "GMP_API_TOKEN",
        "GMP_HOST",
        "GMP_ALLOW_REMOTE_WITHOUT_TOKEN",
        "RUST_LOG",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("GMP_DB_PATH", dir.join("mail.db"))
        .env("MAIL_PROXY_ENCRYPTION_KEY", process::KEY)
        .env("GMP_LOG_LEVEL", "WARNING")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// True when something accepts TCP connections on `ip:port`.
async fn listening(ip: &str, port: u16) -> bool {
    tokio::net::TcpStream::connect((ip, port)).await.is_ok()
}

/// Runs the binary until `/health` answers on 127.0.0.1; its health answer and whether
/// 127.0.0.2 (another loopback address, which only a wildcard listener answers) reaches it.
async fn serve_without_token(env: &[(&str, &str)]) -> (Value, bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = process::free_port();
    let port_s = port.to_string();
    let mut all = vec![("GMP_PORT", port_s.as_str())];
    all.extend_from_slice(env);
    let mut child = proxy_without_token(dir.path(), &all).spawn().unwrap();
    let url = format!("http://127.0.0.1:{port}/health");
    let up = wait_for(30, || async {
        reqwest::get(&url)
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(up, "the proxy did not start");
    let health: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    let wildcard = listening("127.0.0.2", port).await;
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    (
        health,
        wildcard,
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_proxy_listens_on_loopback_only() {
    // No GMP_HOST: loopback only, and it says so.
    let (health, wildcard, log) = serve_without_token(&[]).await;
    assert!(
        !wildcard,
        "without a token the proxy must not listen beyond 127.0.0.1"
    );
    assert!(health["warning"].is_string(), "{health}");
    assert!(log.contains("NO ADMIN TOKEN"), "{log}");
    // Asked to listen everywhere without a token: refused at start, saying what to set.
    let dir = tempfile::tempdir().unwrap();
    let port = process::free_port().to_string();
    let child = proxy_without_token(dir.path(), &[("GMP_HOST", "0.0.0.0"), ("GMP_PORT", &port)])
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the proxy refuses to start instead of serving")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("GMP_API_TOKEN") && text.contains("GMP_ALLOW_REMOTE_WITHOUT_TOKEN"),
        "{text}"
    );
    // Told explicitly, it serves every interface, still loudly.
    let (health, wildcard, log) = serve_without_token(&[
        ("GMP_HOST", "0.0.0.0"),
        ("GMP_ALLOW_REMOTE_WITHOUT_TOKEN", "true"),
    ])
    .await;
    assert!(wildcard && health["warning"].is_string(), "{health}");
    assert!(log.contains("NO ADMIN TOKEN"), "{log}");
}

#[tokio::test]
async fn the_database_password_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let password = "hunter2-db-secret";
    let run = |url: String, args: &'static [&'static str]| {
        let mut cmd = proxy_without_token(dir.path(), &[]);
        cmd.env("GMP_DB_PATH", url).args(args);
        async move {
            let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
                .await
                .expect("exits")
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr)
        }
    };
    let help = run(
        format!("postgres://app:{password}@127.0.0.1:1/db"),
        &["--help"],
    )
    .await;
    assert!(help.contains("GMP_DB_PATH"), "{help}");
    assert!(!help.contains(password), "{help}");
    let bad_scheme = run(
        format!("mysql://app:{password}@127.0.0.1:1/db"),
        &["validate"],
    )
    .await;
    assert!(bad_scheme.contains("GMP_DB_PATH"), "{bad_scheme}");
    assert!(!bad_scheme.contains(password), "{bad_scheme}");
    let unreachable = run(
        format!("postgres://app:{password}@127.0.0.1:1/db"),
        &["validate"],
    )
    .await;
    assert!(!unreachable.contains(password), "{unreachable}");
}
