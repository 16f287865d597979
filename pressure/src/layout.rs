//! The run's layout on loopback, computed before anything starts: ports, each process's
//! arguments and environment, and the setup plan. Pure apart from picking free ports.

use std::net::TcpListener;
use std::path::Path;

use mailproxy_proto::admin::SetupPlanV1;
use pressure_crds::{PressureTestSpec, ProfileRates};

/// One simulated client replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSlot {
    /// Tenant name (the proxy tenant id and `TENANT_ID`).
    pub tenant: String,
    /// `CLIENT_ID`: `<tenant>-<n>`.
    pub client_id: String,
    /// Listening port.
    pub port: u16,
    /// `CLIENT_SEED`.
    pub seed: u64,
}

/// Where a tenant's clients are reached by the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSlot {
    /// Tenant name.
    pub name: String,
    /// Its replicas.
    pub clients: Vec<ClientSlot>,
    /// Port of the round-robin forwarder, when there are several replicas.
    pub forwarder_port: Option<u16>,
}

impl TenantSlot {
    /// The base URL the proxy syncs with.
    pub fn url(&self) -> String {
        let port = self
            .forwarder_port
            .or_else(|| self.clients.first().map(|c| c.port))
            .unwrap_or(0);
        format!("http://127.0.0.1:{port}")
    }
}

/// A free port on 127.0.0.1 (bound, then released for the child to take), never one this
/// process handed out before: two `bind(0)` in a row can return the same port once the first is
/// released, and two children would then fight over it.
pub fn free_port() -> std::io::Result<u16> {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in 0..64 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if !given.contains(&port) {
            given.push(port);
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "bind(127.0.0.1:0) kept returning ports already handed out",
    ))
}

/// Tenants with their replicas, seeds and ports. Seeds: spec seed × 1000 + tenant × 50 + replica.
pub fn tenants(spec: &PressureTestSpec) -> std::io::Result<Vec<TenantSlot>> {
    spec.tenants
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let n = t.clients.max(1) as usize;
            let clients = (0..n)
                .map(|r| {
                    Ok(ClientSlot {
                        tenant: t.name.clone(),
                        client_id: format!("{}-{}", t.name, r + 1),
                        port: free_port()?,
                        seed: (spec.seed.max(0) as u64) * 1000 + (i as u64) * 50 + r as u64,
                    })
                })
                .collect::<std::io::Result<Vec<_>>>()?;
            Ok(TenantSlot {
                name: t.name.clone(),
                clients,
                forwarder_port: if n > 1 { Some(free_port()?) } else { None },
            })
        })
        .collect()
}

/// The load window handed to every client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// `START_AT`, Unix seconds.
    pub start_at: u64,
    /// `STOP_AT`, Unix seconds.
    pub stop_at: u64,
    /// Longest do-not-disturb answer, seconds (scaled to the run).
    pub dnd_max: u64,
}

/// Do-not-disturb periods scaled to a local run: at most a sixth of the load, 2..300 s.
pub fn dnd_max_seconds(load_seconds: u64) -> u64 {
    (load_seconds / 6).clamp(2, 300)
}

/// `client-sim serve` arguments for one replica.
pub fn client_args(
    spec: &PressureTestSpec,
    slot: &ClientSlot,
    run_id: &str,
    w: &Window,
) -> Vec<String> {
    let rates = spec
        .tenants
        .iter()
        .find(|t| t.name == slot.tenant)
        .map(|t| t.effective_rates())
        .unwrap_or_else(|| pressure_crds::Profile::Standard.rates());
    let p = ProfileRates::permille_str;
    [
        ("--client-id", slot.client_id.clone()),
        ("--tenant-id", slot.tenant.clone()),
        ("--msg-rate-per-sync", rates.messages_per_sync.to_string()),
        (
            "--attachment-cache-hit-rate",
            p(rates.cache_hit_rate_permille),
        ),
        ("--dnd-probability", p(rates.dnd_probability_permille)),
        (
            "--large-attachment-rate",
            p(rates.large_attachment_rate_permille),
        ),
        ("--listen", "127.0.0.1".into()),
        ("--port", slot.port.to_string()),
        ("--seed", slot.seed.to_string()),
        ("--run-id", run_id.into()),
        ("--start-at", w.start_at.to_string()),
        ("--stop-at", w.stop_at.to_string()),
        ("--dnd-min-seconds", "1".into()),
        ("--dnd-max-seconds", w.dnd_max.to_string()),
    ]
    .into_iter()
    .chain((!spec.stages.is_empty()).then(|| {
        (
            "--load-stages",
            pressure_crds::spec::stages::env_json(&spec.stages),
        )
    }))
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect()
}

/// Where the proxy stores its queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded SQLite file in the run's temp dir.
    Sqlite,
    /// A PostgreSQL URL.
    Postgres(String),
}

/// The proxy's environment: store, listener, token, the spec's `GMP_*` tuning and settings,
/// scratch dirs.
pub fn proxy_env(
    spec: &PressureTestSpec,
    db: &Database,
    port: u16,
    token: &str,
    tmp: &Path,
) -> Vec<(String, String)> {
    let t = &spec.proxy.tuning;
    let ms = t.send_loop_interval_ms.max(1);
    let mut env = vec![
        ("GMP_HOST", "127.0.0.1".to_string()),
        ("GMP_PORT", port.to_string()),
        // The clients run on loopback, which the proxy refuses unless listed.
        ("GMP_ATTACHMENT_ALLOWED_HOSTS", "127.0.0.1".into()),
        ("GMP_API_TOKEN", token.to_string()),
        ("GMP_INSTANCE_NAME", "pressure-local".into()),
        ("GMP_SYNC_INTERVAL", t.sync_interval_seconds.to_string()),
        (
            "GMP_SEND_LOOP_INTERVAL",
            format!("{}", f64::from(ms) / 1000.0),
        ),
        (
            "GMP_BATCH_SIZE_PER_ACCOUNT",
            t.batch_size_per_account.to_string(),
        ),
        ("GMP_POOL_SIZE", t.pool_size.to_string()),
        ("GMP_LOG_LEVEL", t.log_level.as_env().to_string()),
        ("GMP_SPOOL_DIR", tmp.join("spool").display().to_string()),
        (
            "GMP_CACHE_DISK_DIR",
            tmp.join("cache").display().to_string(),
        ),
    ];
    // Every setting the spec sets; the local run has no container memory limit, so the memory
    // budgets are the proxy's own defaults unless set, and the disk tier is always on.
    env.extend(spec.proxy.settings.env());
    match db {
        Database::Sqlite => env.push(("GMP_DB_PATH", tmp.join("mail.db").display().to_string())),
        Database::Postgres(url) => {
            use base64::Engine;
            let key: [u8; 32] = rand::random();
            env.push(("GMP_DB_PATH", url.clone()));
            env.push((
                "MAIL_PROXY_ENCRYPTION_KEY",
                base64::engine::general_purpose::STANDARD.encode(key),
            ));
        }
    }
    env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The setup plan ([`pressure_crds::setup::plan`]): each tenant's client on loopback,
/// delivering to `smtp_host:smtp_port`.
pub fn setup_plan(tenants: &[TenantSlot], smtp_host: &str, smtp_port: u16) -> SetupPlanV1 {
    pressure_crds::setup::plan(
        tenants.iter().map(|t| (t.name.as_str(), t.url())),
        smtp_host,
        smtp_port,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pressure_crds::{Profile, TenantSpec};

    #[test]
    fn replicas_get_distinct_ids_seeds_and_one_url() {
        let mut spec = PressureTestSpec::seed_default();
        spec.tenants[1].clients = 3;
        let t = tenants(&spec).expect("ports");
        assert_eq!(t[1].clients.len(), 3);
        assert_eq!(t[1].clients[2].client_id, "standard-3");
        assert_ne!(t[1].clients[0].seed, t[1].clients[1].seed);
        assert!(t[1].forwarder_port.is_some() && t[0].forwarder_port.is_none());
        let plan = setup_plan(&t, "127.0.0.1", 2525);
        assert_eq!(plan.tenants[1].tenant.client_base_url, Some(t[1].url()));
        assert_eq!(plan.tenants[0].accounts[0].smtp_port, 2525);
    }

    #[test]
    fn client_rates_and_window_are_passed() {
        let mut spec = PressureTestSpec::with_tenants(vec![TenantSpec::from_profile(
            "documents",
            Profile::Documents,
        )]);
        spec.seed = 7;
        let slot = &tenants(&spec).expect("ports")[0].clients[0];
        let w = Window {
            start_at: 100,
            stop_at: 160,
            dnd_max: 10,
        };
        let args = client_args(&spec, slot, "run1", &w).join(" ");
        assert!(args.contains("--large-attachment-rate 0.5"), "{args}");
        assert!(args.contains("--start-at 100 --stop-at 160"), "{args}");
        assert!(args.contains("--seed 7000"), "{args}");
        assert_eq!(dnd_max_seconds(60), 10);
        let env = proxy_env(&spec, &Database::Sqlite, 9, "tok", Path::new("/tmp/x"));
        assert!(env.contains(&("GMP_SEND_LOOP_INTERVAL".into(), "1".into())));
        assert!(env.contains(&("GMP_DB_PATH".into(), "/tmp/x/mail.db".into())));
        assert!(!env.iter().any(|(k, _)| k == "GMP_SYNC_CONCURRENCY"));
        spec.proxy.settings.sync = serde_yaml::from_str("{concurrency: 3}").expect("parses");
        let env = proxy_env(&spec, &Database::Sqlite, 9, "tok", Path::new("/tmp/x"));
        assert!(env.contains(&("GMP_SYNC_CONCURRENCY".into(), "3".into())));
    }
}
