//! The `mailproxy` binary: parses flags and environment, starts logging, and runs the server
//! until SIGTERM or Ctrl-C (or runs `healthcheck` / `validate`).

use clap::Parser;
use mailproxy::config::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Healthcheck { url }) => {
            let url = url.unwrap_or_else(|| format!("http://127.0.0.1:{}/health", cli.config.port));
            std::process::exit(mailproxy::server::healthcheck(&url).await);
        }
        Some(Command::Validate) => {
            refuse_unsupported();
            mailproxy::telemetry::init(cli.config.log_filter(), cli.config.log_json);
            mailproxy::server::validate(&cli.config).await
        }
        None => {
            refuse_unsupported();
            mailproxy::telemetry::init(cli.config.log_filter(), cli.config.log_json);
            mailproxy::run(cli.config, mailproxy::server::shutdown_signal()).await
        }
    }
}

/// Exits with status 2, naming each one, when an upstream setting this proxy does not implement
/// is set (the health check, run in the same container, does not check).
fn refuse_unsupported() {
    let vars = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    if let Err(e) = mailproxy::config::refuse_unsupported(vars) {
        eprintln!("mailproxy: {e}");
        std::process::exit(2);
    }
}
