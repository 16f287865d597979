//! `pressure-operator`: runs PressureTest resources. Parses flags, starts logging and hands over
//! to [`pressure_operator::run`]. Needs only a kubeconfig (or in-cluster credentials) and the CRD
//! installed; it installs nothing itself.

use clap::Parser;
use pressure_operator::{Args, run, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init(&args.log_format)?;
    run(args).await
}
