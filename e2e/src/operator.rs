//! The operator under test: the `pressure-operator` binary as a child process watching one
//! namespace, with its own Lease in that namespace, killed on drop. Its log goes to the test's
//! scratch folder (printed when the test fails).

use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::Api;

use crate::ns::TempNs;
use crate::procs::{Proc, binary, free_port};
use crate::wait::wait_until;

/// Base URL that refuses connections at once: for figure endpoints of tests that do not run the
/// live processes, so the operator never dials a (fake) pod IP outside loopback.
pub const DEAD_URL: &str = "http://127.0.0.1:1";

/// A running operator.
#[derive(Debug)]
pub struct Operator {
    /// The process.
    pub proc: Proc,
    /// Base URL of its `/metrics`, `/healthz` and `/readyz`.
    pub http: String,
    /// Name of its Lease (in the test namespace).
    pub lease: String,
}

/// `--endpoint-override` with every key pointing at a refusing loopback port.
pub fn dead_overrides(tenants: &[&str]) -> String {
    endpoint_overrides(
        DEAD_URL,
        DEAD_URL,
        &tenants.iter().map(|t| (*t, DEAD_URL)).collect::<Vec<_>>(),
    )
}

/// `--endpoint-override` naming the proxy, the sink and each tenant's client.
pub fn endpoint_overrides(proxy: &str, sink: &str, clients: &[(&str, &str)]) -> String {
    let mut items = vec![format!("proxy={proxy}"), format!("sink={sink}")];
    items.extend(clients.iter().map(|(t, url)| format!("client/{t}={url}")));
    items.join(",")
}

impl Operator {
    /// Name of the Lease the test's operators use in `ns`.
    pub fn lease_name(ns: &TempNs) -> String {
        format!("op-{}", ns.name)
    }

    /// Starts the operator on `ns` with these endpoint overrides, and waits until it answers
    /// `/readyz` and holds its Lease (so the controller is about to run).
    pub async fn start(client: &Client, ns: &TempNs, overrides: &str) -> anyhow::Result<Self> {
        Self::start_with_env(client, ns, overrides, &[]).await
    }

    /// [`Operator::start`] with extra environment variables (e.g. another `KUBECONFIG`).
    pub async fn start_with_env(
        client: &Client,
        ns: &TempNs,
        overrides: &str,
        extra_env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let identity = format!("e2e-{}", ns.name);
        let op = Self::spawn(ns, overrides, "operator", &identity, &[], extra_env).await?;
        let leases: Api<Lease> = Api::namespaced(client.clone(), &ns.name);
        wait_until(
            leases,
            &op.lease,
            Duration::from_secs(30),
            "the operator to take its Lease",
            |l: Option<&Lease>| {
                l.and_then(|l| l.spec.as_ref())
                    .and_then(|s| s.holder_identity.as_deref())
                    .is_some()
            },
        )
        .await?;
        Ok(op)
    }

    /// Starts one replica (log `<name>.log`, identity `identity`, the test's Lease, `extra_args`
    /// appended) and waits until it answers `/readyz`; it may or may not lead.
    pub async fn spawn(
        ns: &TempNs,
        overrides: &str,
        name: &str,
        identity: &str,
        extra_args: &[&str],
        extra_env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let lease = Self::lease_name(ns);
        let mut args: Vec<String> = [
            "--watch-namespace",
            &ns.name,
            "--lease-name",
            &lease,
            "--lease-namespace",
            &ns.name,
            "--identity",
            identity,
            "--http-listen",
            &format!("127.0.0.1:{port}"),
            "--endpoint-override",
            overrides,
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let mut env = vec![("RUST_LOG".to_string(), "info".to_string())];
        env.extend_from_slice(extra_env);
        let program = binary("pressure-operator")?;
        let mut proc = Proc::spawn(name, &program, &args, &env, &ns.dir)?;
        let http = format!("http://127.0.0.1:{port}");
        proc.wait_http_ok(&format!("{http}/readyz"), Duration::from_secs(30))
            .await
            .with_context(|| format!("{name} did not become ready"))?;
        Ok(Self { proc, http, lease })
    }

    /// An error if the operator has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        self.proc.check_alive()
    }

    /// The operator's `/metrics` text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let text = reqwest::get(format!("{}/metrics", self.http))
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(text)
    }
}
