//! The command line: `kubectl pressure <command> PRESSURETEST [flags]`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// kubectl plugin for PressureTests: reports, comparisons, re-runs, aborts and bug-report
/// bundles. Install the `kubectl-pressure` binary on your PATH and call it as `kubectl pressure`.
#[derive(Debug, Parser)]
#[command(name = "kubectl-pressure", bin_name = "kubectl pressure", version)]
pub struct Cli {
    /// Namespace of the PressureTest (default: the kubeconfig context's namespace).
    #[arg(short, long, global = true, env = "PRESSURE_NAMESPACE")]
    pub namespace: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Writes a run's stored report (`report.json`, `chart.svg`) into a folder and prints it.
    Report {
        /// The PressureTest.
        pressuretest: String,
        /// The run (`spec.runNumber`; an earlier one from `status.history`); default the latest.
        #[arg(long)]
        run: Option<i32>,
        /// Folder to write into (default `./<run id>`).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Opens the chart with `xdg-open` (or `open` on macOS) once written.
        #[arg(long)]
        open: bool,
    },
    /// Compares a PressureTest's latest finished run with another run; exits 1 when a figure
    /// is beyond its tolerance.
    Compare {
        /// The PressureTest whose run is judged.
        pressuretest: String,
        /// The baseline: a PressureTest name (its latest report), `cm/NAME` (a report
        /// ConfigMap) or the path of a `report.json` file.
        #[arg(long = "with", value_name = "OTHER")]
        with: String,
        /// Throughput may drop this many percent (default: the spec's `baseline.tolerance`, else 10).
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..=100))]
        throughput_drop_percent: Option<i32>,
        /// p99 latency may rise this many percent (default: the spec's, else 25).
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..=100_000))]
        p99_rise_percent: Option<i32>,
        /// The error rate may rise this many permille points (default: the spec's, else 1).
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..=1000))]
        error_rate_rise_permille: Option<i32>,
    },
    /// Starts a new run of a finished PressureTest on the same environment (`runNumber` + 1,
    /// `abort` cleared).
    Rerun {
        /// The PressureTest.
        pressuretest: String,
    },
    /// Ends the current run now (`spec.abort: true`): the clients stop, the queue drains, the
    /// run ends `Aborted` with its partial figures.
    Abort {
        /// The PressureTest.
        pressuretest: String,
    },
    /// Collects the PressureTest (spec and status), its events, its children's YAML (Secrets
    /// without their values), its pods' logs and its latest report into one `.tar.gz`.
    Bundle {
        /// The PressureTest.
        pressuretest: String,
        /// The tarball to write (default `./<name>-bundle.tar.gz`).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Lines of log kept per container (the last ones).
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(i64).range(1..))]
        log_lines: i64,
    },
}
