//! Message listings are paged (`limit`, default 1,000; `offset`) and say when a page is not the
//! last: the `x-next-offset` header in both dialects, and `next_offset` in the classic body.
//! Upstream returns every row; a client that reads only the first page now knows it. One message
//! is read by its id alone.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Api, Db, database, sink::Sink, start, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// GET `path`: status, the `x-next-offset` header and the body.
async fn page(api: &Api, path: &str) -> (StatusCode, Option<String>, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", api.base))
        .header("X-API-Token", api.token.clone().unwrap())
        .send()
        .await
        .unwrap();
    let next = resp
        .headers()
        .get("x-next-offset")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status(), next, resp.json().await.unwrap())
}

async fn a_listing_says_when_more_rows_follow(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let server = start(common::config(&tdb.url)).await;
    let api = Api::new(&server);
    api.setup_tenant("pages", sink.port).await;
    let messages: Vec<Value> = (1..=5)
        .map(|i| json!({"id": format!("P-{i}"), "to": ["r@test.com"], "subject": "s", "body": "b"}))
        .collect();
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": "pages", "messages": messages}),
        )
        .await;
    assert_eq!((s, b["queued"].clone()), (StatusCode::OK, json!(5)), "{b}");
    assert!(wait_for(10, || async { sink.count() == 5 }).await);

    let list = "/messages/list?tenant_id=pages&include_history=true";
    let (s, next, body) = page(&api, &format!("{list}&limit=2")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert_eq!(
        next.as_deref(),
        Some("2"),
        "more rows follow the first page"
    );
    let (_, next, body) = page(&api, &format!("{list}&limit=2&offset=2")).await;
    assert_eq!(
        (body.as_array().unwrap().len(), next.as_deref()),
        (2, Some("4"))
    );
    let (_, next, body) = page(&api, &format!("{list}&limit=2&offset=4")).await;
    assert_eq!(
        (body.as_array().unwrap().len(), next),
        (1, None),
        "the last page"
    );
    let (_, next, body) = page(&api, list).await;
    assert_eq!(
        (body.as_array().unwrap().len(), next),
        (5, None),
        "all within the default"
    );
    // Each record carries its own history (read for the whole page at once).
    let mut event_ids = std::collections::BTreeSet::new();
    for rec in body.as_array().unwrap() {
        let history = rec["history"].as_array().unwrap();
        assert!(history.iter().any(|e| e["event_type"] == "sent"), "{rec}");
        for e in history {
            assert!(
                event_ids.insert(e["event_id"].to_string()),
                "an event twice: {body}"
            );
        }
    }

    let classic = "/messages?tenant_id=pages&include_history=true";
    let (_, next, body) = page(&api, &format!("{classic}&limit=3")).await;
    assert_eq!(body["messages"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(
        (next.as_deref(), &body["next_offset"]),
        (Some("3"), &json!(3))
    );
    let (_, next, body) = page(&api, &format!("{classic}&limit=3&offset=3")).await;
    assert_eq!(body["messages"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!((next, body.get("next_offset")), (None, None));

    // One message by its id, with its history; an unknown id is a 404.
    let (s, one) = api
        .get("/messages/get?tenant_id=pages&message_id=P-3&include_history=true")
        .await;
    assert_eq!(
        (s, &one["id"], &one["status"]),
        (StatusCode::OK, &json!("P-3"), &json!("sent")),
        "{one}"
    );
    assert!(
        one["history"].as_array().is_some_and(|h| !h.is_empty()),
        "{one}"
    );
    let (s, _) = api
        .get("/messages/get?tenant_id=pages&message_id=P-9")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

on_both_stores!(a_listing_says_when_more_rows_follow);
