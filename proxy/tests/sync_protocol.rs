//! The sync protocol over real HTTP, SMTP and databases (PROTOCOL.md §4: reports of
//! messages submitted by sync, queued re-calls, DND, several replicas): inline messages are delivered and reported once, `queued` makes the proxy
//! call again at once, do-not-disturb is honoured, a misbehaving tenant keeps its reports and
//! does not slow the others, and replicas never call one tenant at the same time.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{Api, Db, database, sink::Sink, start, tenant_app::TenantApp, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

async fn register(api: &Api, tenant: &str, app: &TenantApp, smtp_port: u16) {
    let (s, b) = api
        .post(
            "/tenant",
            json!({"id": tenant, "client_base_url": app.url, "client_sync_path": "/sync",
            "client_auth": {"method": "bearer", "token": format!("tok-{tenant}")}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    api.post("/account", json!({"id": "smtp1", "tenant_id": tenant, "host": "127.0.0.1", "port": smtp_port, "sender_email": format!("noreply@{tenant}.io")})).await;
}

fn inline(ids: &[&str]) -> Value {
    Value::Array(ids.iter().map(|id| json!({"id": id, "sender": "s@app.io", "recipient_email": format!("{id}@x.io"), "subject": id, "body_text": "hi"})).collect())
}

fn config(url: &str, interval: f64) -> mailproxy::config::Config {
    let mut c = common::config(url);
    c.sync_interval = interval;
    c.sync_timeout_seconds = 2;
    c
}

/// Sent reports per message id.
fn sent_reports(app: &TenantApp) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in app.reports().iter().filter(|r| r.get("sent_ts").is_some()) {
        *m.entry(r["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    m
}

async fn s01_inline_messages_are_delivered_and_reported_once(db: Db) {
    let (sink, tdb, app) = (
        Sink::start().await,
        database(db).await,
        TenantApp::start().await,
    );
    let served = Arc::new(AtomicUsize::new(0));
    let s2 = served.clone();
    app.script(move |_| {
        let msgs = if s2.fetch_add(1, Ordering::SeqCst) == 0 {
            inline(&["MSG-001", "MSG-002", "MSG-003"])
        } else {
            json!([])
        };
        (
            StatusCode::OK,
            json!({"ok": true, "messages": msgs, "processed": 0}).to_string(),
        )
    });
    let server = start(config(&tdb.url, 300.0)).await;
    let api = Api::new(&server);
    register(&api, "s01", &app, sink.port).await;
    assert!(
        wait_for(10, || async { sink.count() == 3 }).await,
        "delivered {}",
        sink.count()
    );
    assert!(
        wait_for(10, || async { sent_reports(&app).len() == 3 }).await,
        "{:?}",
        app.reports()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        sent_reports(&app).values().all(|n| *n == 1),
        "one sent report per id: {:?}",
        sent_reports(&app)
    );
    assert_eq!(app.calls()[0].auth.as_deref(), Some("Bearer tok-s01"));
    assert_eq!(app.calls()[0].body, json!({"delivery_report": []}));
    server.stop().await;
}

async fn s07_queued_makes_the_proxy_call_again_at_once(db: Db) {
    let (sink, tdb, app) = (
        Sink::start().await,
        database(db).await,
        TenantApp::start().await,
    );
    let rows = Arc::new(Mutex::new(vec![
        "B-001", "B-002", "B-003", "B-004", "B-005",
    ]));
    let queued_seen = Arc::new(Mutex::new(Vec::new()));
    let (r2, q2) = (rows.clone(), queued_seen.clone());
    app.script(move |_| {
        let mut rows = r2.lock().unwrap();
        let n = rows.len().min(2);
        let take: Vec<&str> = rows.drain(..n).collect();
        let queued = rows.len() + take.len();
        q2.lock().unwrap().push(queued);
        (
            StatusCode::OK,
            json!({"ok": true, "queued": queued, "messages": inline(&take)}).to_string(),
        )
    });
    let server = start(config(&tdb.url, 300.0)).await;
    let api = Api::new(&server);
    let t0 = Instant::now();
    register(&api, "s07", &app, sink.port).await;
    assert!(
        wait_for(5, || async { sink.count() == 5 }).await,
        "all 5 delivered within 5 s"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(wait_for(2, || async { queued_seen.lock().unwrap().len() >= 4 }).await);
    assert_eq!(
        queued_seen.lock().unwrap()[..4],
        [5, 3, 1, 0],
        "4 calls while queued > 0"
    );
    server.stop().await;
}

async fn dnd_is_honoured_but_reports_still_go(db: Db) {
    let (sink, tdb, app) = (
        Sink::start().await,
        database(db).await,
        TenantApp::start().await,
    );
    let dnd_until = Arc::new(Mutex::new(0.0));
    let d2 = dnd_until.clone();
    app.script(move |_| {
        let mut d = d2.lock().unwrap();
        if *d == 0.0 {
            *d = now() + 3.0;
            return (
                StatusCode::OK,
                json!({"ok": true, "next_sync_after": *d}).to_string(),
            );
        }
        (StatusCode::OK, json!({"ok": true}).to_string())
    });
    let server = start(config(&tdb.url, 1.0)).await;
    let api = Api::new(&server);
    register(&api, "dnd", &app, sink.port).await;
    assert!(wait_for(5, || async { !app.calls().is_empty() }).await);
    let first = app.calls()[0].at;
    let first_epoch = now() - first.elapsed().as_secs_f64();
    let after_dnd = |c: &common::tenant_app::Call| c.at.duration_since(first).as_secs_f64() >= 2.9;
    assert!(
        wait_for(6, || async { app.calls().iter().skip(1).any(after_dnd) }).await,
        "a call after the DND"
    );
    let until = *dnd_until.lock().unwrap();
    let calls = app.calls();
    let during = calls.iter().skip(1).filter(|c| !after_dnd(c)).count();
    assert_eq!(during, 0, "no call during DND without reports");
    let after = calls.iter().skip(1).find(|c| after_dnd(c)).unwrap();
    let after_epoch = first_epoch + after.at.duration_since(first).as_secs_f64();
    assert!(
        after_epoch >= until - 0.1,
        "not called before next_sync_after"
    );
    assert!(
        after_epoch - until.ceil() < 1.0,
        "called promptly after the DND ended ({:.2} s late)",
        after_epoch - until.ceil()
    );
    // A second DND with a pending report: the report is delivered during the DND.
    *dnd_until.lock().unwrap() = 0.0;
    api.post("/commands/run-now", json!({"tenant_id": "dnd"}))
        .await;
    assert!(wait_for(3, || async { app.calls().len() > calls.len() }).await);
    let before = app.calls().len();
    api.post(
        "/commands/add-messages",
        json!({"tenant_id": "dnd", "messages": [{"id": "r1", "to": ["a@b.io"], "subject": "s"}]}),
    )
    .await;
    assert!(
        wait_for(3, || async { sent_reports(&app).contains_key("r1") }).await,
        "report delivered during DND"
    );
    assert!(app.calls().len() > before);
    server.stop().await;
}

async fn a_misbehaving_tenant_keeps_its_reports_and_slows_no_one(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let (bad, good) = (TenantApp::start().await, TenantApp::start().await);
    let mode = Arc::new(Mutex::new("500"));
    let m2 = mode.clone();
    bad.script(move |_| match *m2.lock().unwrap() {
        "500" => (StatusCode::INTERNAL_SERVER_ERROR, "oops".into()),
        "garbage" => (StatusCode::OK, "<html>not json".into()),
        "refuse" => (StatusCode::OK, json!({"ok": false}).to_string()),
        _ => (StatusCode::OK, json!({"ok": true}).to_string()),
    });
    let counter = Arc::new(AtomicUsize::new(0));
    let c2 = counter.clone();
    good.script(move |_| {
        let n = c2.fetch_add(1, Ordering::SeqCst);
        let id = format!("g{n}");
        (
            StatusCode::OK,
            json!({"ok": true, "messages": inline(&[id.as_str()])}).to_string(),
        )
    });
    let mut c = config(&tdb.url, 1.0);
    c.sync_timeout_seconds = 1;
    let server = start(c).await;
    let api = Api::new(&server);
    register(&api, "bad", &bad, sink.port).await;
    register(&api, "good", &good, sink.port).await;
    api.post("/commands/add-messages", json!({"tenant_id": "bad", "messages": [{"id": "b1", "to": ["a@b.io"], "subject": "s"}, {"id": "b2", "to": ["a@b.io"], "subject": "s"}]})).await;
    // The good tenant keeps flowing while the bad one fails in every way.
    for m in ["500", "garbage", "refuse"] {
        *mode.lock().unwrap() = m;
        let before = sent_reports(&good).len();
        assert!(
            wait_for(6, || async { sent_reports(&good).len() >= before + 2 }).await,
            "good tenant not slowed during {m}"
        );
    }
    bad.delay(Duration::from_secs(3));
    let before = sent_reports(&good).len();
    assert!(
        wait_for(6, || async { sent_reports(&good).len() >= before + 2 }).await,
        "good tenant not slowed by a hanging one"
    );
    let (_, status) = api.get("/tenants/sync-status").await;
    let bad_status = status["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "bad")
        .unwrap()
        .clone();
    assert!(
        bad_status["sync_failures"].as_i64().unwrap() >= 1,
        "{bad_status}"
    );
    assert!(
        bad_status["pending_reports"].as_i64().unwrap() >= 2,
        "reports kept while failing: {bad_status}"
    );
    // The bad tenant recovers: from then on it receives each of its reports exactly once.
    bad.delay(Duration::ZERO);
    *mode.lock().unwrap() = "ok";
    tokio::time::sleep(Duration::from_secs(3)).await;
    let failed_calls = bad.calls().len();
    api.post("/commands/run-now", json!({"tenant_id": "bad"}))
        .await;
    assert!(
        wait_for(10, || async {
            let (_, b) = api.get("/tenants/sync-status").await;
            b["tenants"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["id"] == "bad" && t["pending_reports"] == 0)
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut after: HashMap<String, usize> = HashMap::new();
    for c in &bad.calls()[failed_calls..] {
        for r in c.reports().iter().filter(|r| r.get("sent_ts").is_some()) {
            *after
                .entry(r["id"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    assert!(
        bad.calls().len() > failed_calls,
        "called again once it recovered"
    );
    assert!(
        sent_reports(&bad).contains_key("b1") && sent_reports(&bad).contains_key("b2"),
        "reports kept while failing"
    );
    assert!(
        after.values().all(|n| *n <= 1),
        "acknowledged reports are not sent again: {after:?}"
    );
    server.stop().await;
}

async fn refused_reports_are_sent_again(db: Db) {
    let (sink, tdb, app) = (
        Sink::start().await,
        database(db).await,
        TenantApp::start().await,
    );
    let refused_once = Arc::new(AtomicUsize::new(0));
    let r2 = refused_once.clone();
    app.script(move |body| {
        let has = body["delivery_report"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["id"] == "x1"));
        if has && r2.fetch_add(1, Ordering::SeqCst) == 0 {
            return (
                StatusCode::OK,
                json!({"ok": true, "error": ["x1"]}).to_string(),
            );
        }
        (StatusCode::OK, json!({"ok": true}).to_string())
    });
    let server = start(config(&tdb.url, 1.0)).await;
    let api = Api::new(&server);
    register(&api, "ref", &app, sink.port).await;
    api.post(
        "/commands/add-messages",
        json!({"tenant_id": "ref", "messages": [{"id": "x1", "to": ["a@b.io"], "subject": "s"}]}),
    )
    .await;
    assert!(
        wait_for(10, || async { sent_reports(&app).get("x1") == Some(&2) }).await,
        "{:?}",
        app.reports()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sent_reports(&app).get("x1"),
        Some(&2),
        "acknowledged the second time, then never again"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_never_call_one_tenant_at_once() {
    let (sink, tdb, app) = (
        Sink::start().await,
        database(Db::Postgres).await,
        TenantApp::start().await,
    );
    let counter = Arc::new(AtomicUsize::new(0));
    let c2 = counter.clone();
    app.delay(Duration::from_millis(30));
    app.script(move |_| {
        let n = c2.fetch_add(1, Ordering::SeqCst);
        let msgs = if n < 40 {
            inline(&[format!("m{n}a").as_str(), format!("m{n}b").as_str()])
        } else {
            json!([])
        };
        (
            StatusCode::OK,
            json!({"ok": true, "messages": msgs}).to_string(),
        )
    });
    // This test is about the lease, not about pacing: report-driven calls may follow at once.
    let mut c = config(&tdb.url, 1.0);
    c.sync_report_min_interval = 0;
    let a = start(c.clone()).await;
    let b = start(c).await;
    register(&Api::new(&a), "lease", &app, sink.port).await;
    assert!(
        wait_for(30, || async { sent_reports(&app).len() == 80 }).await,
        "got {}",
        sent_reports(&app).len()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.max_active.load(Ordering::SeqCst),
        1,
        "one call in flight per tenant across replicas"
    );
    assert!(
        sent_reports(&app).values().all(|n| *n == 1),
        "no report twice"
    );
    a.stop().await;
    b.stop().await;
}

on_both_stores!(
    s01_inline_messages_are_delivered_and_reported_once,
    s07_queued_makes_the_proxy_call_again_at_once,
    dnd_is_honoured_but_reports_still_go,
    a_misbehaving_tenant_keeps_its_reports_and_slows_no_one,
    refused_reports_are_sent_again
);
