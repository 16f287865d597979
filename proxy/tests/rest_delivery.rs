//! Messages added through each REST dialect reach a real SMTP server with the right envelope,
//! headers and body, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

use common::{
    Api, Db, database,
    sink::{Sink, header},
    start, wait_for,
};
use reqwest::StatusCode;
use serde_json::json;

async fn classic_dialect_delivers(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let server = start(common::config(&tdb.url)).await;
    let api = Api::new(&server);
    api.setup_tenant("acme", sink.port).await;
    let (s, b) = api
        .post("/commands/add-messages", json!({"tenant_id": "acme", "messages": [
            {"id": "MSG-001", "from": "Sender <sender@test.com>", "to": ["recipient1@test.com"], "subject": "Test Subject 1", "body": "Body one"},
            {"id": "MSG-002", "to": "recipient2@test.com, r3@test.com", "cc": ["cc@test.com"], "bcc": "hidden@test.com", "subject": "Test Subject 2", "body": "<b>two</b>", "content_type": "html", "priority": "immediate"},
            {"id": "MSG-003", "sender": "alias@test.com", "recipient_email": "recipient3@test.com", "subject": "Test Subject 3", "body_text": "plain", "body_html": "<p>html</p>", "headers": {"X-Custom": "yes"}}
        ]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["queued"], 3);
    assert!(
        wait_for(10, || async { sink.count() == 3 }).await,
        "3 messages delivered, got {}",
        sink.count()
    );
    let msgs = sink.messages();
    let by_id = |id: &str| {
        msgs.iter()
            .find(|m| header(&m.data, "X-Genro-Mail-ID").as_deref() == Some(id))
            .unwrap()
            .clone()
    };
    let m1 = by_id("MSG-001");
    assert_eq!(m1.from, "sender@test.com");
    assert_eq!(m1.rcpts, ["recipient1@test.com"]);
    assert_eq!(
        header(&m1.data, "Subject").as_deref(),
        Some("Test Subject 1")
    );
    assert!(m1.data.contains("Body one"));
    assert!(
        header(&m1.data, "Message-ID")
            .unwrap()
            .ends_with("@test.com>")
    );
    assert!(header(&m1.data, "Date").is_some());
    let m2 = by_id("MSG-002");
    assert_eq!(
        m2.from, "noreply@acme.test",
        "account sender_email is the default From"
    );
    assert_eq!(
        m2.rcpts,
        [
            "recipient2@test.com",
            "r3@test.com",
            "cc@test.com",
            "hidden@test.com"
        ]
    );
    assert!(header(&m2.data, "Bcc").is_none());
    assert!(m2.data.contains("text/html"));
    let m3 = by_id("MSG-003");
    assert_eq!(m3.from, "alias@test.com");
    assert!(m3.data.contains("multipart/alternative"));
    assert_eq!(header(&m3.data, "X-Custom").as_deref(), Some("yes"));
    // The records turn to `sent` once the outcomes are written.
    assert!(
        wait_for(5, || async {
            let (_, b) = api.get("/messages?tenant_id=acme").await;
            b["messages"].as_array().is_some_and(|l| {
                l.len() == 3
                    && l.iter()
                        .all(|m| m["status"] == "sent" && m["sent_ts"].is_number())
            })
        })
        .await
    );
    server.stop().await;
}

async fn generated_dialect_delivers(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let server = start(common::config(&tdb.url)).await;
    let api = Api::new(&server);
    let (s, t) = api
        .post("/tenants/add", json!({"id": "gen", "name": "Gen"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["api_key"].as_str().map(str::len), Some(43));
    let (s, a) = api.post("/accounts/add", json!({"id": "a1", "tenant_id": "gen", "host": "127.0.0.1", "port": sink.port, "password": "secret", "sender_email": "x@gen.io"})).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["has_password"], true);
    assert!(
        a.get("password").is_none() && !a.to_string().contains("secret"),
        "password never returned: {a}"
    );
    let (s, b) = api.post("/messages/add_batch", json!({"tenant_id": "gen", "messages": [{"id": "g1", "to": ["t@x.io"], "subject": "S", "body": "B"}]})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = api.post("/messages/add", json!({"tenant_id": "gen", "id": "g2", "from_addr": "f@gen.io", "to": ["t@x.io"], "subject": "S2"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(wait_for(10, || async { sink.count() == 2 }).await);
    assert!(sink.messages().iter().any(|m| m.from == "f@gen.io"));
    let (s, list) = api
        .get("/messages/list?tenant_id=gen&include_history=true")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        wait_for(5, || async {
            let (_, l) = api
                .get("/messages/list?tenant_id=gen&include_history=true")
                .await;
            l.as_array().is_some_and(|l| {
                l.iter()
                    .all(|m| m["status"] == "sent" && m["history"][0]["event_type"] == "sent")
            })
        })
        .await,
        "{list}"
    );
    server.stop().await;
}

on_both_stores!(classic_dialect_delivers, generated_dialect_delivers);
