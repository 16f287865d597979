//! HTTP timeouts and the connection cap (issue 15, item 7), against the real binary: a few
//! hundred unauthenticated clients that never finish their request head are closed by the
//! header timeout while the server goes on answering; a body that stops arriving is a 408;
//! connections over `GMP_HTTP_MAX_CONNECTIONS` get a 503; and SIGTERM is not held up by slow
//! clients.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{process::Proxy, wait_for};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Connections that send half a request head and then nothing.
async fn slow_clients(port: u16, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"POST /commands/add-messages HTTP/1.1\r\nHost: proxy\r\nX-Slow: ")
            .await
            .unwrap();
        out.push(s);
    }
    out
}

/// Reads until the server closes the connection (EOF or reset); what it sent.
async fn until_closed(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Waits (bounded) until every connection is closed by the server.
async fn all_closed(conns: &mut [TcpStream]) -> bool {
    let closing = futures_util::future::join_all(conns.iter_mut().map(until_closed));
    tokio::time::timeout(Duration::from_secs(60), closing)
        .await
        .is_ok()
}

/// One request on a fresh connection (`Connection: close`); the whole answer.
async fn raw_request(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(30), until_closed(&mut s)).await;
    answer.expect("an answer within 30 s")
}

async fn health(port: u16) -> String {
    raw_request(
        port,
        "GET /health HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n",
    )
    .await
}

/// The `gmp_http_connections` gauge, read on a connection of its own (so at least 1).
async fn open_connections(port: u16) -> Option<u64> {
    let text = raw_request(
        port,
        "GET /metrics HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n",
    )
    .await;
    text.lines()
        .find_map(|l| l.strip_prefix("gmp_http_connections "))
        .and_then(|v| v.trim().parse().ok())
}

fn db(dir: &tempfile::TempDir) -> String {
    dir.path().join("mail.db").display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_and_the_server_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("GMP_HTTP_HEADER_TIMEOUT_SECONDS", "2")];
    let proxy = Proxy::start(&db(&dir), &env, dir.path()).await;
    let mut slow = slow_clients(proxy.port, 300).await;
    // Three hundred connections hang mid-head, yet the server answers.
    assert!(health(proxy.port).await.starts_with("HTTP/1.1 200"));
    // Each is closed by the server once the header timeout passes.
    assert!(all_closed(&mut slow).await, "slow connections stay open");
    let (_, status) = proxy.terminate().await;
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_is_answered_408() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("GMP_HTTP_BODY_TIMEOUT_SECONDS", "1")];
    let proxy = Proxy::start(&db(&dir), &env, dir.path()).await;
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
    let head = "POST /commands/add-messages HTTP/1.1\r\nHost: proxy\r\nX-API-Token: admin-token\r\n\
                Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"tenant_id\":";
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(60), until_closed(&mut s)).await;
    let answer = answer.expect("an answer, not a connection held forever");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(r#"{"detail":"Request body not received within 1 s"}"#),
        "{answer}"
    );
    proxy.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_answered_503() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("GMP_HTTP_MAX_CONNECTIONS", "20"),
        ("GMP_HTTP_HEADER_TIMEOUT_SECONDS", "3600"),
    ];
    let proxy = Proxy::start(&db(&dir), &env, dir.path()).await;
    // Only the probe itself is open (the start-up health checks have closed).
    assert!(
        wait_for(30, || async {
            open_connections(proxy.port).await == Some(1)
        })
        .await
    );
    let mut slow = slow_clients(proxy.port, 20).await;
    let answer = health(proxy.port).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Too many connections"), "{answer}");
    // A slot freed is a slot usable again.
    drop(slow.pop());
    assert!(
        wait_for(30, || async {
            health(proxy.port).await.starts_with("HTTP/1.1 200")
        })
        .await
    );
    proxy.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_hold_up_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("GMP_HTTP_HEADER_TIMEOUT_SECONDS", "3600")];
    let proxy = Proxy::start(&db(&dir), &env, dir.path()).await;
    let mut slow = slow_clients(proxy.port, 300).await;
    assert!(health(proxy.port).await.starts_with("HTTP/1.1 200"));
    // `terminate` fails the test when the process has not exited 60 s after SIGTERM.
    let (_, status) = proxy.terminate().await;
    assert!(status.success());
    assert!(all_closed(&mut slow).await);
}
