//! Dispatch rules over real SMTP: rate limits defer to the window boundary, temporary failures
//! are retried, permanent ones become errors, partial refusals are `sent` with the refused
//! recipients, and the metrics count each outcome.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Api, Db, database, records, sink::Sink, start, wait_for};
use serde_json::{Value, json};

fn msg(id: &str, to: &str) -> Value {
    json!({"id": id, "to": [to], "subject": format!("subject {id}"), "body": "b"})
}

async fn rate_limits_defer_to_the_window_boundary(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let server = start(common::config(&tdb.url)).await;
    let api = Api::new(&server);
    api.setup_tenant("rl", sink.port).await;
    api.post(
        "/account",
        json!({"id": "smtp1", "tenant_id": "rl", "limit_per_minute": 2}),
    )
    .await;
    let msgs: Vec<Value> = (0..5).map(|i| msg(&format!("m{i}"), "a@b.io")).collect();
    api.post(
        "/commands/add-messages",
        json!({"tenant_id": "rl", "messages": msgs}),
    )
    .await;
    assert!(
        wait_for(10, || async {
            let r = records(&api, "rl").await;
            r.iter().filter(|m| m["status"] == "deferred").count() == 3
                && r.iter().filter(|m| m["status"] == "sent").count() == 2
        })
        .await,
        "{:?}",
        records(&api, "rl").await
    );
    assert_eq!(sink.count(), 2);
    for m in records(&api, "rl")
        .await
        .iter()
        .filter(|m| m["status"] == "deferred")
    {
        let deferred = m["deferred_ts"].as_i64().unwrap();
        assert_eq!(deferred % 60, 0, "deferred to the minute boundary");
        assert_eq!(m["history"][0]["description"], "rate_limit");
        assert_eq!(m["retry_count"], 0, "a rate-limit deferral is not a retry");
    }
    let metrics = api.get("/metrics").await.1.as_str().unwrap().to_string();
    assert!(metrics.contains("gmp_rate_limited_total{tenant_id=\"rl\",tenant_name=\"rl name\",account_id=\"smtp1\",account_name=\"smtp1\"} 3"), "{metrics}");
    server.stop().await;
}

async fn temporary_failures_retry_and_permanent_ones_fail(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let server = start(common::config(&tdb.url)).await;
    let api = Api::new(&server);
    api.setup_tenant("rt", sink.port).await;
    // flaky@ is refused with 451 twice, then accepted; dead@ always 550; busy@ always 421.
    let flaky = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let f2 = flaky.clone();
    sink.on_rcpt(move |a| match a {
        "flaky@x.io" if f2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 => {
            Some("451 4.3.0 try again later")
        }
        "dead@x.io" => Some("550 5.1.1 user unknown"),
        "busy@x.io" => Some("421 4.7.0 service not available"),
        _ => None,
    });
    let batch = json!({"tenant_id": "rt", "messages": [msg("flaky", "flaky@x.io"), msg("dead", "dead@x.io"), msg("busy", "busy@x.io"),
        {"id": "partial", "to": ["ok@x.io", "dead@x.io"], "subject": "p"}]});
    api.post("/commands/add-messages", batch).await;
    // Retry delays are 1 s in tests; max 3 retries.
    assert!(
        wait_for(20, || async {
            let r = records(&api, "rt").await;
            r.len() == 4
                && r.iter()
                    .all(|m| m["status"] == "sent" || m["status"] == "error")
        })
        .await,
        "{:#?}",
        records(&api, "rt").await
    );
    let r = records(&api, "rt").await;
    let get = |id: &str| r.iter().find(|m| m["id"] == id).unwrap().clone();
    assert_eq!(get("flaky")["status"], "sent");
    assert_eq!(get("flaky")["retry_count"], 2);
    assert_eq!(get("flaky")["history"][0]["event_type"], "deferred");
    assert!(
        get("flaky")["history"][0]["description"]
            .as_str()
            .unwrap()
            .ends_with("(SMTP 451)")
    );
    assert_eq!(get("dead")["status"], "error");
    assert!(
        get("dead")["error"]
            .as_str()
            .unwrap()
            .contains("(SMTP 550)"),
        "{}",
        get("dead")
    );
    assert_eq!(
        get("dead")["retry_count"],
        0,
        "a permanent failure is not retried"
    );
    assert_eq!(get("busy")["status"], "error");
    assert!(
        get("busy")["error"]
            .as_str()
            .unwrap()
            .starts_with("Max retries (3) exceeded:"),
        "{}",
        get("busy")
    );
    assert_eq!(get("partial")["status"], "sent");
    let meta = &get("partial")["history"][0]["metadata"]["rejected_recipients"][0];
    assert_eq!(
        (meta["address"].as_str(), meta["code"].as_i64()),
        (Some("dead@x.io"), Some(550))
    );
    let delivered = sink.messages();
    assert_eq!(delivered.len(), 2);
    assert!(delivered.iter().any(|m| m.rcpts == ["ok@x.io"]));
    let metrics = api.get("/metrics").await.1.as_str().unwrap().to_string();
    let line = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains("tenant_id=\"rt\""))
            .map(str::to_string)
    };
    assert!(line("gmp_sent_total").unwrap().ends_with(" 2"), "{metrics}");
    assert!(line("gmp_errors_total").unwrap().ends_with(" 2"));
    assert!(
        line("gmp_deferred_total").unwrap().ends_with(" 5"),
        "2 flaky + 3 busy deferrals"
    );
    server.stop().await;
}

async fn priorities_and_deferred_ts_order_sending(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let mut c = common::config(&tdb.url);
    c.max_concurrent_sends = 1;
    let server = start(c).await;
    let api = Api::new(&server);
    api.setup_tenant("p", sink.port).await;
    api.post("/commands/suspend?tenant_id=p", json!({})).await;
    let later = chrono_now() + 2;
    api.post("/commands/add-messages", json!({"tenant_id": "p", "messages": [
        {"id": "low", "to": ["a@b.io"], "subject": "low", "priority": 3},
        {"id": "later", "to": ["a@b.io"], "subject": "later", "priority": 0, "deferred_ts": later},
        {"id": "medium", "to": ["a@b.io"], "subject": "medium"},
        {"id": "now", "to": ["a@b.io"], "subject": "now", "priority": "immediate"}
    ]})).await;
    api.post("/commands/activate?tenant_id=p", json!({})).await;
    assert!(wait_for(10, || async { sink.count() == 4 }).await);
    let order: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| common::sink::header(&m.data, "Subject").unwrap())
        .collect();
    assert_eq!(order, ["now", "medium", "low", "later"]);
    server.stop().await;
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

on_both_stores!(
    rate_limits_defer_to_the_window_boundary,
    temporary_failures_retry_and_permanent_ones_fail,
    priorities_and_deferred_ts_order_sending
);
