//! Several proxy processes on one PostgreSQL database (PROTOCOL.md §7.4): 1000 messages
//! are delivered exactly once by two replicas; with one replica killed (SIGKILL) mid-run every
//! message is still delivered, and duplicates stay bounded by what was in flight.

#![allow(clippy::unwrap_used)]

mod common;

use std::{collections::HashMap, process::Stdio, time::Duration};

use common::{
    Api, Db, database,
    sink::{Sink, header},
    wait_for,
};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const KEY: &str = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the real `mailproxy` binary and waits for `/health`.
async fn replica(db_url: &str) -> (Child, Api) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_mailproxy"))
        .env("GMP_DB_PATH", db_url)
        .env("GMP_HOST", "127.0.0.1")
        .env("GMP_PORT", port.to_string())
        .env("GMP_API_TOKEN", "admin-token")
        .env("MAIL_PROXY_ENCRYPTION_KEY", KEY)
        .env("GMP_CLAIM_LEASE_SECONDS", "3")
        .env("GMP_SEND_LOOP_INTERVAL", "0.05")
        .env("GMP_LOG_LEVEL", "WARNING")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let api = Api::at(&format!("http://127.0.0.1:{port}"));
    let up = wait_for(20, || async {
        reqwest::get(format!("{}/health", api.base))
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(up, "replica on port {port} did not start");
    (child, api)
}

async fn enqueue(api: &Api, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let msgs: Vec<Value> = chunk
            .iter()
            .map(
                |i| json!({"id": format!("m{i:04}"), "to": ["r@x.io"], "subject": format!("s{i}")}),
            )
            .collect();
        let (s, b) = api
            .post(
                "/commands/add-messages",
                json!({"tenant_id": "mi", "messages": msgs}),
            )
            .await;
        assert!(s.is_success(), "{b}");
    }
}

fn per_message_id(sink: &Sink) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for m in sink.messages() {
        *seen
            .entry(header(&m.data, "Message-ID").unwrap())
            .or_insert(0) += 1;
    }
    seen
}

async fn sent_count(api: &Api) -> usize {
    let (_, b) = api.get("/messages/list?tenant_id=mi&limit=5000").await;
    b.as_array()
        .map(|l| l.iter().filter(|m| m["status"] == "sent").count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_deliver_each_message_once() {
    let (sink, tdb) = (Sink::start().await, database(Db::Postgres).await);
    let (_a, api_a) = replica(&tdb.url).await;
    let (_b, api_b) = replica(&tdb.url).await;
    api_a.setup_tenant("mi", sink.port).await;
    enqueue(&api_a, 1000).await;
    assert!(
        wait_for(60, || async { sink.count() >= 1000 }).await,
        "delivered {}",
        sink.count()
    );
    assert!(wait_for(10, || async { sent_count(&api_b).await == 1000 }).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = per_message_id(&sink);
    assert_eq!(sink.count(), 1000, "exactly 1000 deliveries");
    assert_eq!(seen.len(), 1000, "1000 distinct Message-IDs");
    // Both replicas took part.
    let sent_by = |api: Api| async move {
        api.get("/metrics")
            .await
            .1
            .as_str()
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("gmp_sent_total{tenant_id=\"mi\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum::<f64>()
    };
    let (a, b) = (sent_by(api_a).await, sent_by(api_b).await);
    assert_eq!(a + b, 1000.0);
    assert!(a > 0.0 && b > 0.0, "both replicas sent: {a} / {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_loses_nothing() {
    let (sink, tdb) = (Sink::start().await, database(Db::Postgres).await);
    *sink.data_delay.lock().unwrap() = Duration::from_millis(4);
    let (mut a, api_a) = replica(&tdb.url).await;
    let (_b, api_b) = replica(&tdb.url).await;
    api_a.setup_tenant("mi", sink.port).await;
    enqueue(&api_a, 1000).await;
    assert!(wait_for(30, || async { sink.count() >= 150 }).await);
    a.kill().await.unwrap();
    let killed_at = sink.count();
    // The survivor takes over the dead replica's rows once their 3 s leases expire.
    assert!(
        wait_for(90, || async { per_message_id(&sink).len() == 1000 }).await,
        "distinct delivered: {}",
        per_message_id(&sink).len()
    );
    assert!(
        wait_for(10, || async { sent_count(&api_b).await == 1000 }).await,
        "all 1000 recorded as sent"
    );
    let duplicates = sink.count() - 1000;
    println!("killed after {killed_at} deliveries; duplicates: {duplicates}");
    // Only sends in flight at the kill (at most GMP_MAX_CONCURRENT_SENDS = 10) can repeat, plus
    // those accepted but whose outcome batch was not yet written.
    assert!(
        duplicates <= 200,
        "duplicates bounded by in-flight work: {duplicates}"
    );
}
