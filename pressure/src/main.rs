//! The `pressure` binary: parses the command line, runs, prints errors, and exits with the
//! verdict (0 pass, 1 fail or regressed against `--baseline`, 2 bad input or infrastructure
//! error).

use clap::Parser;
use pressure::cli::{Cli, Command};
use pressure::run::Outcome;
use pressure::{EXIT_ERROR, EXIT_FAIL, EXIT_PASS};

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PRESSURE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(dispatch(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            EXIT_ERROR
        }
    };
    std::process::exit(code);
}

async fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Run(args) => match pressure::run::run(args).await {
            Outcome::Report(r)
                if r.passed && !r.comparison.as_ref().is_some_and(|c| c.regressed) =>
            {
                EXIT_PASS
            }
            Outcome::Report(_) => EXIT_FAIL,
            Outcome::Input(e) => {
                eprintln!("error: {e}");
                EXIT_ERROR
            }
            Outcome::Infra(e) => {
                eprintln!("error: {e:#}");
                EXIT_ERROR
            }
        },
    }
}
