//! Hostile and oversized input (issue 10): every limit of a message (recipients, custom headers,
//! header names and values, subject) is a rejection with its own reason, stored as an error
//! report for the tenant, while the valid messages of the same request are queued; and
//! attachment URLs reach only the hosts the proxy's operator allowed (by default the tenant's
//! own host), refused before any connection otherwise, redirect hops included.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Api, Db, database, files::Files, records, sink::Sink, start, wait_for};
use mailproxy::config::Hosts;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

fn msg(id: &str) -> Value {
    json!({"id": id, "to": ["r@x.io"], "subject": "s"})
}

fn by_id(records: &[Value], id: &str) -> Value {
    records.iter().find(|m| m["id"] == id).cloned().unwrap()
}

async fn limits_are_rejections_with_reasons(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let mut c = common::config(&tdb.url);
    c.max_recipients = 5;
    let server = start(c).await;
    let api = Api::new(&server);
    api.setup_tenant("lim", sink.port).await;
    let rcpts: Vec<String> = (0..6).map(|i| format!("r{i}@x.io")).collect();
    let headers: Map<String, Value> = (0..51).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    let mut cases = vec![
        (
            json!({"id": "rcpt", "to": rcpts[..3], "cc": rcpts[3..], "subject": "s"}),
            "too many recipients",
        ),
        (
            json!({"id": "subj", "to": ["r@x.io"], "subject": "S".repeat(999)}),
            "subject too long",
        ),
        (
            json!({"id": "hcount", "to": ["r@x.io"], "subject": "s", "headers": headers}),
            "too many headers",
        ),
        (
            json!({"id": "hname", "to": ["r@x.io"], "subject": "s", "headers": {"Bad Name\r\nBcc": "x"}}),
            "invalid header name",
        ),
        (
            json!({"id": "hvalue", "to": ["r@x.io"], "subject": "s", "headers": {"X-Long": "v".repeat(999)}}),
            "header value too long",
        ),
    ];
    cases.push((msg("fine"), ""));
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": "lim", "messages": cases.iter().map(|c| c.0.clone()).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["queued"], 1, "{b}");
    let got: Vec<(String, String)> = b["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().into(),
                r["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = cases[..5]
        .iter()
        .map(|(m, r)| (m["id"].as_str().unwrap().into(), r.to_string()))
        .collect();
    assert_eq!(got, want);
    // One message alone: 400 with the reason.
    let (s, b) = api
        .post(
            "/messages/add",
            json!({"tenant_id": "lim", "id": "one", "to": rcpts, "subject": "s"}),
        )
        .await;
    assert_eq!(
        (s, b["detail"].clone()),
        (StatusCode::BAD_REQUEST, json!("too many recipients"))
    );
    // The valid one is delivered; the refused ones are stored as errors, so the tenant is told.
    assert!(wait_for(10, || async { sink.count() == 1 }).await);
    let r = records(&api, "lim").await;
    for (m, reason) in &cases[..5] {
        let rec = by_id(&r, m["id"].as_str().unwrap());
        assert_eq!(
            (rec["status"].as_str(), rec["error"].as_str()),
            (Some("error"), Some(*reason))
        );
    }
    server.stop().await;
}

/// Registers `tenant` with `files` as its application and queues one `http_url` attachment.
async fn fetch_from(api: &Api, tenant: &str, files: &Files, url: &str) {
    let (s, b) = api
        .post(
            "/tenant",
            json!({"id": tenant, "client_base_url": files.base}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let att = json!([{"filename": "doc.pdf", "storage_path": url, "fetch_mode": "http_url"}]);
    let mut m = msg("m1");
    m["attachments"] = att;
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": tenant, "messages": [m]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

async fn settled(api: &Api, tenant: &str) -> Value {
    let done = wait_for(15, || async {
        let r = records(api, tenant).await;
        r.len() == 1 && (r[0]["status"] == "sent" || r[0]["status"] == "error")
    })
    .await;
    let r = records(api, tenant).await;
    assert!(done, "{r:#?}");
    r[0].clone()
}

async fn http_url_reaches_only_allowed_hosts(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let files = Files::start().await;
    files.put("doc", b"%PDF-1.4 allowed".to_vec());
    // The same server named by another host name than the tenant's `client_base_url`.
    let port = files.base.rsplit(':').next().unwrap();
    let foreign = format!("http://localhost:{port}/files/doc");
    let mut c = common::config(&tdb.url);
    c.max_retries = 0;
    let server = start(c).await;
    let api = Api::new(&server);
    api.setup_tenant("deny", sink.port).await;
    fetch_from(&api, "deny", &files, &foreign).await;
    let rec = settled(&api, "deny").await;
    assert_eq!(
        rec["error"], "Attachment fetch failed for doc.pdf: Host not allowed: localhost",
        "{rec:#}"
    );
    assert!(
        files.calls_for("doc").is_empty(),
        "refused before any request"
    );
    // The tenant's own host is allowed by default.
    api.setup_tenant("own", sink.port).await;
    fetch_from(&api, "own", &files, &format!("{}/files/doc", files.base)).await;
    assert_eq!(settled(&api, "own").await["status"], "sent");
    server.stop().await;

    // An operator's allow-list opens other hosts.
    let tdb = database(db).await;
    let mut c = common::config(&tdb.url);
    c.attachment_allowed_hosts = Hosts(vec!["localhost".into()]);
    let server = start(c).await;
    let api = Api::new(&server);
    api.setup_tenant("allow", sink.port).await;
    fetch_from(&api, "allow", &files, &foreign).await;
    assert_eq!(settled(&api, "allow").await["status"], "sent");
    assert_eq!(files.calls_for("doc").len(), 2);
    server.stop().await;
}

async fn redirects_are_checked_hop_by_hop(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let files = Files::start().await;
    files.put("doc", b"%PDF-1.4 moved".to_vec());
    let port = files.base.rsplit(':').next().unwrap();
    // From the tenant's own host to another name of the same server: the hop is refused.
    files.redirect("away", &format!("http://localhost:{port}/files/doc"));
    files.redirect("moved", "/files/doc");
    let mut c = common::config(&tdb.url);
    c.max_retries = 0;
    let server = start(c).await;
    let api = Api::new(&server);
    api.setup_tenant("hop", sink.port).await;
    fetch_from(&api, "hop", &files, &format!("{}/files/away", files.base)).await;
    let rec = settled(&api, "hop").await;
    assert_eq!(
        rec["error"], "Attachment fetch failed for doc.pdf: Host not allowed: localhost",
        "{rec:#}"
    );
    assert_eq!(files.calls_for("away").len(), 1);
    assert!(
        files.calls_for("doc").is_empty(),
        "the hop was not followed"
    );
    // A redirect within the tenant's host is followed.
    api.setup_tenant("same", sink.port).await;
    fetch_from(&api, "same", &files, &format!("{}/files/moved", files.base)).await;
    assert_eq!(settled(&api, "same").await["status"], "sent");
    assert_eq!(files.calls_for("doc").len(), 1);
    server.stop().await;
}

on_both_stores!(
    limits_are_rejections_with_reasons,
    http_url_reaches_only_allowed_hosts,
    redirects_are_checked_hop_by_hop
);
