//! Command-line flags, each with a `PRESSURE_*` environment twin for the chart to set.

use std::collections::BTreeMap;
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
    /// Namespace of the operator's pods, admitted by each test's client NetworkPolicy (default:
    /// the client's default namespace, which in a pod is its own).
    #[arg(long, env = "POD_NAMESPACE")]
    pub operator_namespace: Option<String>,
    /// Labels of the operator's pods as `key=value,...`, admitted by each test's client
    /// NetworkPolicy so that the operator can read live figures.
    #[arg(
        long,
        env = "PRESSURE_OPERATOR_POD_LABELS",
        default_value = "app.kubernetes.io/name=pressure-operator",
        value_parser = parse_labels
    )]
    pub operator_pod_labels: BTreeMap<String, String>,
    /// TEST ONLY: read figures from these URLs instead of pod IPs, as a comma-separated list of
    /// `proxy=URL`, `sink=URL` and `client/<tenant>=URL` (pods under kwok run nothing).
    #[arg(long, env = "PRESSURE_ENDPOINT_OVERRIDES")]
    pub endpoint_override: Option<String>,
}

/// Parses `key=value,key=value` (at least one pair, no empty key or value).
fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => return Err(format!("`{item}` is not key=value")),
        }
    }
    if out.is_empty() {
        return Err("at least one key=value label is needed".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_and_bad_ones_say_why() {
        let l = parse_labels("app.kubernetes.io/name=op, team=mail").expect("parses");
        assert_eq!(
            l.get("app.kubernetes.io/name").map(String::as_str),
            Some("op")
        );
        assert_eq!(l.get("team").map(String::as_str), Some("mail"));
        assert!(parse_labels("").unwrap_err().contains("at least one"));
        assert!(parse_labels("novalue=").unwrap_err().contains("novalue="));
        assert!(parse_labels("plain").unwrap_err().contains("plain"));
    }
}
