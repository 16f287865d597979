//! Structured logging with `tracing`: `RUST_LOG`-style filtering (default `info`), text or JSON.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber. `format` is `text` or `json`.
pub fn init(format: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube=warn,hyper=warn,tower=warn"));
    let builder = fmt().with_env_filter(filter).with_target(true);
    let result = match format {
        "json" => builder.json().try_init(),
        "text" => builder.try_init(),
        other => anyhow::bail!("unknown log format {other:?}: use text or json"),
    };
    result.map_err(|e| anyhow::anyhow!("installing the log subscriber failed: {e}"))
}
