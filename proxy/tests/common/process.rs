//! The real `mailproxy` binary as a child process: started with chosen environment variables,
//! its output captured to a file, stopped with a real signal (SIGTERM or SIGKILL).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::process::{Child, Command};

use super::{Api, wait_for};

/// The key every test replica shares (base64 of 32 bytes).
pub const KEY: &str = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";

/// A free port on 127.0.0.1 for a replica to listen on, never the same twice in one test
/// process. Taken from 20000–32767, below the kernel's ephemeral range: a port from `bind(0)`,
/// released before the replica binds it, can meanwhile become the source port of any outgoing
/// connection (e2e/src/procs.rs `free_port` says more).
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_768;
    let start = std::process::id().wrapping_mul(7_919) % SPAN;
    (0..SPAN)
        .map(|_| NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
        .map(|n| u16::try_from(LOW + (start + n) % SPAN).expect("below 32768"))
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("no free port on 127.0.0.1 between 20000 and 32767")
}

/// A running proxy process.
pub struct Proxy {
    pub child: Child,
    pub api: Api,
    pub port: u16,
    /// stdout and stderr of the process.
    pub log: PathBuf,
}

impl Proxy {
    /// Starts the binary on `db_url` with the test defaults plus `env`, logging to
    /// `<log_dir>/proxy-<port>.log`; waits for `/health`.
    pub async fn start(db_url: &str, env: &[(&str, &str)], log_dir: &Path) -> Proxy {
        Self::start_on(free_port(), db_url, env, log_dir).await
    }

    /// Like [`Proxy::start`] on a chosen port (to restart a replica where it was).
    pub async fn start_on(port: u16, db_url: &str, env: &[(&str, &str)], log_dir: &Path) -> Proxy {
        let log = log_dir.join(format!("proxy-{port}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailproxy"));
        cmd.env_remove("RUST_LOG");
        cmd.env("GMP_DB_PATH", db_url)
            .env("GMP_HOST", "127.0.0.1")
            .env("GMP_PORT", port.to_string())
            .env("GMP_API_TOKEN", "admin-token")
            .env("MAIL_PROXY_ENCRYPTION_KEY", KEY)
            .env("GMP_SEND_LOOP_INTERVAL", "0.05")
            .env("GMP_LOG_LEVEL", "WARNING")
            // Test applications and file servers run on loopback, refused unless listed.
            .env("GMP_ATTACHMENT_ALLOWED_HOSTS", "127.0.0.1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let api = Api::at(&format!("http://127.0.0.1:{port}"));
        let up = wait_for(30, || async {
            reqwest::get(format!("{}/health", api.base))
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(up, "proxy on port {port} did not start: {}", read(&log));
        Proxy {
            child,
            api,
            port,
            log,
        }
    }

    /// Sends `signal` (`TERM`, `KILL`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("still running");
        let ok = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} {pid}");
    }

    /// Sends SIGTERM and waits for the exit; the time it took.
    pub async fn terminate(mut self) -> (Duration, std::process::ExitStatus) {
        let started = Instant::now();
        self.signal("TERM");
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("exits within 60 s of SIGTERM")
            .unwrap();
        (started.elapsed(), status)
    }

    /// What the process has logged so far.
    pub fn output(&self) -> String {
        read(&self.log)
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
