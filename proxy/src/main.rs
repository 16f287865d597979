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
            mailproxy::telemetry::init(&cli.config.log_level, cli.config.log_json);
            mailproxy::server::validate(&cli.config).await
        }
        None => {
            mailproxy::telemetry::init(&cli.config.log_level, cli.config.log_json);
            mailproxy::run(cli.config, mailproxy::server::shutdown_signal()).await
        }
    }
}
