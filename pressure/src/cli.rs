//! The command line: `pressure run [FILE]` and its flags, each with an environment twin.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Run a mail-proxy pressure test on this machine, from the same PressureTest file the operator
/// takes.
#[derive(Debug, Parser)]
#[command(name = "pressure", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the proxy, the simulated tenants and the sink on loopback, drive the load, report.
    Run(RunArgs),
}

/// How the final report is printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// A readable table and the verdict.
    #[default]
    Human,
    /// The JSON report (the same as `--json`).
    Json,
}

/// Flags of `pressure run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// PressureTest YAML file; without it, the seed's four tenants on a short run.
    #[arg(env = "PRESSURE_FILE")]
    pub file: Option<PathBuf>,
    /// Measured seconds of load (overrides `spec.durationSeconds`).
    #[arg(long, env = "PRESSURE_DURATION")]
    pub duration: Option<u32>,
    /// Warm-up seconds before measurement (overrides `spec.warmupSeconds`).
    #[arg(long, env = "PRESSURE_WARMUP")]
    pub warmup: Option<u32>,
    /// Also write the JSON report to this file.
    #[arg(long, env = "PRESSURE_JSON")]
    pub json: Option<PathBuf>,
    /// An earlier run's `report.json` to compare this run with (tolerances from
    /// `spec.baseline.tolerance`, else the defaults); a regression fails the run (exit 1).
    #[arg(long, env = "PRESSURE_BASELINE")]
    pub baseline: Option<PathBuf>,
    /// Report format on stdout.
    #[arg(long, env = "PRESSURE_OUTPUT", value_enum, default_value_t = Output::Human)]
    pub output: Output,
    /// SVG chart of throughput and p99 latency (default `<output-dir>/pressure-report.svg`); the
    /// same chart as PNG goes beside it (`.png`).
    #[arg(long, env = "PRESSURE_CHART")]
    pub chart: Option<PathBuf>,
    /// Directory for the run's report and chart (default `./pressure-results/<run-id>`).
    #[arg(long, env = "PRESSURE_OUTPUT_DIR")]
    pub output_dir: Option<PathBuf>,
    /// No live progress display (for CI); the report is still printed.
    #[arg(long, short, env = "PRESSURE_QUIET")]
    pub quiet: bool,
    /// PostgreSQL URL for the proxy instead of the embedded SQLite file.
    #[arg(long, env = "PRESSURE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// External SMTP server (`host:port`, e.g. a MailHog) instead of the verifying sink.
    #[arg(long, env = "PRESSURE_SMTP")]
    pub smtp: Option<String>,
    /// Seed of the clients' draws (overrides `spec.seed`).
    #[arg(long, env = "PRESSURE_SEED")]
    pub seed: Option<u32>,
    /// Proxy port on 127.0.0.1 (0: any free port).
    #[arg(long, env = "PRESSURE_PROXY_PORT", default_value_t = 0)]
    pub proxy_port: u16,
    /// Sink SMTP port on 127.0.0.1 (0: any free port).
    #[arg(long, env = "PRESSURE_SINK_PORT", default_value_t = 0)]
    pub sink_port: u16,
    /// Directory holding `mailproxy` and `client-sim` (default: beside this program, else PATH).
    #[arg(long, env = "PRESSURE_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Keep the run's temporary directory (database, logs) instead of deleting it.
    #[arg(long, env = "PRESSURE_KEEP_TEMP")]
    pub keep_temp: bool,
}
