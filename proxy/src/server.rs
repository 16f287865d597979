//! Wiring and lifecycle of a replica (PROTOCOL.md §2): configuration → key → database → loops →
//! HTTP server ([`listen`]: timeouts and a connection cap); on shutdown, stop claiming, let sends
//! in flight finish for up to 10 s, release the claims of messages not started, close the pool.

pub mod listen;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use rand::RngCore;
use tokio::{net::TcpListener, sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{
    attachments::Loader,
    config::Config,
    crypto::Cipher,
    dispatch::{DispatchSettings, Dispatcher},
    http::{AppState, router},
    mail::{Transport, pool::SmtpPool},
    metrics::{AccountLabels, Metrics},
    store::{Backend, DbLocation, Store, StoreError, now_ts},
    sync::Scheduler,
};

/// A running replica.
pub struct Server {
    /// Address the HTTP server listens on.
    pub addr: SocketAddr,
    /// The database.
    pub store: Store,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The replica id (owner of its claims).
    pub replica: String,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts a replica on an already-bound listener. `transport` replaces the SMTP pool in tests.
    pub async fn start(
        config: Config,
        listener: TcpListener,
        transport: Option<Arc<dyn Transport>>,
    ) -> anyhow::Result<Server> {
        let addr = listener.local_addr()?;
        check_exposure(&config, addr)?;
        let location = DbLocation::parse(&config.db_path)?;
        if let Some(dir) = &config.spool_dir {
            // Created here, so that a missing folder fails the start with its name instead of
            // deferring every spooled attachment later.
            std::fs::create_dir_all(dir)
                .with_context(|| format!("GMP_SPOOL_DIR {} cannot be created", dir.display()))?;
        }
        let store = open_store(&config, &location).await?;
        store.ensure_instance(&config.instance_name).await?;
        let metrics = Metrics::new();
        for t in store.tenants(false).await? {
            for a in store.accounts(&t.id).await? {
                metrics.touch_account(&AccountLabels::new(&t.id, t.name.as_deref(), Some(&a.id)));
            }
        }
        let replica = replica_id();
        let shutdown = CancellationToken::new();
        let dispatch_wake = Arc::new(Notify::new());
        let sync_wake = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        let transport: Arc<dyn Transport> = match transport {
            Some(t) => t,
            None => {
                let pool = Arc::new(SmtpPool::new(config.pool_size));
                if !config.test_mode {
                    tasks.push(tokio::spawn(sweep_pool(pool.clone(), shutdown.clone())));
                }
                pool
            }
        };
        let dispatcher = Dispatcher::new(
            store.clone(),
            transport,
            Arc::new(Loader::new(&config, metrics.clone())),
            metrics.clone(),
            DispatchSettings::from_config(&config),
            replica.clone(),
            dispatch_wake.clone(),
            sync_wake.clone(),
        );
        tasks.push(tokio::spawn(dispatcher.run(shutdown.clone())));
        if config.scheduler_active {
            let scheduler = Scheduler::new(
                store.clone(),
                metrics.clone(),
                &config,
                replica.clone(),
                sync_wake.clone(),
                dispatch_wake.clone(),
            )?;
            tasks.push(tokio::spawn(scheduler.run(shutdown.clone())));
        }
        let retention = config.scheduler_active.then_some(config.retention_seconds);
        tasks.push(tokio::spawn(refresh_gauges(
            store.clone(),
            metrics.clone(),
            retention,
            shutdown.clone(),
        )));
        let state = AppState {
            store: store.clone(),
            metrics: metrics.clone(),
            api_token: config.admin_token().map(Arc::from),
            default_priority: config.default_priority.clamp(0, 3),
            scheduler_active: config.scheduler_active,
            dispatch_wake,
            sync_wake,
            sync_interval: config.sync_interval,
            retention_seconds: config.retention_seconds,
            report_max_attempts: config.report_max_attempts,
            limits: config.limits(),
            tenant_endpoint_self_service: config.tenant_endpoint_self_service,
            command_log: config.command_log,
            attachment_base_dir: config.attachment_base_dir.clone(),
        };
        let app = router(state, config.max_request_bytes);
        tasks.push(tokio::spawn(listen::serve(
            listener,
            app,
            config.http_limits(),
            metrics.clone(),
            shutdown.clone(),
        )));
        info!(%addr, database = location.backend().as_str(), replica = %replica, "Mail proxy listening.");
        Ok(Server {
            addr,
            store,
            metrics,
            replica,
            shutdown,
            tasks,
        })
    }

    /// Stops the replica and waits for its loops to finish.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        self.store.close().await;
    }
}

/// Binds `GMP_HOST:GMP_PORT`, runs until `shutdown` completes, then stops cleanly.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let (host, port) = (config.bind_host(), config.port);
    let listener = TcpListener::bind((host, port))
        .await
        .with_context(|| format!("cannot listen on {host} port {port} (GMP_HOST/GMP_PORT)"))?;
    let server = Server::start(config, listener, None).await?;
    shutdown.await;
    info!("Shutting down.");
    server.stop().await;
    Ok(())
}

/// Without an admin token every request acts as admin: refuses to serve where other hosts can
/// connect unless `GMP_ALLOW_REMOTE_WITHOUT_TOKEN` says so, and says it loudly either way.
fn check_exposure(config: &Config, addr: SocketAddr) -> anyhow::Result<()> {
    if config.admin_token().is_some() {
        return Ok(());
    }
    let loopback = addr.ip().is_loopback();
    if !loopback && !config.allow_remote_without_token {
        anyhow::bail!(
            "GMP_API_TOKEN is not set, so anyone who can connect to {addr} would act as admin: \
             set GMP_API_TOKEN, or listen on loopback only (GMP_HOST=127.0.0.1), or set \
             GMP_ALLOW_REMOTE_WITHOUT_TOKEN=true to serve other hosts without a token anyway"
        );
    }
    warn!(
        %addr,
        "NO ADMIN TOKEN: GMP_API_TOKEN is not set, so every request without a token acts as \
         admin{}. Set GMP_API_TOKEN before anything else can reach this port.",
        if loopback {
            " (listening on loopback only)"
        } else {
            ", FROM ANY HOST THAT CAN CONNECT (GMP_ALLOW_REMOTE_WITHOUT_TOKEN is set)"
        }
    );
    Ok(())
}

/// Opens and migrates the database, then exits (`mailproxy validate`).
pub async fn validate(config: &Config) -> anyhow::Result<()> {
    let location = DbLocation::parse(&config.db_path)?;
    let store = Store::open(&location, 2, load_key(config, &location)?).await?;
    store.close().await;
    println!(
        "configuration valid; {} database reachable and migrated",
        location.backend().as_str()
    );
    Ok(())
}

/// Exit code of `mailproxy healthcheck`: 0 when the URL answers 200.
pub async fn healthcheck(url: &str) -> i32 {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build();
    match client {
        Ok(c) => match c.get(url).send().await {
            Ok(r) if r.status().is_success() => 0,
            _ => 1,
        },
        Err(_) => 1,
    }
}

/// Resolves when SIGTERM or Ctrl-C arrives.
pub async fn shutdown_signal() {
    mailproxy_proto::signals::stop_signal().await;
}

/// The key for secrets at rest (PROTOCOL.md §7.2).
fn load_key(config: &Config, location: &DbLocation) -> anyhow::Result<Cipher> {
    if let Some(k) = config.encryption_key.as_deref().filter(|k| !k.is_empty()) {
        return Cipher::from_base64(k).context("MAIL_PROXY_ENCRYPTION_KEY");
    }
    if config.encryption_key_file.exists() {
        return Cipher::from_file(&config.encryption_key_file, false)
            .context("GMP_ENCRYPTION_KEY_FILE");
    }
    match location {
        DbLocation::SqliteMemory => Ok(Cipher::random()),
        DbLocation::SqliteFile(path) => {
            let key_path = PathBuf::from(format!("{}.key", path.display()));
            if !key_path.exists() {
                warn!(path = %key_path.display(), "No encryption key configured; generating one beside the SQLite database.");
            }
            Ok(Cipher::from_file(&key_path, true)?)
        }
        DbLocation::Postgres(_) => Err(crate::crypto::CryptoError::Missing.into()),
    }
}

fn replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "mailproxy".into());
    let mut b = [0u8; 4];
    rand::rng().fill_bytes(&mut b);
    format!("{host}-{}", hex::encode(b))
}

/// Quits expired idle SMTP connections every 150 s.
async fn sweep_pool(pool: Arc<SmtpPool>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(150)) => pool.sweep().await,
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Refreshes the pending gauges once a second; once a minute prunes the send log and, with the
/// scheduler active, applies retention (§7.3).
async fn refresh_gauges(
    store: Store,
    metrics: Arc<Metrics>,
    retention: Option<i64>,
    shutdown: CancellationToken,
) {
    let mut tick = 0u64;
    // Tenants whose pending gauge was ever set here: zeroed, not removed, once their queue empties.
    let mut pending_tenants = std::collections::BTreeSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return,
        }
        tick += 1;
        // One scan of the pending rows for both gauges: the total is the tenants' sum.
        if let Ok(by_tenant) = store.count_pending_by_tenant().await {
            metrics.pending.set(by_tenant.values().sum());
            metrics.set_pending_by_tenant(&by_tenant, &mut pending_tenants);
        }
        if tick.is_multiple_of(5) {
            match store.refresh_planner_stats().await {
                Ok(t) if !t.is_empty() => debug!(tables = ?t, "Refreshed planner statistics."),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "Refreshing planner statistics failed."),
            }
        }
        if tick.is_multiple_of(60) {
            let _ = store.prune_send_log(now_ts()).await;
            if let Some(r) = retention {
                match store.cleanup_messages(None, r, now_ts()).await {
                    Ok(n) if n > 0 => info!(removed = n, "Retention removed reported messages."),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "Retention failed."),
                }
            }
        }
    }
}

/// Opens the database. A PostgreSQL server that cannot be reached yet (connection refused, no
/// route, still starting up) is tried again every 2 s for `GMP_DB_WAIT_SECONDS`, each try logged
/// without the URL: in a cluster the proxy's pod often starts before its database's, and exiting
/// would only earn a restart and a crash-loop back-off. Any other failure ends the start at once.
async fn open_store(config: &Config, location: &DbLocation) -> anyhow::Result<Store> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(config.db_wait_seconds);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let cipher = load_key(config, location)?;
        match Store::open(location, config.db_max_connections, cipher).await {
            Ok(store) => {
                if attempt > 1 {
                    info!(attempt, "PostgreSQL answers; starting.");
                }
                return Ok(store);
            }
            Err(e)
                if location.backend() == Backend::Postgres
                    && not_reachable_yet(&e)
                    && tokio::time::Instant::now() < deadline =>
            {
                warn!(attempt, error = %e, "PostgreSQL does not answer yet; trying again in 2 s (GMP_DB_WAIT_SECONDS).");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "opening the {} database",
                    location.backend().as_str()
                )));
            }
        }
    }
}

/// Failures that a database still starting (or a network still forming) gives, as opposed to a
/// wrong password, a missing database or a failed migration.
fn not_reachable_yet(e: &StoreError) -> bool {
    let sql = match e {
        StoreError::Database(sql) => sql,
        StoreError::Migrate(sqlx::migrate::MigrateError::Execute(sql)) => sql,
        _ => return false,
    };
    match sql {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        // 57P03 cannot_connect_now: "the database system is starting up" (or shutting down).
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c == "57P03"),
        _ => false,
    }
}
