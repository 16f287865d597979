//! Starting the environment: the sink, the proxy, the clients (and a forwarder per multi-replica
//! tenant), each awaited on its `/health`, then the setup step. A child that dies while starting
//! stops the run with the tail of its log.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::bins::Binaries;
use crate::children::Children;
use crate::layout::{self, Database, TenantSlot, Window};
use pressure_crds::PressureTestSpec;

/// Everything running, and where.
#[derive(Debug)]
pub struct Started {
    /// The processes.
    pub children: Children,
    /// The proxy's pid (for memory and CPU).
    pub proxy_pid: u32,
    /// The sink's pid.
    pub sink_pid: Option<u32>,
    /// Proxy base URL.
    pub proxy_url: String,
    /// Sink HTTP base URL.
    pub sink_http: Option<String>,
    /// The proxy's API token.
    pub token: String,
}

/// What to start.
#[derive(Debug)]
pub struct Plan<'a> {
    /// The spec.
    pub spec: &'a PressureTestSpec,
    /// Programs.
    pub bins: &'a Binaries,
    /// Scratch directory (database, logs).
    pub tmp: &'a Path,
    /// Store.
    pub db: Database,
    /// External SMTP server, else the sink.
    pub smtp: Option<std::net::SocketAddr>,
    /// Proxy port.
    pub proxy_port: u16,
    /// Sink SMTP port.
    pub sink_port: u16,
    /// API token.
    pub token: String,
    /// Run id.
    pub run_id: String,
}

/// Starts the sink and the proxy and waits for both.
pub async fn infrastructure(plan: &Plan<'_>, http: &reqwest::Client) -> anyhow::Result<Started> {
    let mut children = Children::default();
    let mut sink_pid = None;
    let mut sink_http = None;
    if plan.smtp.is_none() {
        let http_port = layout::free_port()?;
        let args: Vec<String> = [
            "sink".to_string(),
            "--smtp-listen".into(),
            format!("127.0.0.1:{}", plan.sink_port),
            "--http-listen".into(),
            format!("127.0.0.1:{http_port}"),
        ]
        .into();
        sink_pid = Some(children.spawn("sink", &plan.bins.client_sim, &args, &[], plan.tmp)?);
        let url = format!("http://127.0.0.1:{http_port}");
        wait_healthy(&mut children, http, &format!("{url}/health"), "sink").await?;
        sink_http = Some(url);
    }
    let env = layout::proxy_env(plan.spec, &plan.db, plan.proxy_port, &plan.token, plan.tmp);
    for dir in ["spool", "cache"] {
        std::fs::create_dir_all(plan.tmp.join(dir))?;
    }
    let proxy_pid = children.spawn("proxy", &plan.bins.mailproxy, &[], &env, plan.tmp)?;
    let proxy_url = format!("http://127.0.0.1:{}", plan.proxy_port);
    wait_healthy(&mut children, http, &format!("{proxy_url}/health"), "proxy").await?;
    Ok(Started {
        children,
        proxy_pid,
        sink_pid,
        sink_http,
        proxy_url,
        token: plan.token.clone(),
    })
}

/// Starts every client replica and the forwarders, and waits for them.
pub async fn clients(
    plan: &Plan<'_>,
    started: &mut Started,
    tenants: &[TenantSlot],
    w: &Window,
    http: &reqwest::Client,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<()> {
    for slot in tenants.iter().flat_map(|t| &t.clients) {
        let args: Vec<String> = std::iter::once("serve".to_string())
            .chain(layout::client_args(plan.spec, slot, &plan.run_id, w))
            .collect();
        let name = format!("client {}", slot.client_id);
        started
            .children
            .spawn(&name, &plan.bins.client_sim, &args, &[], plan.tmp)?;
    }
    for t in tenants {
        if let Some(port) = t.forwarder_port {
            let listener = TcpListener::bind(("127.0.0.1", port))
                .await
                .with_context(|| format!("cannot listen on 127.0.0.1:{port} for {}", t.name))?;
            let urls = t
                .clients
                .iter()
                .map(|c| format!("http://127.0.0.1:{}", c.port))
                .collect();
            let mut stop = stop.clone();
            tokio::spawn(crate::forward::serve(listener, urls, async move {
                let _ = stop.wait_for(|s| *s).await;
            }));
        }
    }
    for slot in tenants.iter().flat_map(|t| &t.clients) {
        let url = format!("http://127.0.0.1:{}/health", slot.port);
        wait_healthy(&mut started.children, http, &url, &slot.client_id).await?;
    }
    Ok(())
}

/// Runs `client-sim setup` with the plan; fails with its output.
pub async fn setup(
    plan: &Plan<'_>,
    started: &Started,
    tenants: &[TenantSlot],
) -> anyhow::Result<()> {
    let (host, port) = match plan.smtp {
        Some(a) => (a.ip().to_string(), a.port()),
        None => ("127.0.0.1".to_string(), plan.sink_port),
    };
    let json = serde_json::to_string(&layout::setup_plan(tenants, &host, port))?;
    let mut cmd = tokio::process::Command::new(&plan.bins.client_sim);
    cmd.args([
        "setup",
        "--proxy-url",
        &started.proxy_url,
        "--wait-seconds",
        "30",
    ])
    .arg("--plan-json")
    .arg(json)
    .env("GMP_API_TOKEN", &plan.token)
    .kill_on_drop(true);
    let secs = plan.spec.timeouts.setup_seconds.max(10) as u64;
    let out = tokio::time::timeout(Duration::from_secs(secs), cmd.output())
        .await
        .with_context(|| format!("the setup step did not finish within {secs} s"))?
        .context("cannot run `client-sim setup`")?;
    if !out.status.success() {
        bail!(
            "the setup step failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Polls `url` until it answers 200; fails when the process dies or after 60 s.
async fn wait_healthy(
    children: &mut Children,
    http: &reqwest::Client,
    url: &str,
    what: &str,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(why) = children.exited() {
            bail!("{why}");
        }
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{what} did not answer {url} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
