//! Process configuration: every setting of PROTOCOL.md §9 is a clap flag with a `GMP_*`
//! environment twin, with defaults that are safe on a laptop, so `mailproxy` runs with no flag at
//! all and is configured in containers by environment alone.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

/// Command line of the `mailproxy` binary.
#[derive(Debug, Parser)]
#[command(name = "mailproxy", version, about = "Multi-tenant mail proxy")]
pub struct Cli {
    /// What to do; without a subcommand the server runs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Server settings.
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands besides serving.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Exit 0 when `GET /health` of the local server answers 200 (container health check).
    Healthcheck {
        /// URL to probe; default is the configured port on 127.0.0.1.
        #[arg(long)]
        url: Option<String>,
    },
    /// Load and check the configuration, open and migrate the database, then exit.
    Validate,
}

/// Settings of a proxy replica.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Database: a PostgreSQL URL (`postgres://…`), or a SQLite path (`sqlite:<path>`, `./x.db`,
    /// an absolute path, or `:memory:`). Its value is never shown (it may hold a password).
    #[arg(
        long,
        env = "GMP_DB_PATH",
        default_value = "mail_service.db",
        hide_env_values = true
    )]
    pub db_path: String,
    /// Maximum database connections per replica.
    #[arg(long, env = "GMP_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
    /// Seconds a replica keeps trying, at start, a PostgreSQL server that does not answer yet
    /// (in a cluster the proxy's pod may start before its database's); 0 fails at once.
    #[arg(long, env = "GMP_DB_WAIT_SECONDS", default_value_t = 120)]
    pub db_wait_seconds: u64,
    /// Admin API token; unset means requests without a token act as admin (a warning is logged,
    /// `/health` says so, and the server listens on loopback only unless
    /// `GMP_ALLOW_REMOTE_WITHOUT_TOKEN` is set).
    #[arg(long, env = "GMP_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Serve without `GMP_API_TOKEN` on an address other hosts can reach, where anyone who can
    /// connect acts as admin. Without it, a replica with no token refuses to listen anywhere
    /// but loopback.
    #[arg(long, env = "GMP_ALLOW_REMOTE_WITHOUT_TOKEN", default_value_t = false, value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub allow_remote_without_token: bool,
    /// Let a tenant's own token change where the proxy connects for it (`client_base_url`,
    /// `client_sync_path`, `client_attachment_path`, `client_auth`). Off: only the admin token
    /// may, and a tenant token naming one of them is refused with 403, so a tenant cannot point
    /// the proxy's requests (and its `client_auth` credentials) at another address.
    #[arg(long, env = "GMP_TENANT_ENDPOINT_SELF_SERVICE", default_value_t = false, value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub tenant_endpoint_self_service: bool,
    /// Record every state-changing API call (its operation, tenant, request and answer, secrets
    /// and inline attachment data redacted) in the command log, as upstream does: one row per
    /// call. Off: nothing is recorded and `/command-log` answers what was recorded before.
    #[arg(long, env = "GMP_COMMAND_LOG", default_value_t = true, value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub command_log: bool,
    /// Encryption key for secrets at rest: base64 of 32 bytes.
    #[arg(long, env = "MAIL_PROXY_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
    /// File holding the raw 32-byte key, read when no key is given.
    #[arg(
        long,
        env = "GMP_ENCRYPTION_KEY_FILE",
        default_value = "/run/secrets/encryption_key"
    )]
    pub encryption_key_file: PathBuf,
    /// Address to bind; default 0.0.0.0 with `GMP_API_TOKEN` set, 127.0.0.1 without.
    #[arg(long, env = "GMP_HOST")]
    pub host: Option<String>,
    /// Port to bind.
    #[arg(long, env = "GMP_PORT", default_value_t = 8000)]
    pub port: u16,
    /// Log level (ERROR, WARNING, INFO, DEBUG, or a tracing filter).
    #[arg(long, env = "GMP_LOG_LEVEL", default_value = "INFO")]
    pub log_level: String,
    /// Log at DEBUG, whatever `GMP_LOG_LEVEL` says (upstream's switch).
    #[arg(long, env = "GMP_DEBUG", default_value_t = false, value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub debug: bool,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "GMP_LOG_JSON", default_value_t = false, value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub log_json: bool,
    /// Instance name.
    #[arg(long, env = "GMP_INSTANCE_NAME", default_value = "mail-proxy")]
    pub instance_name: String,
    /// Run the sync scheduler and retention.
    #[arg(long, env = "GMP_SCHEDULER_ACTIVE", default_value_t = true, value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub scheduler_active: bool,
    /// Idle dispatcher poll in seconds (minimum 0.05).
    #[arg(long, env = "GMP_SEND_LOOP_INTERVAL", default_value_t = 0.5)]
    pub send_loop_interval: f64,
    /// Messages claimed per account and pass, unless the account sets its own.
    #[arg(long, env = "GMP_BATCH_SIZE_PER_ACCOUNT", default_value_t = 50)]
    pub batch_size_per_account: u32,
    /// Maximum rows per claim query.
    #[arg(long, env = "GMP_CLAIM_BATCH_SIZE", default_value_t = 200)]
    pub claim_batch_size: u32,
    /// Lease of a claimed message in seconds; an expired lease makes it claimable again.
    #[arg(long, env = "GMP_CLAIM_LEASE_SECONDS", default_value_t = 120)]
    pub claim_lease_seconds: u64,
    /// Concurrent SMTP sends per replica.
    #[arg(long, env = "GMP_MAX_CONCURRENT_SENDS", default_value_t = 10)]
    pub max_concurrent_sends: usize,
    /// Send slots per replica kept for messages without attachments, so that small messages do
    /// not wait behind attachment downloads; unset, a quarter of `GMP_MAX_CONCURRENT_SENDS`
    /// (rounded up). Messages with attachments use the other slots; 0 shares them all.
    #[arg(long, env = "GMP_SMALL_MESSAGE_SLOTS")]
    pub small_message_slots: Option<usize>,
    /// Concurrent SMTP sends per account per replica.
    #[arg(long, env = "GMP_MAX_SENDS_PER_ACCOUNT", default_value_t = 3)]
    pub max_sends_per_account: usize,
    /// SMTP connections kept per server and login.
    #[arg(long, env = "GMP_POOL_SIZE", default_value_t = 5)]
    pub pool_size: usize,
    /// Retries of a temporary failure before it becomes an error.
    #[arg(long, env = "GMP_MAX_RETRIES", default_value_t = 3)]
    pub max_retries: i64,
    /// Delays between retries in seconds, the last one repeated.
    #[arg(long, env = "GMP_RETRY_DELAYS", default_value = "60,300,900", value_parser = parse_delays)]
    pub retry_delays: Delays,
    /// Priority of messages whose own priority is invalid.
    #[arg(long, env = "GMP_DEFAULT_PRIORITY", default_value_t = 2)]
    pub default_priority: i64,
    /// Seconds reported terminal messages are kept.
    #[arg(
        long,
        env = "GMP_DELIVERY_REPORT_RETENTION_SECONDS",
        default_value_t = 604_800
    )]
    pub retention_seconds: i64,
    /// Seconds a client has to send a request head; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, env = "GMP_HTTP_HEADER_TIMEOUT_SECONDS", default_value_t = 30)]
    pub http_header_timeout_seconds: u64,
    /// Seconds a client has to send a whole request body, from the end of its head (408 after).
    #[arg(long, env = "GMP_HTTP_BODY_TIMEOUT_SECONDS", default_value_t = 120)]
    pub http_body_timeout_seconds: u64,
    /// HTTP connections open at once; a connection beyond this is answered 503 and closed.
    #[arg(long, env = "GMP_HTTP_MAX_CONNECTIONS", default_value_t = 4096)]
    pub http_max_connections: usize,
    /// Largest REST body or sync response in bytes.
    #[arg(long, env = "GMP_MAX_REQUEST_BYTES", default_value_t = 67_108_864)]
    pub max_request_bytes: usize,
    /// Most recipients (`to` + `cc` + `bcc`) of one message; more is `too many recipients`.
    #[arg(long, env = "GMP_MAX_RECIPIENTS", default_value_t = 100)]
    pub max_recipients: usize,
    /// Most custom headers of one message; more is `too many headers`.
    #[arg(long, env = "GMP_MAX_HEADERS", default_value_t = 50)]
    pub max_headers: usize,
    /// Longest custom header value in bytes; longer is `header value too long`.
    #[arg(long, env = "GMP_MAX_HEADER_VALUE_BYTES", default_value_t = 998)]
    pub max_header_value_bytes: usize,
    /// Longest subject in characters; longer is `subject too long`.
    #[arg(long, env = "GMP_MAX_SUBJECT_CHARS", default_value_t = 998)]
    pub max_subject_chars: usize,
    /// Largest total of one message's inline (`base64`) attachments in MiB, decoded; more is
    /// the rejection `inline attachments too large`. Inline content is stored in the message
    /// and held in memory while it is sent, so it is bounded at intake.
    #[arg(long, env = "GMP_MAX_INLINE_ATTACHMENT_MB", default_value_t = 10)]
    pub max_inline_attachment_mb: u64,
    /// Starts of a message's send without an outcome (the replica died while sending it, e.g.
    /// out of memory) after which it is parked with an `error` report instead of being sent
    /// again. Counted for messages with inline content (payloads over 64 KiB).
    #[arg(long, env = "GMP_MAX_STARTS_WITHOUT_OUTCOME", default_value_t = 3)]
    pub max_starts_without_outcome: i64,
    /// Hosts that `http_url` attachments (and endpoint URLs named by a message) may fetch
    /// from, comma-separated; empty means only the host of the tenant's `client_base_url`.
    /// Internal addresses (loopback, private, CGNAT, ULA, unspecified, link-local) are refused
    /// for every download and sync call unless the host is listed here by name or address, or
    /// the address lies in a listed CIDR range (e.g. `127.0.0.1`, `10.96.0.0/12`).
    #[arg(long, env = "GMP_ATTACHMENT_ALLOWED_HOSTS", default_value = "", value_parser = parse_hosts)]
    pub attachment_allowed_hosts: Hosts,
    /// Seconds between periodic syncs of a tenant.
    #[arg(long, env = "GMP_SYNC_INTERVAL", default_value_t = 300.0)]
    pub sync_interval: f64,
    /// Timeout of one sync call in seconds.
    #[arg(long, env = "GMP_SYNC_TIMEOUT_SECONDS", default_value_t = 30)]
    pub sync_timeout_seconds: u64,
    /// Shortest gap in seconds between two calls to one tenant made only to deliver reports. The
    /// proxy calls a tenant whenever reports are pending; without a gap, a tenant that answers
    /// every call with new messages is called as fast as outcomes are written, and the backlog
    /// grows without bound. `queued`, run-now, DND ends and the interval are not delayed.
    #[arg(long, env = "GMP_SYNC_REPORT_MIN_INTERVAL", default_value_t = 1)]
    pub sync_report_min_interval: i64,
    /// Tenants synced concurrently.
    #[arg(long, env = "GMP_SYNC_CONCURRENCY", default_value_t = 8)]
    pub sync_concurrency: usize,
    /// Delivery reports per sync call.
    #[arg(long, env = "GMP_REPORT_BATCH_SIZE", default_value_t = 1000)]
    pub report_batch_size: i64,
    /// Refusals of one report before it is dropped as dead.
    #[arg(long, env = "GMP_REPORT_MAX_ATTEMPTS", default_value_t = 10)]
    pub report_max_attempts: i64,
    /// Base folder of `filesystem` attachments; unset disables that mode.
    #[arg(long, env = "GMP_ATTACHMENT_BASE_DIR")]
    pub attachment_base_dir: Option<PathBuf>,
    /// Endpoint base for tenants without `client_base_url`.
    #[arg(long, env = "GMP_ATTACHMENT_BASE_URL")]
    pub attachment_base_url: Option<String>,
    /// Timeout of one attachment load in seconds, cache lookup included.
    #[arg(long, env = "GMP_ATTACHMENT_TIMEOUT_SECONDS", default_value_t = 30)]
    pub attachment_timeout_seconds: u64,
    /// Concurrent attachment downloads per replica.
    #[arg(long, env = "GMP_MAX_CONCURRENT_ATTACHMENTS", default_value_t = 3)]
    pub max_concurrent_attachments: usize,
    /// Largest attachment in bytes.
    #[arg(long, env = "GMP_MAX_ATTACHMENT_BYTES", default_value_t = 104_857_600)]
    pub max_attachment_bytes: u64,
    /// Memory budget of messages with attachments being sent, in MiB: a message reserves about
    /// 2.7 × its attachment bytes (the two base64 copies of a send); 0 turns the budget off.
    #[arg(long, env = "GMP_ATTACHMENT_MEMORY_BUDGET_MB", default_value_t = 256)]
    pub attachment_memory_budget_mb: u64,
    /// Folder for attachments spilled to disk; default the system temporary folder.
    #[arg(long, env = "GMP_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Memory tier of the MD5 cache, in MiB.
    #[arg(long, env = "GMP_CACHE_MEMORY_MAX_MB", default_value_t = 50)]
    pub cache_memory_max_mb: u64,
    /// Lifetime of memory-cached items in seconds.
    #[arg(long, env = "GMP_CACHE_MEMORY_TTL_SECONDS", default_value_t = 300)]
    pub cache_memory_ttl_seconds: u64,
    /// Folder of the disk tier of the MD5 cache; unset disables the disk tier.
    #[arg(long, env = "GMP_CACHE_DISK_DIR")]
    pub cache_disk_dir: Option<PathBuf>,
    /// Disk tier size in MiB.
    #[arg(long, env = "GMP_CACHE_DISK_MAX_MB", default_value_t = 500)]
    pub cache_disk_max_mb: u64,
    /// Lifetime of disk-cached items in seconds.
    #[arg(long, env = "GMP_CACHE_DISK_TTL_SECONDS", default_value_t = 3600)]
    pub cache_disk_ttl_seconds: u64,
    /// Items at or above this size (KiB) go to the disk tier, smaller ones to memory.
    #[arg(long, env = "GMP_CACHE_DISK_THRESHOLD_KB", default_value_t = 100)]
    pub cache_disk_threshold_kb: u64,
    /// Loops wait for explicit wakes (tests).
    #[arg(long, env = "GMP_TEST_MODE", default_value_t = false, value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub test_mode: bool,
}

impl Config {
    /// The message size limits of intake (§3.6 (+)).
    pub fn limits(&self) -> crate::model::submit::Limits {
        crate::model::submit::Limits {
            max_recipients: self.max_recipients,
            max_headers: self.max_headers,
            max_header_value_bytes: self.max_header_value_bytes,
            max_subject_chars: self.max_subject_chars,
            max_inline_attachment_bytes: self.max_inline_attachment_mb.saturating_mul(1024 * 1024),
        }
    }

    /// The admin token, if one is configured (an empty value is none).
    pub fn admin_token(&self) -> Option<&str> {
        self.api_token.as_deref().filter(|t| !t.is_empty())
    }

    /// The address to bind: `GMP_HOST`, else every interface with an admin token and loopback
    /// only without one.
    pub fn bind_host(&self) -> &str {
        match (&self.host, self.admin_token()) {
            (Some(h), _) if !h.trim().is_empty() => h.trim(),
            (_, Some(_)) => "0.0.0.0",
            (_, None) => "127.0.0.1",
        }
    }

    /// The HTTP listener's limits (`GMP_HTTP_*`).
    pub fn http_limits(&self) -> crate::server::listen::Limits {
        crate::server::listen::Limits {
            header_timeout: Duration::from_secs(self.http_header_timeout_seconds.max(1)),
            body_timeout: Duration::from_secs(self.http_body_timeout_seconds.max(1)),
            max_connections: self.http_max_connections.max(1),
        }
    }

    /// The log filter: `DEBUG` with `GMP_DEBUG`, else `GMP_LOG_LEVEL`.
    pub fn log_filter(&self) -> &str {
        if self.debug { "DEBUG" } else { &self.log_level }
    }

    /// The idle poll of the dispatcher, clamped to the contract's minimum of 50 ms.
    pub fn send_loop_interval(&self) -> Duration {
        Duration::from_secs_f64(self.send_loop_interval.max(0.05))
    }

    /// Defaults, as if the binary ran with no flag and no environment (used by tests).
    pub fn defaults() -> Self {
        Cli::parse_from(["mailproxy"]).config
    }
}

/// Upstream settings this proxy does not implement, by name or by prefix (ending in `_`), each
/// with what to do instead. A replica refuses to start while one is set (to a non-empty
/// value) rather than run without what its operator asked for.
const UNSUPPORTED: [(&str, &str); 7] = [
    (
        "GMP_CONFIG",
        "configuration files are not read: set GMP_* variables or flags (mailproxy --help)",
    ),
    (
        "GMP_CONFIG_FILE",
        "configuration files are not read: set GMP_* variables or flags (mailproxy --help)",
    ),
    (
        "GMP_DATABASE_URL",
        "the database is named by GMP_DB_PATH here",
    ),
    (
        "GMP_CLIENT_SYNC_",
        "there is no global sync endpoint: give each tenant its client_base_url and client_auth",
    ),
    (
        "GMP_LOG_DELIVERY_ACTIVITY",
        "no per-delivery log lines are written: follow deliveries in the gmp_* metrics and the tenants' delivery reports",
    ),
    ("GMP_BOUNCE_", "bounce handling is not implemented"),
    (
        "GMP_PEC_ACCEPTANCE_TIMEOUT",
        "PEC (certified mail) is not implemented",
    ),
];

/// Set variables of upstream's that this proxy does not implement: name and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedSettings(pub Vec<(String, &'static str)>);

impl std::fmt::Display for UnsupportedSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|(name, instead)| format!("{name} is set but not supported: {instead}; unset it"))
            .collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for UnsupportedSettings {}

/// Checks the environment for [`UNSUPPORTED`] settings with a non-empty value.
pub fn refuse_unsupported(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), UnsupportedSettings> {
    let mut found: Vec<(String, &'static str)> = vars
        .into_iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .filter_map(|(name, _)| {
            UNSUPPORTED
                .iter()
                .find(|(key, _)| {
                    if key.ends_with('_') {
                        name.starts_with(key)
                    } else {
                        name == *key
                    }
                })
                .map(|(_, instead)| (name, *instead))
        })
        .collect();
    found.sort();
    if found.is_empty() {
        Ok(())
    } else {
        Err(UnsupportedSettings(found))
    }
}

/// Retry delays in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delays(pub Vec<i64>);

impl Delays {
    /// Delay before retry number `n` (1-based); the last delay repeats.
    pub fn for_retry(&self, n: i64) -> i64 {
        let idx = usize::try_from(n.max(1) - 1).unwrap_or(0);
        self.0.get(idx).or(self.0.last()).copied().unwrap_or(60)
    }
}

/// `GMP_ATTACHMENT_ALLOWED_HOSTS`: host names, IP addresses and CIDR ranges (lower case), from a
/// comma-separated list; `*` lets a message name any host (but opens no internal address).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hosts(pub Vec<String>);

impl Hosts {
    /// True when `host` is listed by name or address (case-insensitive; IPv6 with or without
    /// brackets), or is an address literal inside a listed range.
    pub fn contains(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.0.iter().any(|h| h.eq_ignore_ascii_case(host))
            || host.parse().is_ok_and(|ip| self.covers(ip))
    }

    /// True when `ip` is a listed address or lies in a listed CIDR range.
    pub fn covers(&self, ip: std::net::IpAddr) -> bool {
        self.0
            .iter()
            .filter_map(|h| Cidr::parse(h))
            .any(|r| r.contains(ip))
    }
}

/// An address range `addr/len` (a bare address is a range of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    len: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `fd00::/8`, `127.0.0.1` or `::1`; None for host names and bad lengths.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a.parse().ok()?, Some(l.parse::<u8>().ok()?)),
            None => (s.parse().ok()?, None),
        };
        let max = if matches!(addr, std::net::IpAddr::V4(_)) {
            32
        } else {
            128
        };
        let len = len.unwrap_or(max);
        (len <= max).then_some(Cidr { addr, len })
    }

    /// True when `ip` is in the range (an IPv4 range does not match IPv6 addresses).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        let prefix = |a: u128, b: u128, bits: u32| {
            let shift = bits - u32::from(self.len);
            shift >= bits || (a >> shift) == (b >> shift)
        };
        match (self.addr, ip) {
            (V4(a), V4(b)) => prefix(u32::from(a).into(), u32::from(b).into(), 32),
            (V6(a), V6(b)) => prefix(a.into(), b.into(), 128),
            _ => false,
        }
    }
}

fn parse_hosts(s: &str) -> Result<Hosts, String> {
    let hosts: Vec<String> = s
        .split(',')
        .map(|h| h.trim().trim_start_matches('[').trim_end_matches(']'))
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let bad = |h: &&String| h.contains([' ', '@']) || (h.contains('/') && Cidr::parse(h).is_none());
    match hosts.iter().find(bad) {
        Some(bad) => Err(format!(
            "expected host names, addresses or CIDR ranges (10.0.0.0/8), got {bad:?}"
        )),
        None => Ok(Hosts(hosts)),
    }
}

fn parse_delays(s: &str) -> Result<Delays, String> {
    let v: Result<Vec<i64>, _> = s.split(',').map(|p| p.trim().parse::<i64>()).collect();
    match v {
        Ok(v) if !v.is_empty() && v.iter().all(|d| *d >= 0) => Ok(Delays(v)),
        _ => Err(format!(
            "expected comma-separated non-negative seconds, got {s:?}"
        )),
    }
}

/// Booleans as the contract spells them: `1/true/yes/on`, `0/false/no/off`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "expected one of 1/true/yes/on or 0/false/no/off, got {s:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::defaults();
        assert_eq!(c.port, 8000);
        assert_eq!(c.batch_size_per_account, 50);
        assert_eq!(c.pool_size, 5);
        assert!(c.scheduler_active);
        assert_eq!(c.retry_delays.for_retry(1), 60);
        assert_eq!(c.retry_delays.for_retry(9), 900);
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_name() {
        let err = Cli::try_parse_from(["mailproxy", "--retry-delays", "a,b"]).unwrap_err();
        assert!(err.to_string().contains("--retry-delays"), "{err}");
        assert!(parse_bool("maybe").is_err());
        assert_eq!(parse_bool("Yes"), Ok(true));
        assert!(parse_hosts("files.example, 10.0.0.0/33").is_err());
        assert!(parse_hosts("a b").is_err());
    }

    #[test]
    fn upstream_settings_we_do_not_implement_are_refused_by_name() {
        let vars = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let err = refuse_unsupported(vars(&[
            ("GMP_CONFIG", "/etc/mail.ini"),
            ("GMP_CLIENT_SYNC_TOKEN", "t"),
            ("GMP_LOG_DELIVERY_ACTIVITY", "true"),
            ("GMP_BOUNCE_IMAP_HOST", "imap"),
            ("GMP_DEBUG", "1"),
            ("GMP_INSTANCE_NAME", "a"),
            ("GMP_TENANT", ""),
        ]))
        .unwrap_err();
        let names: Vec<&str> = err.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "GMP_BOUNCE_IMAP_HOST",
                "GMP_CLIENT_SYNC_TOKEN",
                "GMP_CONFIG",
                "GMP_LOG_DELIVERY_ACTIVITY"
            ]
        );
        assert!(
            err.to_string()
                .contains("GMP_CONFIG is set but not supported: configuration files are not read"),
            "{err}"
        );
        assert!(
            refuse_unsupported(vars(&[("GMP_DB_PATH", "x"), ("GMP_INSTANCE_NAME", "a")])).is_ok()
        );
    }

    #[test]
    fn gmp_debug_logs_at_debug() {
        let c = Cli::parse_from(["mailproxy", "--log-level", "ERROR", "--debug", "true"]).config;
        assert_eq!(c.log_filter(), "DEBUG");
        assert_eq!(Config::defaults().log_filter(), "INFO");
    }

    #[test]
    fn allowed_hosts_are_names_addresses_or_ranges() {
        let h = parse_hosts("Files.Example, 10.0.0.0/8, [::1], fd00::/8, 127.0.0.1").unwrap();
        assert!(h.contains("files.example") && h.contains("[::1]") && h.contains("10.1.2.3"));
        assert!(!h.contains("other.example") && !h.contains("11.0.0.1"));
        let ip = |s: &str| s.parse().unwrap();
        assert!(h.covers(ip("10.255.0.1")) && h.covers(ip("127.0.0.1")) && h.covers(ip("fd12::1")));
        assert!(!h.covers(ip("127.0.0.2")) && !h.covers(ip("fe80::1")) && !h.covers(ip("::2")));
        let any = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(any.contains(ip("8.8.8.8")) && !any.contains(ip("::1")));
    }
}
