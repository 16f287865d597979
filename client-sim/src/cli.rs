//! The command-line surface: one subcommand per role, each binding its sockets and handing them,
//! with a shutdown future (Ctrl-C or SIGTERM), to the library's `run` functions.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::{blast, serve, setup, sink};

/// Simulated tenant application, verifying SMTP sink and setup step for mail-proxy pressure tests.
#[derive(Debug, Parser)]
#[command(name = "client-sim", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a simulated tenant application (`POST /sync`, `POST /attachments`, `/stats`).
    Serve(serve::ServeArgs),
    /// Run the verifying SMTP sink with its HTTP stats endpoint.
    Sink(sink::SinkArgs),
    /// Register tenants and SMTP accounts with the proxy, then exit.
    Setup(setup::SetupArgs),
    /// Send SMTP load to a sink and print msg/s and MB/s.
    Blast(blast::BlastArgs),
    /// Exit 0 when the URL answers 200 (a Docker HEALTHCHECK without curl).
    Healthcheck(HealthcheckArgs),
}

/// Flags of `client-sim healthcheck`.
#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// URL to probe.
    #[arg(
        long,
        env = "HEALTHCHECK_URL",
        default_value = "http://127.0.0.1:8080/health"
    )]
    pub url: String,
    /// Give up after this many seconds.
    #[arg(long, env = "HEALTHCHECK_TIMEOUT_SECONDS", default_value_t = 5)]
    pub timeout_seconds: u64,
}

/// Runs the chosen subcommand to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = args.into_config()?;
            let listener = bind(config.listen).await?;
            serve::run(listener, config, shutdown_signal()).await?;
        }
        Command::Sink(args) => {
            let config = args.into_config()?;
            let smtp = bind(args.smtp_listen).await?;
            let http = bind(args.http_listen).await?;
            sink::run(smtp, http, config, shutdown_signal()).await?;
        }
        Command::Setup(args) => setup::run(&args).await?,
        Command::Blast(args) => {
            let report = blast::run(&args).await?;
            println!("{report}");
        }
        Command::Healthcheck(args) => healthcheck(&args).await?,
    }
    Ok(())
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; choose another address or port"))
}

async fn healthcheck(args: &HealthcheckArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_seconds))
        .build()?;
    let status = client
        .get(&args.url)
        .send()
        .await
        .with_context(|| format!("GET {} failed", args.url))?
        .status();
    anyhow::ensure!(
        status == reqwest::StatusCode::OK,
        "GET {} answered {status}",
        args.url
    );
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    mailproxy_proto::signals::stop_signal().await;
    tracing::info!("Shutdown signal received.");
}
