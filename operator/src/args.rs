//! Command-line flags, each with a `PRESSURE_*` environment twin for the chart to set.

use std::net::SocketAddr;

use clap::Parser;

/// `pressure-operator` flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pressure-operator",
    version,
    about = "Runs PressureTest resources."
)]
pub struct Args {
    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "PRESSURE_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    pub http_listen: SocketAddr,
    /// Watch only this namespace (all namespaces when unset).
    #[arg(long, env = "PRESSURE_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Name of the Lease used for leader election.
    #[arg(long, env = "PRESSURE_LEASE_NAME", default_value = "pressure-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (default: the client's default namespace).
    #[arg(long, env = "PRESSURE_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease (default: hostname, or a random id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Seconds a Lease stays valid without renewal.
    #[arg(long, env = "PRESSURE_LEASE_SECONDS", default_value_t = 15)]
    pub lease_seconds: u32,
    /// Log format: `text` or `json`.
    #[arg(long, env = "PRESSURE_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// TEST ONLY: read figures from these URLs instead of pod IPs, as a comma-separated list of
    /// `proxy=URL`, `sink=URL` and `client/<tenant>=URL` (pods under kwok run nothing).
    #[arg(long, env = "PRESSURE_ENDPOINT_OVERRIDES")]
    pub endpoint_override: Option<String>,
}
