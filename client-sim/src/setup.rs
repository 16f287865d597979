//! The setup step: registers each tenant and its SMTP accounts with the proxy's classic REST API
//! (`POST /tenant`, `POST /account`, header `X-API-Token`), after waiting for `GET /health`.
//! The proxy upserts, so running it twice changes nothing. A refusal stops the step with the
//! proxy's own `detail`.
//!
//! Without a plan it registers the seed's four tenants (README, `setup`), so the
//! compose file works unchanged.

use std::path::PathBuf;
use std::time::Duration;

use mailproxy_proto::admin::{AccountV1, SetupPlanV1, SetupTenantV1, TenantV1};
use serde::Serialize;
use tokio::time::Instant;

use crate::{Error, Result};

/// Flags of `client-sim setup`.
#[derive(Debug, Clone, clap::Args)]
pub struct SetupArgs {
    /// Base URL of the proxy.
    #[arg(long, env = "PROXY_URL", default_value = "http://127.0.0.1:8000")]
    pub proxy_url: String,
    /// Admin token sent as `X-API-Token` (none: no header).
    #[arg(long, env = "GMP_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// File holding a `SetupPlanV1` as JSON.
    #[arg(long, env = "SETUP_PLAN_FILE", conflicts_with = "plan_json")]
    pub plan: Option<PathBuf>,
    /// A `SetupPlanV1` as inline JSON.
    #[arg(long, env = "SETUP_PLAN")]
    pub plan_json: Option<String>,
    /// How long to wait for the proxy's `/health` to answer 200, seconds.
    #[arg(long, env = "SETUP_WAIT_SECONDS", default_value_t = 120)]
    pub wait_seconds: u64,
    /// SMTP host of the default plan's accounts.
    #[arg(long, env = "SETUP_SMTP_HOST", default_value = "mailhog")]
    pub smtp_host: String,
    /// SMTP port of the default plan's accounts.
    #[arg(long, env = "SETUP_SMTP_PORT", default_value_t = 1025)]
    pub smtp_port: u16,
    /// Client base URL of the default plan; `{name}` becomes the profile name.
    #[arg(
        long,
        env = "SETUP_CLIENT_URL_TEMPLATE",
        default_value = "http://client-{name}:8080"
    )]
    pub client_url_template: String,
}

/// The seed's four tenants, each with one account.
pub fn default_plan(smtp_host: &str, smtp_port: u16, client_url_template: &str) -> SetupPlanV1 {
    let tenants = [
        ("high-volume", "High Volume Tenant"),
        ("standard", "Standard Tenant"),
        ("newsletter", "Newsletter Tenant"),
        ("documents", "Documents Tenant"),
    ];
    let tenants = tenants
        .iter()
        .map(|(name, display)| SetupTenantV1 {
            tenant: TenantV1 {
                id: format!("tenant-{name}"),
                name: Some((*display).to_owned()),
                active: Some(true),
                client_base_url: Some(client_url_template.replace("{name}", name)),
                client_sync_path: Some("/sync".to_owned()),
                client_attachment_path: Some("/attachments".to_owned()),
                default_account_id: None,
            },
            accounts: vec![AccountV1 {
                id: format!("smtp-{name}"),
                tenant_id: format!("tenant-{name}"),
                smtp_host: smtp_host.to_owned(),
                smtp_port,
                smtp_user: Some("test".to_owned()),
                smtp_password: Some("test".to_owned()),
                sender_email: Some(format!("noreply@{name}.test")),
                use_tls: Some(false),
                use_ssl: Some(false),
                batch_size: None,
            }],
        })
        .collect();
    SetupPlanV1 { tenants }
}

impl SetupArgs {
    /// The plan from `--plan`, `--plan-json`, or the default.
    pub fn load_plan(&self) -> Result<SetupPlanV1> {
        let parse = |text: &str, source: &str| {
            serde_json::from_str(text)
                .map_err(|e| Error::Config(format!("{source} is not a valid SetupPlanV1: {e}")))
        };
        if let Some(path) = &self.plan {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!("cannot read --plan {}: {e}", path.display()))
            })?;
            return parse(&text, "--plan file");
        }
        if let Some(json) = &self.plan_json {
            return parse(json, "--plan-json (SETUP_PLAN)");
        }
        Ok(default_plan(
            &self.smtp_host,
            self.smtp_port,
            &self.client_url_template,
        ))
    }
}

/// Waits for the proxy, then registers the plan.
pub async fn run(args: &SetupArgs) -> Result<()> {
    let plan = args.load_plan()?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::Http(format!("cannot build the HTTP client: {e}")))?;
    let base = args.proxy_url.trim_end_matches('/');
    wait_healthy(&client, base, Duration::from_secs(args.wait_seconds)).await?;
    let token = args.api_token.as_deref();
    let mut accounts = 0;
    for entry in &plan.tenants {
        let id = &entry.tenant.id;
        post(
            &client,
            base,
            "/tenant",
            token,
            &entry.tenant,
            &format!("tenant '{id}'"),
        )
        .await?;
        for account in &entry.accounts {
            let what = format!("account '{}' of tenant '{}'", account.id, account.tenant_id);
            post(&client, base, "/account", token, account, &what).await?;
            accounts += 1;
        }
        tracing::info!(tenant = %id, accounts = entry.accounts.len(), "Tenant registered.");
    }
    tracing::info!(tenants = plan.tenants.len(), accounts, proxy = %base, "Setup complete.");
    Ok(())
}

async fn wait_healthy(client: &reqwest::Client, base: &str, wait: Duration) -> Result<()> {
    let deadline = Instant::now() + wait;
    let url = format!("{base}/health");
    loop {
        let last = match client
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(r) if r.status() == reqwest::StatusCode::OK => return Ok(()),
            Ok(r) => format!("HTTP {}", r.status()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(Error::Http(format!(
                "the proxy at {base} was not healthy within {}s (last: {last}); check PROXY_URL",
                wait.as_secs()
            )));
        }
        tracing::debug!(%url, %last, "Waiting for the proxy.");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: &impl Serialize,
    what: &str,
) -> Result<()> {
    let mut request = client.post(format!("{base}{path}")).json(body);
    if let Some(token) = token {
        request = request.header("X-API-Token", token);
    }
    let response = request
        .send()
        .await
        .map_err(|e| Error::Http(format!("POST {path} for {what} failed: {e}")))?;
    let status = response.status();
    if status.is_success() {
        // The answer may carry a new tenant's API key: deliberately neither kept nor logged.
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("detail").cloned())
        .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_owned))
        .unwrap_or(text);
    Err(Error::Http(format!(
        "the proxy refused POST {path} for {what}: HTTP {status}: {detail}"
    )))
}
