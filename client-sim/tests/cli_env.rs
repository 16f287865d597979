//! The built binary honours the seed's environment variables: `client-sim serve` started with
//! `CLIENT_ID`, `TENANT_ID`, `MSG_RATE_PER_SYNC`, ... answers `/stats` and `/sync` accordingly;
//! `client-sim sink` takes its `SINK_*` variables; `healthcheck` exits 0 only on 200.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_client-sim");

/// A free loopback port (bound, then released for the child).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(url: &str) {
    for _ in 0..200 {
        if reqwest::get(url).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never became ready");
}

fn spawn(args: &[&str], envs: &[(&str, String)]) -> Killed {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Killed(cmd.spawn().expect("spawn client-sim"))
}

#[tokio::test]
async fn serve_reads_the_seed_environment() {
    let port = free_port();
    let envs = [
        ("PORT", port.to_string()),
        ("CLIENT_PROFILE", "newsletter".to_owned()),
        ("CLIENT_ID", "env-client".to_owned()),
        ("TENANT_ID", "tenant-env".to_owned()),
        ("MSG_RATE_PER_SYNC", "8".to_owned()),
        ("DND_PROBABILITY", "1.0".to_owned()),
        ("ATTACHMENT_CACHE_HIT_RATE", "1.0".to_owned()),
        ("LARGE_ATTACHMENT_RATE", "0".to_owned()),
        ("CLIENT_SEED", "5".to_owned()),
        ("RUN_ID", "env-run".to_owned()),
        ("DND_MIN_SECONDS", "40".to_owned()),
        ("DND_MAX_SECONDS", "41".to_owned()),
    ];
    let _child = spawn(&["serve"], &envs);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/health")).await;
    let http = reqwest::Client::new();
    let mut messages = Vec::new();
    for _ in 0..10 {
        let now = client_sim::unix_micros() as f64 / 1e6;
        let a: Value = http
            .post(format!("{base}/sync"))
            .json(&json!({"delivery_report": []}))
            .send()
            .await
            .expect("sync")
            .json()
            .await
            .expect("json");
        let until = a["next_sync_after"]
            .as_f64()
            .expect("DND_PROBABILITY=1 always answers DND");
        assert!(
            until >= now + 39.0 && until <= now + 42.0,
            "{until} vs {now}"
        );
        messages.extend(a["messages"].as_array().cloned().unwrap_or_default());
    }
    assert!(!messages.is_empty());
    for m in &messages {
        assert!(
            m["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("tenant-env-"))
        );
        assert_eq!(m["headers"]["X-Pressure-Run-Id"], "env-run");
        if let Some(att) = m["attachments"].as_array() {
            // Hit rate 1: every attachment carries a marker; large rate 0: nothing above 2 MiB.
            assert!(
                att[0]["filename"]
                    .as_str()
                    .is_some_and(|f| f.contains("{MD5:"))
            );
            let path = att[0]["storage_path"].as_str().expect("path");
            let size: u64 = path
                .split('&')
                .find_map(|p| p.strip_prefix("size="))
                .and_then(|s| s.parse().ok())
                .expect("size");
            assert!(size <= 2_097_152);
        }
    }
    let s: Value = http
        .get(format!("{base}/stats"))
        .send()
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(s["client_id"], "env-client");
    assert_eq!(s["tenant_id"], "tenant-env");
    assert_eq!(s["sync_calls"], 10);
    assert_eq!(s["dnd_periods"], 10);
    assert_eq!(
        s["messages_generated"].as_u64(),
        Some(messages.len() as u64)
    );
}

#[tokio::test]
async fn a_bad_variable_is_refused_with_a_clear_message() {
    let out = Command::new(BIN)
        .args(["serve"])
        .env("DND_PROBABILITY", "1.5")
        .env("PORT", free_port().to_string())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DND_PROBABILITY must be between 0 and 1"),
        "{stderr}"
    );
}

#[tokio::test]
async fn sink_reads_its_environment_and_healthcheck_probes_it() {
    let (smtp, http) = (free_port(), free_port());
    let envs = [
        ("SINK_SMTP_LISTEN", format!("127.0.0.1:{smtp}")),
        ("SINK_HTTP_LISTEN", format!("127.0.0.1:{http}")),
        ("SINK_FAIL_5XX_PERMILLE", "1000".to_owned()),
    ];
    let _child = spawn(&["sink"], &envs);
    let health = format!("http://127.0.0.1:{http}/health");
    wait_ready(&health).await;
    let status = Command::new(BIN)
        .args(["healthcheck", "--url", &health])
        .status()
        .expect("hc");
    assert!(status.success());
    let closed = format!("http://127.0.0.1:{}/health", free_port());
    let status = Command::new(BIN)
        .args(["healthcheck", "--url", &closed])
        .status()
        .expect("hc");
    assert!(!status.success());
    // Every message refused with 550, as SINK_FAIL_5XX_PERMILLE=1000 says.
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", smtp))
        .await
        .expect("connect");
    let (r, mut w) = stream.into_split();
    let mut r = tokio::io::BufReader::new(r);
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    w.write_all(b"HELO h\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n")
        .await
        .expect("w");
    let mut line = String::new();
    for _ in 0..5 {
        line.clear();
        r.read_line(&mut line).await.expect("r");
    }
    assert!(line.starts_with("354"), "{line}");
    w.write_all(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        .await
        .expect("w");
    line.clear();
    r.read_line(&mut line).await.expect("r");
    assert!(line.starts_with("550"), "{line}");
}
