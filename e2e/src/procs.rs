//! Child processes of a test: the workspace binaries (`pressure-operator`, `mailproxy`,
//! `client-sim`) found in the target directory the tests were built in, started with their
//! output in a log file and killed when dropped; free loopback ports; HTTP readiness waits.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::wait::poll;

/// The folder holding the workspace binaries: `E2E_BIN_DIR`, else the profile folder this test
/// executable was built into (`target/debug/deps/e2e_x-…` → `target/debug`).
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("E2E_BIN_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .context("the test executable has no profile folder")
}

/// Path of the workspace binary `name`; an error saying how to build it when it is missing.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir()?.join(name);
    if !path.is_file() {
        bail!(
            "{} not found: build it first (`cargo build -p pressure-operator -p mailproxy -p client-sim -p kubectl-pressure` \
             with the same CARGO_TARGET_DIR, as e2e/run.sh does), or set E2E_BIN_DIR",
            path.display()
        );
    }
    Ok(path)
}

/// First port [`free_port`] hands out; with [`PORT_SPAN`], the range ends at 32767, below the
/// kernel's default ephemeral range (32768–60999).
const PORT_LOW: u32 = 20_000;
/// How many ports [`free_port`] cycles through.
const PORT_SPAN: u32 = 12_768;

/// A free TCP port on 127.0.0.1 for a child process to listen on, never the same twice in one
/// test process.
///
/// A port from `bind(127.0.0.1:0)` is released before the child binds it, and in that gap the
/// kernel may give it to any outgoing connection (to the API server, to a replica) or to another
/// test thread's `bind(0)`: the child then fails with "address in use". These ports come from
/// below the ephemeral range instead, which the kernel never hands out by itself; a counter keeps
/// the threads of one test process apart, a start derived from the process id keeps test
/// processes apart, and a port found taken is skipped.
pub fn free_port() -> anyhow::Result<u16> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7_919) % PORT_SPAN;
    for _ in 0..PORT_SPAN {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = u16::try_from(PORT_LOW + (start + n) % PORT_SPAN)?;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!(
        "no free port on 127.0.0.1 between {PORT_LOW} and {}",
        PORT_LOW + PORT_SPAN - 1
    )
}

/// A running child process, killed when dropped; its output goes to `<dir>/<name>.log`.
#[derive(Debug)]
pub struct Proc {
    /// Short name, for messages.
    pub name: String,
    /// The log file.
    pub log: PathBuf,
    child: Child,
}

impl Proc {
    /// Starts `program args…` with `env` added, logging to `dir/name.log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        Ok(Self {
            name: name.into(),
            log,
            child,
        })
    }

    /// An error when the process has exited, with the end of its log.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); end of {}:\n{}",
                self.name,
                self.log.display(),
                tail(&self.log, 30)
            );
        }
        Ok(())
    }

    /// Waits until `url` answers 2xx (at most `timeout`), failing early if the process exits.
    pub async fn wait_http_ok(&mut self, url: &str, timeout: Duration) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let what = format!("{} to answer {url}", self.name);
        poll(timeout, Duration::from_millis(100), &what, || {
            let alive = self.check_alive();
            let req = http.get(url).send();
            async move {
                alive?;
                let ok = req.await.is_ok_and(|r| r.status().is_success());
                Ok(ok.then_some(()))
            }
        })
        .await
    }

    /// Kills the process and waits until it has exited (its ports are free again).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child
            .kill()
            .await
            .with_context(|| format!("stopping {}", self.name))
    }

    /// Process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
