//! Attachments used against other tenants or against the replica itself (issue 15), over real
//! HTTP, SMTP and databases:
//! - a tenant that names another tenant's MD5 key for its own download gets neither the other
//!   tenant's content nor the power to swap it: concurrent downloads are shared only by tenant and
//!   source, and bytes that do not match their key are never handed to another message;
//! - a tenant that queues large inline attachments due at the same moment does not take the
//!   replica down (a process with a memory limit): the claim leaves large payloads out, each is
//!   read and decoded under the memory budget, and every other message is delivered;
//! - a message whose send keeps taking replicas down (here: SIGKILL while it is in `DATA`) is
//!   parked with an `error` report after `GMP_MAX_STARTS_WITHOUT_OUTCOME` starts.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use common::{Api, Db, database, files::Files, process::Proxy, sink::Sink, start, wait_for};
use mail_parser::{MessageParser, MimeHeaders};
use md5::{Digest, Md5};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

/// The content of the first attachment of the message whose `X-Genro-Mail-ID` is `id`.
fn attachment_of(sink: &Sink, id: &str) -> Option<Vec<u8>> {
    let m = sink
        .messages()
        .into_iter()
        .find(|m| common::sink::header(&m.data, "X-Genro-Mail-ID").as_deref() == Some(id))?;
    let parsed = MessageParser::default().parse(m.data.as_bytes()).unwrap();
    let first = parsed.attachments().next()?;
    assert!(first.attachment_name().is_some());
    Some(first.contents().to_vec())
}

async fn tenant_with_files(api: &Api, tenant: &str, smtp_port: u16, files: &Files) {
    api.setup_tenant(tenant, smtp_port).await;
    let (s, b) = api
        .post(
            "/tenant",
            json!({"id": tenant, "client_base_url": files.base,
            "client_attachment_path": "/attachments"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

async fn add(api: &Api, tenant: &str, message: Value) {
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": tenant, "messages": [message]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["rejected"].as_array().is_none_or(Vec::is_empty), "{b}");
}

/// Tenant `evil` starts a slow download of its own bytes under the MD5 key of `victim`'s invoice;
/// `victim`'s message with the real invoice and that key is sent while the download runs. The
/// victim's mail carries the victim's invoice (fetched from the victim's own app), and the
/// attacker's mail carries the attacker's own bytes.
async fn a_download_is_not_shared_across_tenants(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let (evil_files, victim_files) = (Files::start().await, Files::start().await);
    let mut c = common::config(&tdb.url);
    c.attachment_allowed_hosts = mailproxy::config::Hosts(vec!["127.0.0.1".into()]);
    let server = start(c).await;
    let api = Api::new(&server);
    tenant_with_files(&api, "evil", sink.port, &evil_files).await;
    tenant_with_files(&api, "victim", sink.port, &victim_files).await;
    let invoice: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let forged = b"PAY TO ACCOUNT 666".to_vec();
    let key = md5_hex(&invoice);
    // `slow-*` answers after 5 s: the victim's message is queued while this download runs.
    evil_files.put("slow-forged", forged.clone());
    victim_files.put("invoice", invoice.clone());
    let message = |id: &str, path: &str| {
        json!({"id": id, "to": ["rcpt@x.io"], "subject": id, "body": "b",
            "attachments": [{"filename": "invoice.pdf", "content_md5": key, "storage_path": path}]})
    };
    add(&api, "evil", message("evil-1", "slow-forged")).await;
    assert!(
        wait_for(10, || async {
            !evil_files.calls_for("slow-forged").is_empty()
        })
        .await
    );
    add(&api, "victim", message("victim-1", "invoice")).await;
    assert!(
        wait_for(30, || async { sink.count() == 2 }).await,
        "both delivered"
    );
    let md5_of = |id: &str| attachment_of(&sink, id).map(|b| md5_hex(&b));
    assert_eq!(
        md5_of("victim-1"),
        Some(key.clone()),
        "the victim's mail carries the victim's invoice"
    );
    assert_eq!(
        md5_of("evil-1"),
        Some(md5_hex(&forged)),
        "the attacker gets only its own bytes"
    );
    assert_eq!(victim_files.calls_for("invoice").len(), 1);
    server.stop().await;
}

/// Two messages of one tenant share a download whose bytes do not match their key: the first
/// message gets them (as before, with a mismatch counted), the second fetches its own copy
/// instead of being handed bytes nobody vouched for.
async fn mismatched_bytes_are_not_handed_to_a_waiter(db: Db) {
    let (sink, tdb, files) = (
        Sink::start().await,
        database(db).await,
        Files::start().await,
    );
    let mut c = common::config(&tdb.url);
    c.attachment_allowed_hosts = mailproxy::config::Hosts(vec!["127.0.0.1".into()]);
    let server = start(c).await;
    let api = Api::new(&server);
    tenant_with_files(&api, "mm", sink.port, &files).await;
    files.put("delayed-doc", b"not what the key says".to_vec());
    let key = md5_hex(b"what the key says");
    let message = |id: &str| {
        json!({"id": id, "to": ["rcpt@x.io"], "subject": id, "body": "b",
            "attachments": [{"filename": "doc.txt", "content_md5": key, "storage_path": "delayed-doc"}]})
    };
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": "mm", "messages": [message("m1"), message("m2")]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(wait_for(20, || async { sink.count() == 2 }).await);
    assert_eq!(
        files.calls_for("delayed-doc").len(),
        2,
        "each message fetched the mismatched content itself"
    );
    server.stop().await;
}

/// The `VmData` of a process (its private writable memory) in bytes.
fn vm_data(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmData:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kb * 1024
}

/// Statuses of a tenant's messages by id, with the error text.
async fn statuses(api: &Api, tenant: &str) -> Vec<(String, String, String)> {
    let (_, b) = api
        .get(&format!("/messages/list?tenant_id={tenant}&limit=1000"))
        .await;
    b.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap_or_default().to_string(),
                m["status"].as_str().unwrap_or_default().to_string(),
                m["error"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Eight messages with 8 MiB inline attachments each, all due at once (their tenant is
/// activated after they are queued), sent eight at a time (`GMP_MAX_SENDS_PER_ACCOUNT`), next to
/// 100 ordinary messages of another tenant, on a replica whose private memory may grow by at
/// most 200 MiB (`prlimit --data`). Before, one claim held all eight payloads and each send its
/// text, its parsed copy, a whitespace-free copy and the decoded bytes: about 350 MiB, and the
/// replica died (as would every replica after it). Now each is read and decoded under the
/// 16 MiB budget, one at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_attachments_cannot_take_the_replica_down() {
    const ATTACK: usize = 8;
    const SIZE: usize = 8 << 20;
    const HEADROOM: u64 = 200 << 20;
    let (sink, tdb) = (Sink::start().await, database(Db::Postgres).await);
    let dir = tempfile::tempdir().unwrap();
    let mut proxy = Proxy::start(
        &tdb.url,
        &[
            ("GMP_ATTACHMENT_MEMORY_BUDGET_MB", "16"),
            // Admits the attack at intake, to test the send path (the default cap is 10 MiB).
            ("GMP_MAX_INLINE_ATTACHMENT_MB", "12"),
            ("GMP_MAX_SENDS_PER_ACCOUNT", "10"),
            // Freed memory goes back to the system at once, as the memory limit of a container
            // counts it: glibc would otherwise keep freed large blocks in up to 8 arenas per core.
            ("MALLOC_ARENA_MAX", "2"),
            ("MALLOC_MMAP_THRESHOLD_", "131072"),
            // Each pooled PostgreSQL connection keeps buffers as large as the largest message
            // it carried (about 11 MiB here): fewer connections, a steadier figure.
            ("GMP_DB_MAX_CONNECTIONS", "4"),
        ],
        dir.path(),
    )
    .await;
    let api = proxy.api.clone();
    api.setup_tenant("evil", sink.port).await;
    api.setup_tenant("good", sink.port).await;
    let (s, b) = api
        .post("/commands/suspend?tenant_id=evil", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let pid = proxy.child.id().unwrap();
    let limit = vm_data(pid) + HEADROOM;
    let ok = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--data={limit}:{limit}"),
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok, "prlimit");
    let content: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
    let inline = STANDARD.encode(&content);
    drop(content);
    for i in 0..ATTACK {
        let m = json!({"id": format!("big-{i}"), "to": ["r@x.io"], "subject": "big", "body": "b",
            "attachments": [{"filename": "big.bin", "content": format!("base64:{inline}")}]});
        let (s, b) = api
            .post(
                "/commands/add-messages",
                json!({"tenant_id": "evil", "messages": [m]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["queued"], 1, "{b}");
    }
    drop(inline);
    let ordinary: Vec<Value> = (0..100)
        .map(|i| json!({"id": format!("o-{i}"), "to": ["r@x.io"], "subject": "s", "body": "b"}))
        .collect();
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": "good", "messages": ordinary}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = api
        .post("/commands/activate?tenant_id=evil", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let mut died = None;
    let delivered = wait_for(240, || {
        died = died.or(proxy.child.try_wait().unwrap());
        let done = sink.count() == 100 + ATTACK;
        async move { done || died.is_some() }
    })
    .await;
    let died = died.or(proxy.child.try_wait().unwrap());
    println!(
        "{ATTACK} inline attachments of {} MiB due at once, private memory limited to {} MiB \
         (+{} MiB): delivered {} of {}, replica {}",
        SIZE >> 20,
        limit >> 20,
        HEADROOM >> 20,
        sink.count(),
        100 + ATTACK,
        match died {
            Some(status) => format!("died ({status})"),
            None => format!("alive, {} MiB private now", vm_data(pid) >> 20),
        }
    );
    assert!(died.is_none(), "the replica stays up: {}", proxy.output());
    assert!(delivered, "every message delivered");
    // The sink has every message; their outcomes are written a moment later.
    let recorded = wait_for(30, || {
        let api = api.clone();
        async move {
            let good = statuses(&api, "good").await;
            good.len() == 100 && good.iter().all(|(_, s, _)| s == "sent")
        }
    })
    .await;
    let good = statuses(&api, "good").await;
    assert!(
        recorded,
        "every ordinary message recorded as sent: {good:?}"
    );
    proxy.terminate().await;
}

/// A message whose send is under way when its replica dies (SIGKILL while the SMTP server holds
/// its `DATA`), twice, with `GMP_MAX_STARTS_WITHOUT_OUTCOME=2`: the third replica to claim it
/// parks it with an `error` report instead of sending it again; an ordinary message is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_taking_replicas_down_is_parked() {
    let (sink, tdb) = (Sink::start().await, database(Db::Postgres).await);
    *sink.data_delay.lock().unwrap() = Duration::from_secs(120);
    let starts = Arc::new(AtomicUsize::new(0));
    let counter = starts.clone();
    sink.on_rcpt(move |a| {
        if a == "poison@x.io" {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        None
    });
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("GMP_CLAIM_LEASE_SECONDS", "3"),
        ("GMP_MAX_STARTS_WITHOUT_OUTCOME", "2"),
    ];
    let mut proxy = Proxy::start(&tdb.url, &env, dir.path()).await;
    proxy.api.setup_tenant("crash", sink.port).await;
    // 200 kB inline: a payload the claim leaves out, loaded (and counted) when the send starts.
    let inline = STANDARD.encode(vec![42u8; 200_000]);
    let poison = json!({"id": "poison", "to": ["poison@x.io"], "subject": "p", "body": "b",
        "attachments": [{"filename": "p.bin", "content": format!("base64:{inline}")}]});
    let (s, b) = proxy
        .api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": "crash", "messages": [poison]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    for round in 1..=2 {
        let started = wait_for(30, || async { starts.load(Ordering::SeqCst) >= round }).await;
        assert!(started, "send {round} started");
        proxy.signal("KILL");
        proxy.child.wait().await.unwrap();
        if round == 2 {
            *sink.data_delay.lock().unwrap() = Duration::ZERO;
        }
        proxy = Proxy::start(&tdb.url, &env, dir.path()).await;
    }
    let api = proxy.api.clone();
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": "crash", "messages": [
                {"id": "ordinary", "to": ["r@x.io"], "subject": "s", "body": "b"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let settled = wait_for(30, || async {
        let st = statuses(&api, "crash").await;
        st.len() == 2 && st.iter().all(|(_, s, _)| s == "sent" || s == "error")
    })
    .await;
    let st = statuses(&api, "crash").await;
    println!(
        "after two replicas died sending it: {st:?}; sends started {}",
        starts.load(Ordering::SeqCst)
    );
    assert!(settled, "{st:?}");
    let poison = st.iter().find(|(id, _, _)| id == "poison").unwrap();
    assert_eq!(poison.1, "error", "{st:?}");
    assert!(poison.2.contains("parked"), "{st:?}");
    assert_eq!(starts.load(Ordering::SeqCst), 2, "not sent a third time");
    let metrics = api.get("/metrics").await.1;
    assert!(
        metrics
            .as_str()
            .unwrap_or_default()
            .contains("gmp_messages_parked_total 1"),
        "{metrics}"
    );
    proxy.terminate().await;
}

/// Inline content over `GMP_MAX_INLINE_ATTACHMENT_MB` is refused at intake with its own reason;
/// the other messages of the request are queued.
async fn inline_content_over_the_cap_is_refused_at_intake(db: Db) {
    let (sink, tdb) = (Sink::start().await, database(db).await);
    let mut c = common::config(&tdb.url);
    c.max_inline_attachment_mb = 1;
    let server = start(c).await;
    let api = Api::new(&server);
    api.setup_tenant("cap", sink.port).await;
    let inline = |n: usize| format!("base64:{}", STANDARD.encode(vec![1u8; n]));
    let (s, b) = api
        .post(
            "/commands/add-messages",
            json!({"tenant_id": "cap", "messages": [
                {"id": "over", "to": ["r@x.io"], "subject": "s", "attachments": [
                    {"filename": "a.bin", "content": inline(600_000)},
                    {"filename": "b.bin", "content": inline(600_000)}]},
                {"id": "within", "to": ["r@x.io"], "subject": "s", "attachments": [
                    {"filename": "a.bin", "content": inline(1_000_000)}]}]}),
        )
        .await;
    assert!(s.is_client_error() || s.is_success(), "{s} {b}");
    assert_eq!(b["queued"], 1, "{b}");
    assert_eq!(
        b["rejected"],
        json!([{"id": "over", "reason": "inline attachments too large"}]),
        "{b}"
    );
    assert!(wait_for(20, || async { sink.count() == 1 }).await);
    server.stop().await;
}

/// A body of a million tiny JSON values (about 2 MB of text, a gigabyte at 64 MiB) is refused
/// with a 413 before it is parsed.
async fn a_body_of_countless_values_is_refused_unparsed(db: Db) {
    let tdb = database(db).await;
    let server = start(common::config(&tdb.url)).await;
    let api = Api::new(&server);
    let body = format!("[{}0]", "0,".repeat(1_000_000));
    let resp = reqwest::Client::new()
        .post(format!("{}/commands/add-messages", api.base))
        .header("X-API-Token", "admin-token")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let b: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("JSON values"),
        "{b}"
    );
    server.stop().await;
}

on_both_stores!(
    a_download_is_not_shared_across_tenants,
    mismatched_bytes_are_not_handed_to_a_waiter,
    inline_content_over_the_cap_is_refused_at_intake,
    a_body_of_countless_values_is_refused_unparsed,
);
