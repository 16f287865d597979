//! `pressure-operator`: runs PressureTest resources. Parses flags, starts logging and hands over
//! to [`pressure_operator::run`]. Needs only a kubeconfig (or in-cluster credentials) and the CRD
//! installed; it installs nothing itself.
//!
//! `pressure-operator healthcheck [URL]` exits 0 when `URL` (default the local `/healthz`)
//! answers 200: the container health check, without curl.

use clap::Parser;
use pressure_operator::{Args, run, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args().skip(1);
    if argv.next().as_deref() == Some("healthcheck") {
        let url = argv
            .next()
            .unwrap_or_else(|| "http://127.0.0.1:8080/healthz".into());
        std::process::exit(healthcheck(&url).await);
    }
    let args = Args::parse();
    telemetry::init(&args.log_format)?;
    run(args).await
}

/// 0 when `url` answers with a success status, else 1.
async fn healthcheck(url: &str) -> i32 {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build();
    match client {
        Ok(c) => match c.get(url).send().await {
            Ok(r) if r.status().is_success() => 0,
            _ => 1,
        },
        Err(_) => 1,
    }
}
