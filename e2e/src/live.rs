//! Live figures without a container runtime: pods under kwok run nothing, so the test runs the
//! real `mailproxy` (SQLite in the scratch folder), `client-sim sink`, one `client-sim serve` per
//! tenant and `client-sim setup` on 127.0.0.1, each configured from the environment the operator
//! wrote into the matching Deployment or Job (credentials resolved from its Secret), with only
//! addresses and the database changed to local ones. The operator reads their figures through
//! `--endpoint-override` ([`LiveStack::overrides`]).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, Secret};
use kube::Client;
use kube::api::Api;
use mailproxy_proto::admin::SetupPlanV1;
use mailproxy_proto::stats::{ClientStatsV1, SinkStatsV1};
use pressure_crds::{Phase, PressureTest};

use crate::ns::TempNs;
use crate::operator::{Operator, endpoint_overrides};
use crate::procs::{Proc, binary, free_port};
use crate::wait::{is_complete, poll, wait_pt};

/// The local processes standing in for the pods of one PressureTest.
#[derive(Debug)]
pub struct LiveStack {
    ns: TempNs,
    pt: String,
    sink_smtp: u16,
    sink_http: u16,
    proxy_port: u16,
    client_ports: BTreeMap<String, u16>,
    procs: Vec<Proc>,
    http: reqwest::Client,
}

impl LiveStack {
    /// Reserves ports for the PressureTest `pt` with these tenants and starts the sink.
    pub async fn start_sink(ns: &TempNs, pt: &str, tenants: &[&str]) -> anyhow::Result<Self> {
        Self::start_sink_with(ns, pt, tenants, &[]).await
    }

    /// [`LiveStack::start_sink`] with extra `client-sim sink` arguments (fault injection).
    pub async fn start_sink_with(
        ns: &TempNs,
        pt: &str,
        tenants: &[&str],
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let mut client_ports = BTreeMap::new();
        for t in tenants {
            client_ports.insert(t.to_string(), free_port()?);
        }
        let mut stack = Self {
            ns: ns.clone(),
            pt: pt.into(),
            sink_smtp: free_port()?,
            sink_http: free_port()?,
            proxy_port: free_port()?,
            client_ports,
            procs: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
        };
        stack.spawn_sink(extra).await?;
        Ok(stack)
    }

    /// Starts `client-sim sink` on the reserved ports.
    async fn spawn_sink(&mut self, extra: &[&str]) -> anyhow::Result<()> {
        let mut args = vec![
            "sink".to_string(),
            "--smtp-listen".into(),
            format!("127.0.0.1:{}", self.sink_smtp),
            "--http-listen".into(),
            format!("127.0.0.1:{}", self.sink_http),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let url = format!("{}/health", self.sink_url());
        self.spawn("sink", &binary("client-sim")?, &args, &[], &url)
            .await
    }

    /// The `--endpoint-override` value naming these processes.
    pub fn overrides(&self) -> String {
        let clients: Vec<(String, String)> = self
            .client_ports
            .iter()
            .map(|(t, p)| (t.clone(), format!("http://127.0.0.1:{p}")))
            .collect();
        let refs: Vec<(&str, &str)> = clients
            .iter()
            .map(|(t, u)| (t.as_str(), u.as_str()))
            .collect();
        endpoint_overrides(&self.proxy_url(), &self.sink_url(), &refs)
    }

    /// Base URL of the local proxy.
    pub fn proxy_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy_port)
    }

    /// Base URL of the sink's HTTP side.
    pub fn sink_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.sink_http)
    }

    /// Starts `mailproxy` with the proxy Deployment's environment and the Secret's credentials,
    /// on a local SQLite database.
    pub async fn start_proxy(&mut self, client: &Client) -> anyhow::Result<()> {
        let name = format!("{}-proxy", self.pt);
        let c = deployment_container(client, &self.ns.name, &name).await?;
        let spool = self.ns.dir.join("spool");
        std::fs::create_dir_all(&spool)?;
        let mut env = container_env(client, &self.ns.name, &c).await?;
        set(
            &mut env,
            "GMP_DB_PATH",
            &self.ns.dir.join("proxy.db").display().to_string(),
        );
        set(&mut env, "GMP_HOST", "127.0.0.1");
        set(&mut env, "GMP_PORT", &self.proxy_port.to_string());
        set(&mut env, "GMP_SPOOL_DIR", &spool.display().to_string());
        // The clients run on loopback here, not behind the Services the Deployment lists.
        set(&mut env, "GMP_ATTACHMENT_ALLOWED_HOSTS", "127.0.0.1");
        let url = format!("{}/health", self.proxy_url());
        self.spawn("proxy", &binary("mailproxy")?, &[], &env, &url)
            .await
    }

    /// Starts one `client-sim serve` per tenant with its Deployment's command and environment
    /// (tenant, rates, seed, run id and load window), listening on its reserved port.
    pub async fn start_clients(&mut self, client: &Client) -> anyhow::Result<()> {
        let ports = self.client_ports.clone();
        for (tenant, port) in ports {
            let name = format!("{}-client-{tenant}", self.pt);
            let c = deployment_container(client, &self.ns.name, &name).await?;
            let mut args: Vec<String> = c.command.clone().unwrap_or_default();
            if args.first().is_some_and(|a| a == "client-sim") {
                args.remove(0);
            }
            if let Some(i) = args.iter().position(|a| a == "--listen") {
                args.truncate(i);
            }
            let mut env = container_env(client, &self.ns.name, &c).await?;
            set(&mut env, "CLIENT_ID", &format!("{name}-local"));
            set(&mut env, "CLIENT_LISTEN", "127.0.0.1");
            set(&mut env, "PORT", &port.to_string());
            let url = format!("http://127.0.0.1:{port}/health");
            let proc_name = format!("client-{tenant}");
            self.spawn(&proc_name, &binary("client-sim")?, &args, &env, &url)
                .await?;
        }
        Ok(())
    }

    /// Runs `client-sim setup` with the setup Job's plan, rewritten to the local addresses.
    pub async fn run_setup(&self, client: &Client) -> anyhow::Result<()> {
        let name = format!("{}-setup", self.pt);
        let jobs: Api<Job> = Api::namespaced(client.clone(), &self.ns.name);
        let job = jobs
            .get(&name)
            .await
            .with_context(|| format!("reading Job {name}"))?;
        let c = job
            .spec
            .and_then(|s| s.template.spec)
            .and_then(|p| p.containers.into_iter().next())
            .context("the setup Job has no container")?;
        let mut env = container_env(client, &self.ns.name, &c).await?;
        let plan_json = env
            .iter()
            .find(|(k, _)| k == "SETUP_PLAN")
            .map(|(_, v)| v.clone())
            .context("the setup Job has no SETUP_PLAN")?;
        let mut plan: SetupPlanV1 =
            serde_json::from_str(&plan_json).context("parsing SETUP_PLAN")?;
        for t in &mut plan.tenants {
            let port = self
                .client_ports
                .get(&t.tenant.id)
                .with_context(|| format!("no local client for tenant {}", t.tenant.id))?;
            t.tenant.client_base_url = Some(format!("http://127.0.0.1:{port}"));
            for a in &mut t.accounts {
                a.smtp_host = "127.0.0.1".into();
                a.smtp_port = self.sink_smtp;
            }
        }
        set(&mut env, "SETUP_PLAN", &serde_json::to_string(&plan)?);
        set(&mut env, "PROXY_URL", &self.proxy_url());
        set(&mut env, "SETUP_WAIT_SECONDS", "30");
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(binary("client-sim")?)
                .arg("setup")
                .envs(env)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .context("client-sim setup did not finish within 60 s")??;
        if !out.status.success() {
            bail!(
                "client-sim setup failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Runs the applied PressureTest `self.pt` to its end with these processes standing in for
    /// its pods: starts the proxy once its Deployment exists, the clients and the setup once the
    /// load window is published (checking they are up before it opens), then polls the status
    /// every second until `Complete` (the processes and the operator must stay up), for at most
    /// `limit`. Returns the final object and the largest `figures.sent` seen while Running.
    pub async fn drive(
        &mut self,
        client: &Client,
        op: &mut Operator,
        limit: Duration,
    ) -> anyhow::Result<(PressureTest, i64)> {
        Box::pin(self.drive_after(client, op, limit, None)).await
    }

    /// [`LiveStack::drive`] for a run after the run `previous` (a new `spec.runNumber`): waits
    /// for a load window of another run before it starts the clients.
    pub async fn drive_after(
        &mut self,
        client: &Client,
        op: &mut Operator,
        limit: Duration,
        previous: Option<&str>,
    ) -> anyhow::Result<(PressureTest, i64)> {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &self.ns.name);
        let proxy = format!("{}-proxy", self.pt);
        poll(
            Duration::from_secs(30),
            Duration::from_millis(100),
            "the proxy Deployment",
            || async { Ok(deployments.get_opt(&proxy).await?.map(|_| ())) },
        )
        .await?;
        self.start_proxy(client).await?;
        // Clients exist once the load window is published; they must run before it opens.
        let pts: Api<PressureTest> = Api::namespaced(client.clone(), &self.ns.name);
        let previous = previous.map(str::to_string);
        let pt = wait_pt(
            &pts,
            &self.pt,
            Duration::from_secs(90),
            "the load window",
            move |pt| {
                pt.status
                    .as_ref()
                    .is_some_and(|s| s.load_start_at.is_some() && s.run_id != previous)
            },
        )
        .await?;
        let start_at = pt.status.and_then(|s| s.load_start_at).unwrap_or(0);
        self.start_clients(client).await?;
        self.run_setup(client).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64;
        anyhow::ensure!(
            now < start_at,
            "clients and setup ready before the load starts ({now} < {start_at})"
        );
        let mut max_sent = 0;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            self.check_alive()?;
            op.check_alive()?;
            let pt = pts.get(&self.pt).await?;
            let s = pt.status.clone().unwrap_or_default();
            if s.phase == Some(Phase::Running) {
                max_sent = max_sent.max(s.figures.as_ref().map_or(0, |f| f.sent));
            }
            if is_complete(&pt) {
                return Ok((pt, max_sent));
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the run did not complete within {limit:?}; status: {s:?}"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Stops every process and starts the sink again on the same ports (with `extra`
    /// arguments), as a new run's rollout replaces the pods: the next [`LiveStack::drive_after`]
    /// starts a fresh proxy (on the same database) and fresh clients.
    pub async fn restart(&mut self, extra: &[&str]) -> anyhow::Result<()> {
        for p in self.procs.drain(..) {
            p.stop().await?;
        }
        self.spawn_sink(extra).await
    }

    /// The sink's `/stats`.
    pub async fn sink_stats(&self) -> anyhow::Result<SinkStatsV1> {
        self.get_json(&format!("{}/stats", self.sink_url())).await
    }

    /// A tenant client's `/stats`.
    pub async fn client_stats(&self, tenant: &str) -> anyhow::Result<ClientStatsV1> {
        let port = self.client_ports.get(tenant).context("unknown tenant")?;
        self.get_json(&format!("http://127.0.0.1:{port}/stats"))
            .await
    }

    /// `GET url` as JSON; an error status is an error.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> anyhow::Result<T> {
        Ok(self
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// An error if any process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        self.procs.iter_mut().try_for_each(Proc::check_alive)
    }

    async fn spawn(
        &mut self,
        name: &str,
        program: &std::path::Path,
        args: &[String],
        env: &[(String, String)],
        health: &str,
    ) -> anyhow::Result<()> {
        let mut p = Proc::spawn(name, program, args, env, &self.ns.dir)?;
        p.wait_http_ok(health, Duration::from_secs(30)).await?;
        self.procs.push(p);
        Ok(())
    }
}

/// The first container of the Deployment `name`.
async fn deployment_container(client: &Client, ns: &str, name: &str) -> anyhow::Result<Container> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d = api
        .get(name)
        .await
        .with_context(|| format!("reading Deployment {name}"))?;
    d.spec
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers.into_iter().next())
        .with_context(|| format!("Deployment {name} has no container"))
}

/// A container's environment as pairs: literal values, and Secret references resolved from the
/// API (field references are left out; the caller sets what it needs).
async fn container_env(
    client: &Client,
    ns: &str,
    c: &Container,
) -> anyhow::Result<Vec<(String, String)>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut out = Vec::new();
    for e in c.env.iter().flatten() {
        if let Some(v) = &e.value {
            out.push((e.name.clone(), v.clone()));
            continue;
        }
        let Some(r) = e
            .value_from
            .as_ref()
            .and_then(|f| f.secret_key_ref.as_ref())
        else {
            continue;
        };
        let secret = secrets
            .get(&r.name)
            .await
            .with_context(|| format!("reading Secret {}", r.name))?;
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&r.key))
            .with_context(|| format!("Secret {} has no key {}", r.name, r.key))?;
        out.push((e.name.clone(), String::from_utf8(value.0.clone())?));
    }
    Ok(out)
}

/// Sets `key` to `value`, replacing an earlier entry.
fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_string(), value.to_string()));
}
