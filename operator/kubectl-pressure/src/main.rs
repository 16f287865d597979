//! `kubectl pressure`: a kubectl plugin (the `kubectl-pressure` binary on `PATH`) for
//! PressureTests in a cluster. `report` writes a run's stored report and chart and prints it,
//! `compare` sets a run against another (exit 1 when it regressed), `rerun` and `abort` change
//! the spec the way the operator's README describes, and `bundle` collects everything a bug
//! report needs into one tarball. Exit codes: 0 done, 1 regressed, 2 error.
//!
//! Modules: [`cli`] (the command line), [`cluster`] (reading PressureTests and their reports),
//! [`bundle`] (the tarball), [`error`] (what can go wrong, said plainly).

mod bundle;
mod cli;
mod cluster;
mod commands;
mod error;

use clap::Parser;

/// Exit code of a completed command.
const EXIT_OK: i32 = 0;
/// Exit code of a comparison that regressed.
const EXIT_REGRESSED: i32 = 1;
/// Exit code of an error.
const EXIT_ERROR: i32 = 2;

fn main() {
    let cli = cli::Cli::parse();
    let code = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => match rt.block_on(commands::run(cli)) {
            Ok(commands::Done::Ok) => EXIT_OK,
            Ok(commands::Done::Regressed) => EXIT_REGRESSED,
            Err(e) => {
                eprintln!("error: {e}");
                EXIT_ERROR
            }
        },
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            EXIT_ERROR
        }
    };
    std::process::exit(code);
}
