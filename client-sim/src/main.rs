//! `client-sim`: the pressure test's simulated tenant application (`serve`), verifying SMTP sink
//! (`sink`), registration step (`setup`), sink benchmark (`blast`) and a curl-free `healthcheck`.
//!
//! Run `client-sim --help` or `client-sim <subcommand> --help` for the flags; every flag has an
//! environment twin. The logic lives in the `client_sim` library.

use clap::Parser;
use client_sim::cli::Cli;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("CLIENT_SIM_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    client_sim::cli::run(cli).await
}
