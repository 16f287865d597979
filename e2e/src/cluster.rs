//! The cluster under test: `KUBECONFIG` must name it (a test without it fails and says how to run
//! the suite), `E2E_KUBECTL` the kubectl to use (default `kubectl` on `PATH`).

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, bail};
use kube::Client;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// What to tell someone who ran the tests without a cluster.
pub const HOW_TO_RUN: &str = "KUBECONFIG is not set: the e2e tests need a running API server. \
Run `./scripts/test.sh`, or `e2e/run.sh DIR` (starts the local control plane in DIR, builds the \
binaries and runs these tests), or start one with `e2e/control-plane.sh up DIR` and set \
KUBECONFIG=DIR/kubeconfig E2E_KUBECTL=DIR/kubectl";

/// The kubeconfig path; an error with [`HOW_TO_RUN`] when `KUBECONFIG` is unset or empty.
pub fn kubeconfig() -> anyhow::Result<PathBuf> {
    match std::env::var_os("KUBECONFIG") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => bail!("{HOW_TO_RUN}"),
    }
}

/// A kube client for the cluster named by `KUBECONFIG`.
pub async fn client() -> anyhow::Result<Client> {
    let path = kubeconfig()?;
    let config = kube::Config::infer()
        .await
        .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
    Client::try_from(config).context("building the kube client")
}

/// The repository root (for the chart and the examples).
pub fn repo_root() -> PathBuf {
    let manifest = manifest_dir();
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}

/// What a kubectl call printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    /// Exit status 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Standard output when the command succeeded, else an error with everything it printed.
    pub fn ok(self) -> anyhow::Result<String> {
        if self.success {
            return Ok(self.stdout);
        }
        bail!("`{}` failed:\n{}{}", self.command, self.stdout, self.stderr)
    }

    /// Standard error when the command failed, else an error (it was expected to fail).
    pub fn err(self) -> anyhow::Result<String> {
        if !self.success {
            return Ok(self.stderr);
        }
        bail!(
            "`{}` succeeded but was expected to fail:\n{}",
            self.command,
            self.stdout
        )
    }
}

/// Runs kubectl against the cluster in `KUBECONFIG`.
#[derive(Debug, Clone)]
pub struct Kubectl {
    program: PathBuf,
}

impl Kubectl {
    /// `E2E_KUBECTL`, else `kubectl` on `PATH`; fails without `KUBECONFIG`.
    pub fn new() -> anyhow::Result<Self> {
        kubeconfig()?;
        let program = std::env::var_os("E2E_KUBECTL")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from("kubectl"), PathBuf::from);
        Ok(Self { program })
    }

    /// Runs `kubectl args…` and captures its output.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.run_with_input(args, None).await
    }

    /// Runs `kubectl args…` with `input` on standard input (e.g. `apply -f -`).
    pub async fn run_with_input(
        &self,
        args: &[&str],
        input: Option<&str>,
    ) -> anyhow::Result<Output> {
        let command = format!("kubectl {}", args.join(" "));
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} (set E2E_KUBECTL)", self.program.display()))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes()).await?;
        }
        let out = child.wait_with_output().await?;
        Ok(Output {
            command,
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// `kubectl apply -n ns -f -` of a YAML document; fails with kubectl's message.
    pub async fn apply(&self, ns: &str, yaml: &str) -> anyhow::Result<String> {
        self.run_with_input(&["apply", "-n", ns, "-f", "-"], Some(yaml))
            .await?
            .ok()
    }
}

/// This crate's folder, read at run time (`cargo test` sets it): a test binary reused from a
/// shared target folder may have been built from another clone of the same sources, whose path
/// `env!` would have baked in.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
