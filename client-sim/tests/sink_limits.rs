//! The sink's limits over real SMTP and HTTP, against the built binary (issue 15, item 11): idle
//! connections are closed with a 421, so two stalled `DATA` transfers over 8 MiB give their
//! large-message permits back and the next large message is accepted; connections over the cap
//! are answered 421; and `POST /reset` is refused unless the sink was started to allow it.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::RawSmtp;

const BIN: &str = env!("CARGO_BIN_EXE_client-sim");

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A `client-sim sink` with `envs`; its SMTP address and HTTP base URL once it answers.
async fn sink(envs: &[(&str, &str)]) -> (Killed, SocketAddr, String) {
    let (smtp, http) = (free_port(), free_port());
    let mut cmd = Command::new(BIN);
    cmd.args(["sink", "--smtp-listen", &format!("127.0.0.1:{smtp}")])
        .args(["--http-listen", &format!("127.0.0.1:{http}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = Killed(cmd.spawn().expect("spawn client-sim sink"));
    let base = format!("http://127.0.0.1:{http}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/health"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return (child, SocketAddr::from(([127, 0, 0, 1], smtp)), base);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the sink never became ready");
}

/// A message body of about `mib` MiB in 76-character lines (no terminator).
fn big_body(mib: usize) -> Vec<u8> {
    let line = [b'A'; 76];
    let mut out = b"Subject: big\r\nMessage-ID: <big@x>\r\n\r\n".to_vec();
    while out.len() < mib << 20 {
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// EHLO, MAIL, RCPT, DATA on a fresh connection.
async fn start_data(addr: SocketAddr) -> RawSmtp {
    let mut c = RawSmtp::connect(addr).await;
    assert!(c.cmd("EHLO t").await.starts_with("250"));
    assert!(c.cmd("MAIL FROM:<a@x.test>").await.starts_with("250"));
    assert!(c.cmd("RCPT TO:<b@y.test>").await.starts_with("250"));
    assert!(c.cmd("DATA").await.starts_with("354"));
    c
}

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no progress within 60 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_large_transfers_give_their_permits_back() {
    let (_sink, smtp, _) = sink(&[("SINK_IDLE_TIMEOUT_SECONDS", "2")]).await;
    let body = big_body(9);
    // Two clients send 9 MiB of a message each (both large-message permits), then stall.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut c = start_data(smtp).await;
        c.send(&body).await;
        stalled.push(c);
    }
    // A third large message is accepted once the stalled ones time out.
    let reply = bounded("the third large message", async {
        let mut c = start_data(smtp).await;
        c.send(&body).await;
        c.send(b"\r\n.\r\n").await;
        c.reply().await
    })
    .await;
    assert!(reply.starts_with("250"), "{reply}");
    for mut s in stalled {
        let reply = bounded("a stalled transfer", s.reply()).await;
        assert!(reply.starts_with("421 4.4.2"), "{reply}");
        assert_eq!(s.reply().await, "", "closed after the 421");
    }
    // An idle session in command mode is closed the same way.
    let mut idle = RawSmtp::connect(smtp).await;
    assert!(idle.cmd("EHLO t").await.starts_with("250"));
    let reply = bounded("an idle session", idle.reply()).await;
    assert!(reply.starts_with("421 4.4.2"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_answered_421() {
    let (_sink, smtp, _) = sink(&[("SINK_MAX_CONNECTIONS", "3")]).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(RawSmtp::connect(smtp).await);
    }
    let mut over = tokio::net::TcpStream::connect(smtp).await.expect("connect");
    let mut greeting = String::new();
    use tokio::io::AsyncReadExt;
    bounded("the refusal", over.read_to_string(&mut greeting))
        .await
        .expect("read");
    assert!(greeting.starts_with("421 4.3.2"), "{greeting}");
    // A closed session frees its place.
    assert!(
        open.pop()
            .expect("one")
            .cmd("QUIT")
            .await
            .starts_with("221")
    );
    let mut next = None;
    for _ in 0..100 {
        let mut s = tokio::net::TcpStream::connect(smtp).await.expect("connect");
        let mut first = [0u8; 3];
        s.read_exact(&mut first).await.expect("greeting");
        if &first == b"220" {
            next = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(next.is_some(), "no place freed by QUIT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_is_refused_unless_allowed() {
    let client = reqwest::Client::new();
    let (_sink, _, base) = sink(&[]).await;
    let resp = client
        .post(format!("{base}/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(
        body["detail"],
        "POST /reset is disabled: start the sink with --allow-reset (SINK_ALLOW_RESET=true)"
    );
    let (_sink, _, base) = sink(&[("SINK_ALLOW_RESET", "true")]).await;
    let resp = client
        .post(format!("{base}/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(resp.status(), 200);
}
