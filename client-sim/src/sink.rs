//! A verifying SMTP sink for pressure tests: accepts mail like a real server (EHLO/HELO, AUTH
//! PLAIN/LOGIN with any credentials, PIPELINING, SIZE, 8BITMIME), checks every message and
//! discards it (or keeps it with `--maildir`).
//!
//! Parts:
//! - [`smtp`]: accept loop and connection state machine, whole-buffer terminator search.
//! - [`verify`]: MIME parse, attachment MD5 against `X-Pressure-Attachment-Md5`, tenant,
//!   creation time, Message-ID.
//! - [`stats`]: per-tenant figures, latency histograms, duplicate detection, metrics.
//! - [`faults`]: injected 451/550 replies, dropped connections and delays.
//! - [`mime`]: the fast attachment walker (boundaries, streamed base64 decode and MD5).
//! - [`http`]: `/stats`, `/metrics`, `/reset` (only with `--allow-reset`), `/health`.
//! - [`maildir`]: optional storage.
//!
//! Run it with `client-sim sink`, or in-process with [`run`] (or [`SinkState::new`] plus
//! [`run_with_state`] to read the figures directly).

pub mod faults;
pub mod http;
pub mod maildir;
pub mod mime;
pub mod smtp;
pub mod stats;
pub mod verify;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::{Error, Result};
use faults::FaultConfig;
use stats::SinkStats;

/// Flags of `client-sim sink`.
#[derive(Debug, Clone, clap::Args)]
pub struct SinkArgs {
    /// SMTP listening address (use 0.0.0.0:1025 in a container).
    #[arg(long, env = "SINK_SMTP_LISTEN", default_value = "127.0.0.1:1025")]
    pub smtp_listen: SocketAddr,
    /// HTTP listening address for /stats, /metrics, /reset (see `--allow-reset`), /health.
    #[arg(long, env = "SINK_HTTP_LISTEN", default_value = "127.0.0.1:8025")]
    pub http_listen: SocketAddr,
    /// Keep every accepted message in this Maildir (default: parse and discard).
    #[arg(long, env = "SINK_MAILDIR")]
    pub maildir: Option<PathBuf>,
    /// Per mille of messages answered 451 after DATA.
    #[arg(long, env = "SINK_FAIL_4XX_PERMILLE", default_value_t = 0)]
    pub fail_4xx_permille: u32,
    /// Per mille of messages answered 550 after DATA.
    #[arg(long, env = "SINK_FAIL_5XX_PERMILLE", default_value_t = 0)]
    pub fail_5xx_permille: u32,
    /// Per mille of messages whose connection is closed instead of answered.
    #[arg(long, env = "SINK_DROP_PERMILLE", default_value_t = 0)]
    pub drop_permille: u32,
    /// Delay before replying to each message's data, milliseconds.
    #[arg(long, env = "SINK_DELAY_MS", default_value_t = 0)]
    pub delay_ms: u64,
    /// Seed of the fault draws; random when absent.
    #[arg(long, env = "SINK_FAULT_SEED")]
    pub fault_seed: Option<u64>,
    /// Largest message accepted, bytes (advertised in SIZE).
    #[arg(long, env = "SINK_MAX_MESSAGE_BYTES", default_value_t = 209_715_200)]
    pub max_message_bytes: u64,
    /// Host name in the greeting and EHLO reply.
    #[arg(long, env = "SINK_HOSTNAME", default_value = "sink.localhost")]
    pub hostname: String,
    /// Seconds an SMTP session may send nothing (in a command or in message data) before it is
    /// answered 421 and closed (RFC 5321 §4.5.3.2 suggests 5 minutes).
    #[arg(long, env = "SINK_IDLE_TIMEOUT_SECONDS", default_value_t = 300)]
    pub idle_timeout_seconds: u64,
    /// SMTP sessions open at once; a session beyond this is answered 421 and closed.
    #[arg(long, env = "SINK_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Answer `POST /reset` (clears the figures); refused with 403 unless set, so that nothing
    /// else on the network can wipe a run's figures.
    #[arg(long, env = "SINK_ALLOW_RESET")]
    pub allow_reset: bool,
}

/// Resolved sink configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    /// Fault injection.
    pub faults: FaultConfig,
    /// Maildir to keep messages in.
    pub maildir: Option<PathBuf>,
    /// Size limit, bytes.
    pub max_message_bytes: u64,
    /// Greeting host name.
    pub hostname: String,
    /// A session sending nothing for this long is answered 421 and closed.
    pub idle_timeout: Duration,
    /// Sessions open at once.
    pub max_connections: usize,
    /// `POST /reset` is answered (else 403).
    pub allow_reset: bool,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            faults: FaultConfig::default(),
            maildir: None,
            max_message_bytes: 209_715_200,
            hostname: "sink.localhost".to_owned(),
            idle_timeout: Duration::from_secs(300),
            max_connections: 1024,
            allow_reset: false,
        }
    }
}

impl SinkArgs {
    /// Resolves and validates the flags.
    pub fn into_config(&self) -> Result<SinkConfig> {
        let faults = FaultConfig {
            fail_4xx_permille: self.fail_4xx_permille,
            fail_5xx_permille: self.fail_5xx_permille,
            drop_permille: self.drop_permille,
            delay_ms: self.delay_ms,
            seed: self.fault_seed.unwrap_or_else(rand::random),
        };
        faults.validate()?;
        Ok(SinkConfig {
            faults,
            maildir: self.maildir.clone(),
            max_message_bytes: self.max_message_bytes,
            hostname: self.hostname.clone(),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds.max(1)),
            max_connections: self.max_connections.max(1),
            allow_reset: self.allow_reset,
        })
    }
}

/// Shared state of the SMTP and HTTP sides.
#[derive(Debug)]
pub struct SinkState {
    /// Configuration.
    pub config: SinkConfig,
    /// Figures.
    pub stats: SinkStats,
    /// Bounds big-message parsing to the two cores this runs on.
    big_messages: Semaphore,
    /// Bounds the connections buffering a big message at once (memory). A permit is released
    /// when the message ends or its session does (idle timeout included).
    big_buffers: Arc<Semaphore>,
    /// Bounds the sessions open at once (`max_connections`).
    sessions: Arc<Semaphore>,
    /// The multi-line EHLO reply, built once.
    ehlo_reply: String,
    connections: AtomicU64,
    messages: AtomicU64,
}

impl SinkState {
    /// State for `config`; creates the Maildir if one is configured.
    pub async fn new(config: SinkConfig) -> Result<Arc<Self>> {
        config.faults.validate()?;
        if let Some(dir) = &config.maildir {
            maildir::prepare(dir)
                .await
                .map_err(|e| Error::io("creating the maildir", e))?;
        }
        let sessions = Arc::new(Semaphore::new(config.max_connections.max(1)));
        let ehlo_reply = format!(
            "250-{}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-SIZE {}\r\n\
             250 AUTH PLAIN LOGIN\r\n",
            config.hostname, config.max_message_bytes
        );
        Ok(Arc::new(SinkState {
            config,
            stats: SinkStats::new(),
            big_messages: Semaphore::new(2),
            big_buffers: Arc::new(Semaphore::new(2)),
            sessions,
            ehlo_reply,
            connections: AtomicU64::new(0),
            messages: AtomicU64::new(0),
        }))
    }

    fn next_connection(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed)
    }

    fn next_message(&self) -> u64 {
        self.messages.fetch_add(1, Ordering::Relaxed)
    }
}

/// Runs the sink on the two listeners until `shutdown` resolves.
pub async fn run(
    smtp: TcpListener,
    http: TcpListener,
    config: SinkConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let state = SinkState::new(config).await?;
    run_with_state(smtp, http, state, shutdown).await
}

/// Like [`run`], with state the caller keeps a handle on.
pub async fn run_with_state(
    smtp: TcpListener,
    http: TcpListener,
    state: Arc<SinkState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    tracing::info!(
        smtp = ?smtp.local_addr().ok(),
        http = ?http.local_addr().ok(),
        faults = ?state.config.faults,
        "SMTP sink listening."
    );
    let (stop, stopped) = watch::channel(false);
    let smtp_task = tokio::spawn(smtp::serve(smtp, state.clone(), stopped.clone()));
    let mut http_stopped = stopped;
    let http_server = axum::serve(http, http::router(state)).with_graceful_shutdown(async move {
        let _ = http_stopped.changed().await;
    });
    let http_task = tokio::spawn(async move { http_server.await });
    shutdown.await;
    let _ = stop.send(true);
    let _ = smtp_task.await;
    match http_task.await {
        Ok(result) => result.map_err(|e| Error::io("serving the sink's HTTP side", e)),
        Err(e) => Err(Error::io(
            "joining the sink's HTTP side",
            std::io::Error::other(e),
        )),
    }
}
