//! A fresh namespace per test (STYLE rule 17), deleted at the end. When the test fails, the
//! namespace's objects, events and the logs of the processes the test started are printed
//! first, so that a CI failure explains itself. `E2E_KEEP_NS=1` keeps failed namespaces.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use futures_util::FutureExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use crate::cluster::{Kubectl, client};
use crate::wait::wait_until;

/// Label on every namespace the suite creates.
pub const E2E_LABEL: &str = "pressure.mailproxy.dev/e2e";

/// A namespace created for one test, and a scratch folder for its processes' logs.
#[derive(Debug, Clone)]
pub struct TempNs {
    /// Namespace name.
    pub name: String,
    /// Scratch folder (logs, databases); removed when the test passes.
    pub dir: PathBuf,
}

impl TempNs {
    /// Creates `e2e-<prefix>-<random>` and waits for its `default` ServiceAccount.
    pub async fn create(client: &Client, prefix: &str) -> anyhow::Result<Self> {
        let name = format!("e2e-{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff);
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {E2E_LABEL: "true"}}
        }))?;
        api.create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        wait_until(
            sa,
            "default",
            Duration::from_secs(60),
            "the namespace's default ServiceAccount",
            |o: Option<&ServiceAccount>| o.is_some(),
        )
        .await?;
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir)?;
        Ok(Self { name, dir })
    }

    /// Deletes the namespace (without waiting) and the scratch folder.
    pub async fn delete(&self, client: &Client) -> anyhow::Result<()> {
        let api: Api<Namespace> = Api::all(client.clone());
        api.delete(&self.name, &DeleteParams::background())
            .await
            .with_context(|| format!("deleting namespace {}", self.name))?;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }

    /// Prints the namespace's objects and events and the tail of every log in the scratch folder.
    pub async fn dump(&self) {
        eprintln!("==== e2e: diagnostics of namespace {} ====", self.name);
        if let Ok(k) = Kubectl::new() {
            let n = self.name.as_str();
            for args in [
                vec!["get", "pressuretests", "-n", n, "-o", "yaml"],
                vec!["get", "all,cm,secret,hpa,pvc", "-n", n, "-o", "wide"],
                vec!["get", "events", "-n", n, "--sort-by=.lastTimestamp"],
            ] {
                if let Ok(out) = k.run(&args).await {
                    eprintln!("$ {}\n{}{}", out.command, out.stdout, out.stderr);
                }
            }
        }
        for log in logs_in(&self.dir) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(80)..];
            eprintln!("---- {} (last {} lines) ----", log.display(), tail.len());
            for l in tail {
                eprintln!("{l}");
            }
        }
    }
}

fn logs_in(dir: &PathBuf) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    logs.retain(|p| p.extension().is_some_and(|e| e == "log"));
    logs.sort();
    logs
}

/// Runs `test` with a client and a fresh namespace named after `prefix`; deletes the namespace
/// afterwards. On failure, prints diagnostics first (and keeps the namespace with
/// `E2E_KEEP_NS=1`).
pub async fn with_temp_ns<F, Fut>(prefix: &str, test: F) -> anyhow::Result<()>
where
    F: FnOnce(Client, TempNs) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let client = client().await?;
    let ns = TempNs::create(&client, prefix).await?;
    let outcome = AssertUnwindSafe(test(client.clone(), ns.clone()))
        .catch_unwind()
        .await;
    let failed = !matches!(outcome, Ok(Ok(())));
    if failed {
        ns.dump().await;
        if std::env::var_os("E2E_KEEP_NS").is_some() {
            eprintln!("e2e: keeping namespace {} (E2E_KEEP_NS)", ns.name);
        } else {
            let _ = ns.delete(&client).await;
        }
    }
    match outcome {
        Err(panic) => std::panic::resume_unwind(panic),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => ns.delete(&client).await,
    }
}
