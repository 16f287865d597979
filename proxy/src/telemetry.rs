//! Logging: tracing with a level from `GMP_LOG_LEVEL` (upstream names such as `WARNING` are
//! accepted) or any tracing filter, as text or JSON lines.

use tracing_subscriber::{EnvFilter, fmt};

/// Maps upstream level names onto tracing filters.
pub fn filter_for(level: &str) -> String {
    match level.trim().to_ascii_uppercase().as_str() {
        "CRITICAL" | "FATAL" | "ERROR" => "error".into(),
        "WARNING" | "WARN" => "warn".into(),
        "INFO" => "info".into(),
        "DEBUG" => "debug".into(),
        "TRACE" => "trace".into(),
        _ => level.to_string(),
    }
}

/// Installs the global subscriber; `RUST_LOG` wins when set.
pub fn init(level: &str, json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter_for(level)))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_target(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
